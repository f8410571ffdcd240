"""RobustMedSAM's degradation-robust objective, kind ``robust``.

Each item comes as a clean and a degraded view of the same image (one of the 12
corruptions of :mod:`samforge.data.corruptions`) with the same objects. Both views get the
same prompt: ``num_points`` random positive points per object, plus the object's box with
probability ``p_box``. The loss, as in the paper:

    20 · focal(γ 2, α 0.25) + Dice           on the degraded view's mask
    + 100 · MSE(degraded mask features, clean mask features)
    + 2 · MSE(degraded output tokens, clean output tokens)

The clean view runs the decoder's clean path (RobustSAM: the original SAM path; plain SAM:
the same decoder). As in RobustSAM's (and RobustMedSAM's) ``engine.py``, gradients flow
through both views: the consistency terms move the clean branch's features as well as the
degraded ones. The focal term weighs every pixel by α, RobustSAM's convention (its
``FocalLoss`` multiplies the whole loss by α = 0.25), not α / 1 − α for foreground and
background. By default only the mask decoder trains (the ``decoder`` freeze policy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import torch
from pydantic import Field, model_validator

from ...errors import ConfigError
from ...models import PromptableModel, family_of
from ...prompts import BOX_JITTER_FRACTION, box_from_masks, jitter_boxes
from ...prompts import positive_points as sample_positive_points
from ..losses import dice_loss, focal_loss, upscale_logits
from .base import Objective, ObjectiveSettings, register_objective, repeat_per_object

if TYPE_CHECKING:
    from ..config import TrainConfig


class RobustSettings(ObjectiveSettings):
    """Prompts shared by both views, and the weights of the loss terms."""

    kind: Literal["robust"] = "robust"
    num_points: int = Field(3, ge=0)
    p_box: float = Field(0.0, ge=0.0, le=1.0)
    box_jitter: float = Field(BOX_JITTER_FRACTION, ge=0.0)
    focal_weight: float = Field(20.0, ge=0.0)
    dice_weight: float = Field(1.0, ge=0.0)
    feature_weight: float = Field(100.0, ge=0.0)
    token_weight: float = Field(2.0, ge=0.0)

    @model_validator(mode="after")
    def _some_prompt(self) -> RobustSettings:
        if self.num_points < 1 and self.p_box < 1.0:
            raise ValueError("robust training needs num_points ≥ 1 unless p_box is 1.")
        return self


@register_objective
class RobustObjective(Objective):
    """RobustMedSAM's objective on clean/degraded pairs (see the module docstring)."""

    settings_type = RobustSettings
    settings: RobustSettings

    @classmethod
    def check_config(cls, settings: ObjectiveSettings, config: TrainConfig) -> None:
        if not config.data.degradations:
            raise ConfigError(
                "objective.kind 'robust' trains on clean/degraded pairs: set "
                "data.degradations (e.g. [all] or [mri, modality_agnostic])"
            )

    def check_model(self, model: PromptableModel) -> None:
        if not hasattr(model, "decode_with_features"):
            raise ConfigError(
                f"objective.kind 'robust' needs decoder features, which {type(model).__name__} "
                "lacks."
            )
        family = family_of(model.config)
        if not family.sam_layout:
            raise ConfigError(
                f"objective.kind 'robust' compares SAM-style decoder features; {family.name} "
                "trains with the iterative objective (SAM-UNet: preset samunet)."
            )

    def losses(
        self, model: PromptableModel, batch: dict[str, Any], generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        out = robust_loss(
            model, batch["image"], batch["degraded_image"], batch["masks"], self.settings, generator
        )
        return out._asdict()


class RobustOutput(NamedTuple):
    loss: torch.Tensor
    segmentation_loss: torch.Tensor
    feature_loss: torch.Tensor
    token_loss: torch.Tensor


def robust_loss(
    model: PromptableModel,
    clean_images: torch.Tensor,
    degraded_images: torch.Tensor,
    masks: torch.Tensor,
    settings: RobustSettings,
    generator: torch.Generator,
) -> RobustOutput:
    """The RobustMedSAM loss of one step.

    Args:
        model: a samforge model with ``embed_images`` and ``decode_with_features``.
        clean_images, degraded_images: (B, 3, S, S) model-ready views of the same images.
        masks: (B, n, S, S) object masks in {0, 1}.
        settings: prompt and loss weights.
        generator: the only source of randomness.
    """
    n_obj = masks.shape[1]
    size = (clean_images.shape[-2], clean_images.shape[-1])
    targets = masks.flatten(0, 1) > 0.5
    points, boxes = _shared_prompts(targets, settings, generator)
    clean = model.decode_with_features(
        repeat_per_object(model.embed_images(clean_images), n_obj),
        points=points,
        boxes=boxes,
        clean=True,
    )
    degraded = model.decode_with_features(
        repeat_per_object(model.embed_images(degraded_images), n_obj),
        points=points,
        boxes=boxes,
    )
    logits = upscale_logits(degraded.low_res_logits, size)
    segmentation = (
        settings.focal_weight * focal_loss(logits, targets, balanced=False).mean()
        + settings.dice_weight * dice_loss(logits, targets).mean()
    )
    features = torch.mean((degraded.mask_features - clean.mask_features) ** 2)
    tokens = torch.mean((degraded.output_tokens - clean.output_tokens) ** 2)
    loss = segmentation + settings.feature_weight * features + settings.token_weight * tokens
    return RobustOutput(loss, segmentation, features, tokens)


def _shared_prompts(
    targets: torch.Tensor, settings: RobustSettings, generator: torch.Generator
) -> tuple[tuple[torch.Tensor, torch.Tensor] | None, torch.Tensor | None]:
    """Positive points (and maybe boxes) for N objects, used for both views."""
    device = targets.device
    points = None
    if settings.num_points > 0:
        coords, labels = sample_positive_points(targets.cpu(), settings.num_points, generator)
        points = (coords.to(device), labels.to(device).long())
    boxes = None
    if bool(torch.rand((), generator=generator) < settings.p_box):
        boxes = box_from_masks(targets.cpu())
        size = (targets.shape[1], targets.shape[2])
        boxes = jitter_boxes(boxes, size, settings.box_jitter, generator)
        boxes = boxes.to(device)
    return points, boxes
