"""The semantic model a run trains: its classes and input from the config, its encoder
from the configured SAM model, or a MONAI baseline."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import ConfigError
from ..models import PromptableModel
from ..models.semantic import (
    MonaiSemanticModel,
    SamSemanticModel2d,
    SamSemanticModel3d,
    SemanticInfo,
    SemanticModel,
    UNETRLayout,
)
from .config import TrainConfig
from .objectives import SemanticSettings
from .sources import collect_cases

MONAI_PREFIX = "monai:"


def semantic_settings(config: TrainConfig) -> SemanticSettings:
    settings = config.objective
    if not isinstance(settings, SemanticSettings):
        raise ConfigError(f"objective.kind {settings.kind!r} trains no semantic model.")
    return settings


def build_semantic_model(config: TrainConfig, sam: PromptableModel | None) -> SemanticModel:
    """The untrained semantic model of ``config``: a MONAI network (``model: monai:unet`` or
    ``monai:swinunetr``, ``sam`` None) or a UNETR decoder (2D; with depth adapters, 3D) on
    ``sam``'s encoder. New modules are initialised from the run's seed."""
    settings = semantic_settings(config)
    info = SemanticInfo(
        spatial_dims=settings.spatial_dims,
        class_names=class_names(config),
        patch_size=tuple(settings.patch_size),
        in_channels=settings.in_channels,
        intensity=config.data.intensity,
        window=config.data.window,
        # data.classes renumbers the labels 1..K; the model keeps which values they were.
        label_values=(0, *config.data.classes) if config.data.classes else None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.trainer.seed)
        if sam is None:
            return MonaiSemanticModel(config.model, info, settings.monai)
        embed_dim = sam.config.prompt_embed_dim
        if settings.spatial_dims == 2:
            layout = UNETRLayout.with_features(
                settings.decoder_features, embed_dim, info.num_classes
            )
            return SamSemanticModel2d(sam, info, layout)
        layout = UNETRLayout.with_features(settings.decoder_features, embed_dim)
        return SamSemanticModel3d(sam, info, layout, settings.adapter_width)


def class_names(config: TrainConfig) -> tuple[str, ...]:
    """The configured names, or those of the first training case's labels (the classes
    ``data.classes`` selects, in its order), ``class_<value>`` where a label has no name."""
    settings = semantic_settings(config)
    if settings.class_names is not None:
        return tuple(settings.class_names)
    first = collect_cases(config.data.train)[0]
    names: dict[Any, str] = dict(first.meta.get("label_names") or {})
    values = config.data.classes
    if values is None:
        if first.label is None:
            raise ConfigError(f"training case {first.name!r} has no label map.")
        values = list(range(1, int(first.label.max()) + 1))
        if not values:
            raise ConfigError(
                f"training case {first.name!r} labels nothing; set objective.class_names and "
                "data.classes."
            )
    named = [names.get(value, names.get(str(value), f"class_{value}")) for value in values]
    return ("background", *named)
