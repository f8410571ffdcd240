"""Semantic segmentation, kind ``semantic``: every pixel (voxel) gets one of C classes.

The loss is MONAI's ``DiceCELoss(softmax=True, to_onehot_y=True, lambda_dice=0.5,
lambda_ce=0.5)``, MedicoSAM's 0.5 softmax Dice + 0.5 cross-entropy, on the logits of the
whole patch. The settings also say what model the run builds (see
:mod:`samforge.training.semantic_setup`): 2D or 3D, the patch size, the input channels and
the class names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import Field, model_validator

from ...errors import ConfigError
from ...models.semantic import SemanticModel
from .base import Objective, ObjectiveSettings, register_objective

if TYPE_CHECKING:
    from ..config import TrainConfig


class SemanticSettings(ObjectiveSettings):
    """What the semantic model is and how its loss is weighted.

    ``class_names``: background first; by default the dataset's label names of the
    classes ``data.classes`` selects (``class_<value>`` where it has none).
    ``decoder_features``: channels of the UNETR decoder at full resolution (torch_em's and
    MedicoSAM's 64; the stages above have 2×, 4×, 8×). ``adapter_width``: the 3D SAM
    model's depth-adapter width (default 384, or half the encoder width below 768).
    ``monai``: keyword arguments of a ``monai:*`` network.
    """

    kind: Literal["semantic"] = "semantic"
    spatial_dims: Literal[2, 3] = 2
    patch_size: tuple[int, ...] = (256, 256)
    in_channels: Literal[1, 3] = 1
    class_names: tuple[str, ...] | None = None
    lambda_dice: float = Field(0.5, ge=0.0)
    lambda_ce: float = Field(0.5, ge=0.0)
    decoder_features: int = Field(64, ge=1)  # the UNETR decoder's full-resolution width
    adapter_width: int | None = Field(None, ge=1)
    monai: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _patch_fits_dims(self) -> SemanticSettings:
        if len(self.patch_size) != self.spatial_dims or min(self.patch_size) < 1:
            raise ValueError(
                f"patch_size {list(self.patch_size)} must give {self.spatial_dims} positive "
                "sizes ([H, W] for spatial_dims 2, [D, H, W] for 3)"
            )
        if self.class_names is not None and (
            len(self.class_names) < 2 or self.class_names[0] != "background"
        ):
            raise ValueError("class_names must start with 'background' and name one class or more")
        return self


@register_objective
class SemanticObjective(Objective):
    """Softmax Dice + cross-entropy of a :class:`~samforge.models.semantic.SemanticModel`
    on batches ``{"image": (B, C, *patch), "label": (B, 1, *patch)}``."""

    settings_type = SemanticSettings
    settings: SemanticSettings
    model_kind = "semantic"
    progress_bar = ("loss", "dice")

    def __init__(self, settings: SemanticSettings) -> None:
        super().__init__(settings)
        from monai.losses import DiceCELoss

        self.loss = DiceCELoss(
            softmax=True,
            to_onehot_y=True,
            lambda_dice=settings.lambda_dice,
            lambda_ce=settings.lambda_ce,
        )

    @classmethod
    def check_config(cls, settings: ObjectiveSettings, config: TrainConfig) -> None:
        assert isinstance(settings, SemanticSettings)
        if config.freeze.policy in ("decoder", "prompt_encoder_frozen"):
            raise ConfigError(
                f"freeze.policy {config.freeze.policy!r} is about SAM's prompt parts, which a "
                "semantic model never runs; use 'full' or 'encoder_frozen' (the UNETR decoder "
                "alone trains), or 'blocks'."
            )
        classes = config.data.classes
        if classes and settings.class_names and len(settings.class_names) != len(classes) + 1:
            raise ConfigError(
                f"objective.class_names names {len(settings.class_names)} classes, but "
                f"data.classes selects {len(classes)} (+ background)."
            )

    def check_model(self, model: Any) -> None:
        if not isinstance(model, SemanticModel):
            raise ConfigError(
                f"the semantic objective trains semantic models, not {type(model).__name__}."
            )

    def losses(
        self, model: Any, batch: dict[str, Any], generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        logits = model(batch["image"]).float()
        labels = batch["label"]
        return {"loss": self.loss(logits, labels), "dice": foreground_dice(logits, labels)}


def foreground_dice(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean hard Dice over the foreground classes present in prediction or truth, over the
    whole batch: (B, C, *S) logits, (B, 1, *S) labels -> scalar, detached (for logging)."""
    with torch.no_grad():
        classes = torch.arange(1, logits.shape[1], device=logits.device)
        shape = (1, -1) + (1,) * (logits.dim() - 2)
        predicted = logits.argmax(dim=1, keepdim=True) == classes.view(shape)
        truth = labels == classes.view(shape)
        dims = [0, *range(2, logits.dim())]
        overlap = (predicted & truth).sum(dims).float()
        total = (predicted.sum(dims) + truth.sum(dims)).float()
        present = total > 0
        if not present.any():
            return logits.new_ones(())
        return (2 * overlap[present] / total[present]).mean()
