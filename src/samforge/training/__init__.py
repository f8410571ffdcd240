"""Fine-tuning SAM-family models: the config, the objectives, freeze and PEFT policies,
and the Lightning engine that runs them.

``load_config``, ``PRESETS`` and ``TrainConfig`` load without Lightning; ``train`` and
``TrainResult`` import it when first used.
"""

from __future__ import annotations

from typing import Any

from .config import PRESETS, TrainConfig, load_config
from .objectives import OBJECTIVES, Objective, ObjectiveSettings, register_objective

__all__ = [
    "OBJECTIVES",
    "PRESETS",
    "Objective",
    "ObjectiveSettings",
    "TrainConfig",
    "TrainResult",
    "load_config",
    "register_objective",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in ("train", "TrainResult"):
        from . import engine  # Lightning loads only when training

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
