"""The record that says what samforge knows about one model family."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..config import Preprocessing
from ..sam.model import Sam

if TYPE_CHECKING:  # SAM-UNet's package imports this record
    from .sam_unet.model import SamUNet

StateDict = Mapping[str, torch.Tensor]


def _owns_no_key(key: str) -> bool:
    return False


def _no_fields(state: StateDict) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class ModelFamily:
    """How samforge recognises, builds, names and writes the models of one family.

    Attributes:
        name: the published name (``"SAM"``, ``"SAM-Med2D"``, ``"RobustSAM"``, ...).
        family: the :attr:`SamConfig.family` of its models.
        model_class: what :func:`~samforge.models.families.build_model` builds.
        owns_key: whether a tensor name belongs to a module this family adds to SAM (its
            public name or samforge's); plain SAM owns none.
        config_fields: the :class:`SamConfig` fields that a state dict holding the family's
            modules (samforge's names) shows, e.g. SAM-UNet's ResNet layout.
        export_layout: ``"model"`` when the family's own code loads ``{"model": state}``;
            None for a bare state dict, as SAM's official checkpoints are.
        preprocessing: the input convention of its published weights, for checkpoints
            that do not say (None: SAM's).
        sam_layout: its modules are SAM's, plus at most modules SAM lacks: they fuse with
            other SAM checkpoints, SAM's official format holds the model (without the
            extras), and its decoder features are SAM's kind (RobustSAM's objective
            compares them).
        own_encoder: its image encoder is not SAM's ViT (MobileSAM's TinyViT):
            ``config_fields`` reads the encoder's layout, and the ViT fields of
            :class:`SamConfig` keep their defaults.
        read_names: the family's public tensor names -> samforge's, applied once, when a
            checkpoint is read.
        write_names: samforge's names -> the family's public ones, applied once, when the
            family's format is written.
    """

    name: str
    family: str
    model_class: type[Sam] | type[SamUNet]
    owns_key: Callable[[str], bool] = _owns_no_key
    config_fields: Callable[[StateDict], dict[str, Any]] = _no_fields
    export_layout: str | None = None
    preprocessing: Preprocessing | None = None
    sam_layout: bool = True
    own_encoder: bool = False
    read_names: Callable[[StateDict], dict[str, torch.Tensor]] = dict
    write_names: Callable[[StateDict], dict[str, torch.Tensor]] = dict
