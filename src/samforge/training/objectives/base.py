"""The objective interface and its registry.

An objective is one kind of training signal: what it needs from the config and the model,
and its losses over a batch. Each kind lives in one file of this package, declares its
settings as an :class:`ObjectiveSettings` model (validated once, by pydantic, when the
training config loads) and registers itself with :func:`register_objective`; the config,
the engine and the Lightning module find it by the settings' ``kind`` and never branch on it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from ...errors import ConfigError
from ...models.sam.embeddings import Embeddings

if TYPE_CHECKING:
    from pydantic._internal._model_construction import ModelMetaclass

    from ..config import TrainConfig
else:
    ModelMetaclass = type(BaseModel)  # pydantic's metaclass, without importing its internals


class _RaisesConfigError(ModelMetaclass):
    """Settings built by hand (``PromptingSettings(p_box=2)``) raise ConfigError; inside a
    training config pydantic validates them without this call, so its errors keep naming
    the config keys (``objective.p_box``)."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in item['loc']) or cls.__name__}: {item['msg']}"
                for item in error.errors()
            )
            raise ConfigError(f"invalid {cls.__name__}: {problems}") from None


class ObjectiveSettings(BaseModel, metaclass=_RaisesConfigError):
    """The validated settings of one objective kind: the config's ``objective`` section.

    Subclasses declare ``kind: Literal["<kind>"] = "<kind>"`` and their fields with
    pydantic constraints; cross-field rules go into a ``model_validator``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str


class Objective(nn.Module, ABC):
    """One training objective: its requirements and its losses over a batch.

    An ``nn.Module``, so that parts it trains besides the model (e.g. a semantic head)
    register with the Lightning module and reach the optimiser and the checkpoints.
    Randomness comes only from the generator passed to :meth:`losses`.
    """

    settings_type: ClassVar[type[ObjectiveSettings]]
    # What the run builds and feeds: a promptable SAM-family model and prompted objects,
    # or a semantic model (samforge.models.semantic) and labelled patches.
    model_kind: ClassVar[Literal["promptable", "semantic"]] = "promptable"
    # Logged values the progress bar shows (all are logged).
    progress_bar: ClassVar[tuple[str, ...]] = ("loss",)

    def __init__(self, settings: ObjectiveSettings) -> None:
        super().__init__()
        if not isinstance(settings, self.settings_type):
            raise TypeError(f"{type(self).__name__} takes {self.settings_type.__name__}")
        self.settings = settings

    @classmethod
    def check_config(cls, settings: ObjectiveSettings, config: TrainConfig) -> None:
        """Raise ConfigError for a config this objective cannot train with (e.g. data
        without what it needs); called while the config is validated."""

    def check_model(self, model: Any) -> None:
        """Raise ConfigError for a prepared model this objective cannot train (a
        :class:`PromptableModel` or, for ``model_kind`` "semantic", a semantic model)."""

    @abstractmethod
    def losses(
        self, model: Any, batch: dict[str, Any], generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Scalar losses of one batch (as :func:`samforge.data.dataset.collate_objects`
        makes it): ``"loss"`` is minimised, every entry is logged."""


OBJECTIVES: dict[str, type[Objective]] = {}

ObjectiveType = TypeVar("ObjectiveType", bound=type[Objective])


def register_objective(objective: ObjectiveType) -> ObjectiveType:
    """Class decorator: make ``objective`` the one of its settings' ``kind``."""
    kind = objective.settings_type.model_fields["kind"].default
    if not isinstance(kind, str) or kind in OBJECTIVES:
        raise ValueError(f"{objective.__name__}: kind {kind!r} is missing or taken")
    OBJECTIVES[kind] = objective
    return objective


def objective_class(settings: ObjectiveSettings) -> type[Objective]:
    """The registered objective of ``settings.kind``."""
    return OBJECTIVES[settings.kind]


def build_objective(settings: ObjectiveSettings, **parts: Any) -> Objective:
    """The objective of ``settings.kind``, built from its validated settings (``parts``
    go to its constructor, e.g. ``semantic_loss``)."""
    return objective_class(settings)(settings, **parts)


def repeat_per_object(embeddings: Embeddings, n_obj: int) -> Embeddings:
    """Image embeddings (B, ...) — a tensor or a dict of batch-first tensors — repeated so
    that object j of image i sits at row i·n_obj + j."""
    if isinstance(embeddings, dict):
        return {key: value.repeat_interleave(n_obj, dim=0) for key, value in embeddings.items()}
    return embeddings.repeat_interleave(n_obj, dim=0)


def embedding_rows(embeddings: Embeddings, rows: torch.Tensor) -> Embeddings:
    """The ``rows`` (N,) of image embeddings (B, ...), a tensor or a dict of them."""
    if isinstance(embeddings, dict):
        return {key: value[rows] for key, value in embeddings.items()}
    return embeddings[rows]
