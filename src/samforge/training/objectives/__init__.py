"""Training objectives, one file per kind, registered by kind.

A new objective is one new file here (its :class:`ObjectiveSettings`, its
:class:`Objective` subclass decorated with :func:`register_objective`) and its import below:
the training config then accepts ``objective.kind: <kind>`` with its settings.
"""

from .base import (
    OBJECTIVES,
    Objective,
    ObjectiveSettings,
    build_objective,
    objective_class,
    register_objective,
    repeat_per_object,
)

# Importing a kind's file registers it.
from .iterative import (
    IterativePrompting,
    ObjectiveOutput,
    PromptingSettings,
    SemanticLoss,
    iterative_prompting_loss,
)
from .propagation import PropagationTraining, PropagationTrainingSettings, adjacent_slice_loss
from .robust import RobustObjective, RobustOutput, RobustSettings, robust_loss
from .semantic import SemanticObjective, SemanticSettings

__all__ = [
    "OBJECTIVES",
    "IterativePrompting",
    "Objective",
    "ObjectiveOutput",
    "ObjectiveSettings",
    "PromptingSettings",
    "PropagationTraining",
    "PropagationTrainingSettings",
    "RobustObjective",
    "RobustOutput",
    "RobustSettings",
    "SemanticLoss",
    "SemanticObjective",
    "SemanticSettings",
    "adjacent_slice_loss",
    "build_objective",
    "iterative_prompting_loss",
    "objective_class",
    "register_objective",
    "repeat_per_object",
    "robust_loss",
]
