"""Training for 3D propagation beside MedicoSAM's objective, kind ``propagation`` (issue 19).

Every step takes MedicoSAM's iterative-prompting loss on the batch's 2D objects
(:mod:`.iterative`, the same settings) and adds ``slice_weight`` × the loss of the
propagation steps on ``batch["slices"]`` (:mod:`samforge.training.volume_slices`): each
slice's organs decoded once, single-mask as propagation decodes them, from the prompts
propagation derives from the adjacent slice; with ``data.volumes.chain`` K, then K - 1
steps more, each slice prompted from the model's own (detached) mask on the one before, as
propagation prompts it, an organ stopping where its mask comes out empty. That loss is
MedicoSAM's per prediction (Dice + MSE of the predicted IoU), scored at the slice's
original size. An organ that ended on the adjacent slice has an empty target, whose Dice
has no gradient; it scores instead the share Σp / (Σp + A) of its predicted soft area Σp
against A, its prompt box's area (both in low-resolution pixels): 0 when nothing is drawn,
½ when a box's worth is, with gradients of the size Dice gives an organ of that area, so
the model learns to stop.

The config needs ``data.volumes`` (:class:`~samforge.training.volume_config.VolumeSlicesConfig`);
validation batches carry no slices and are scored by the 2D loss alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

import torch
from pydantic import Field

from ...errors import ConfigError
from ...models import PromptableModel
from ...preprocessing import ModelInputTransform
from ...prompts.volume_prompts import prompts_from_mask
from ..scoring import MaskScores, ScoringFrame
from .base import (
    Embeddings,
    ObjectiveSettings,
    embedding_rows,
    register_objective,
    repeat_per_object,
)
from .iterative import IterativePrompting, PromptingSettings, _mask_loss

if TYPE_CHECKING:
    from ..config import TrainConfig


class PropagationTrainingSettings(PromptingSettings):
    """MedicoSAM's settings for the 2D objects, plus the weight of the slice loss."""

    kind: Literal["propagation"] = "propagation"  # type: ignore[assignment]
    slice_weight: float = Field(1.0, ge=0.0)


@register_objective
class PropagationTraining(IterativePrompting):
    """MedicoSAM's objective on 2D objects + propagation steps on volume slices."""

    settings_type = PropagationTrainingSettings
    settings: PropagationTrainingSettings
    progress_bar: ClassVar[tuple[str, ...]] = ("loss", "dice_last", "slice_dice")

    @classmethod
    def check_config(cls, settings: ObjectiveSettings, config: TrainConfig) -> None:
        if config.data.volumes is None:
            raise ConfigError(
                "objective.kind propagation trains on volume slices: add a data.volumes "
                "section (files, mni152 or phantoms; see docs/samforge_nano.md)."
            )

    def losses(
        self, model: PromptableModel, batch: dict[str, Any], generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        logs = super().losses(model, batch, generator)
        if "slices" not in batch:
            return logs
        slice_loss, slice_dice = adjacent_slice_loss(model, batch["slices"], self.settings)
        logs["slice_loss"], logs["slice_dice"] = slice_loss, slice_dice
        logs["loss"] = logs["loss"] + self.settings.slice_weight * slice_loss
        return logs


class _Step(NamedTuple):
    """One propagation step's mean loss over its ``count`` organs, their (count,) hard
    Dice (detached) and their (count, 1, s, s) low-resolution logits."""

    loss: torch.Tensor
    hard_dice: torch.Tensor
    low_res: torch.Tensor


def adjacent_slice_loss(
    model: PromptableModel, slices: dict[str, Any], settings: PromptingSettings
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, mean hard Dice, detached) of the propagation steps on B slices of n organs:
    the mean over every organ of every step.

    ``slices``: ``image`` (B, 3, S, S), ``masks`` (B, n, S, S), ``original_masks`` per
    slice (n, H, W), ``boxes`` (B, n, 4), optionally ``mask_input`` (B, n, 1, s, s): the
    first step, prompted from the adjacent slice. With a chain, also ``chain_image``
    (B, K-1, 3, S, S), ``chain_masks`` (B, K-1, n, S, S), ``chain_original_masks`` per
    slice (K-1, n, H, W) and ``prompting`` (mode, box_extension): the next steps.
    """
    images, masks = slices["image"], slices["masks"]
    n_obj = masks.shape[1]
    device = masks.device
    boxes = slices["boxes"].flatten(0, 1).to(device)
    mask_input = slices.get("mask_input")
    if mask_input is not None:
        mask_input = mask_input.flatten(0, 1).to(device)
    embeddings = repeat_per_object(model.embed_images(images), n_obj)
    targets = masks.flatten(0, 1)
    steps = [
        _step(model, embeddings, boxes, mask_input, targets, slices["original_masks"], settings)
    ]
    if "chain_image" in slices:
        steps += _chain_steps(model, slices, steps[0].low_res.detach(), settings)
    dice = torch.cat([step.hard_dice for step in steps])
    loss = torch.stack([step.loss * len(step.hard_dice) for step in steps]).sum()
    return loss / len(dice), dice.mean()


def _step(
    model: PromptableModel,
    embeddings: Embeddings,
    boxes: torch.Tensor,
    mask_input: torch.Tensor | None,
    targets: torch.Tensor,
    original_targets: Sequence[torch.Tensor],
    settings: PromptingSettings,
) -> _Step:
    """N organs decoded single-mask from their (N, 4) model-frame ``boxes`` (and mask
    logits) on their (N, C, h, w) ``embeddings``, scored against (N, S, S) ``targets`` and
    per image (n, H, W) ``original_targets``."""
    low_res, iou_pred = model.decode(embeddings, None, boxes, mask_input, False)
    transform = model.config.input_transform()
    frame = ScoringFrame(targets > 0.5, original_targets, transform)
    denominator = "linear" if settings.dice_reduction == "batch" else settings.dice
    scores = frame.score(low_res, denominator, settings.focal_weight > 0)
    ended = ~torch.cat([m.flatten(1).any(dim=1) for m in original_targets]).to(boxes.device)
    cell = transform.image_size / low_res.shape[-1]  # frame pixels per low-res pixel
    box_areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / cell**2
    loss = _organ_losses(scores, low_res, ended, box_areas, settings)
    if iou_pred is not None:
        loss = loss + settings.iou_weight * torch.mean((iou_pred - scores.true_iou) ** 2)
    return _Step(loss, scores.hard_dice.detach().flatten(), low_res)


def _chain_steps(
    model: PromptableModel,
    slices: dict[str, Any],
    low_res: torch.Tensor,
    settings: PromptingSettings,
) -> list[_Step]:
    """The chain's later steps: each organ prompted, as propagation prompts it, from the
    model's own mask on the slice before (from its detached (B·n, 1, s, s) ``low_res``
    logits there); an organ whose mask came out empty stops, as propagation stops."""
    chain_images, chain_masks = slices["chain_image"], slices["chain_masks"]
    batch, later, n_obj = chain_masks.shape[:3]
    mode, extension = slices["prompting"]
    transform = model.config.input_transform()
    embeddings = model.embed_images(chain_images.flatten(0, 1))  # (B·(K-1), C, h, w)
    active = torch.ones(batch * n_obj, dtype=torch.bool)
    sizes = [tuple(m.shape[-2:]) for m in slices["original_masks"]]
    steps = []
    for k in range(later):
        drawn = [
            transform.masks(low_res[b * n_obj : (b + 1) * n_obj].float(), sizes[b])[:, 0] > 0
            for b in range(batch)
        ]
        active &= torch.cat([d.flatten(1).any(dim=1) for d in drawn]).cpu()
        kept = torch.nonzero(active).flatten()
        if not len(kept):
            break
        boxes, mask_input = _prompts_from_masks(drawn, kept, n_obj, mode, extension, transform)
        images = kept // n_obj
        originals = [
            slices["chain_original_masks"][b][k][kept[images == b] % n_obj]
            for b in images.unique().tolist()
        ]
        step = _step(
            model,
            embedding_rows(embeddings, images * later + k),
            boxes.to(chain_masks.device),
            None if mask_input is None else mask_input.to(chain_masks.device),
            chain_masks[images, k, kept % n_obj],
            originals,
            settings,
        )
        steps.append(step)
        low_res = torch.zeros_like(low_res)
        low_res[kept] = step.low_res.detach()
    return steps


def _prompts_from_masks(
    drawn: list[torch.Tensor],
    kept: torch.Tensor,
    n_obj: int,
    mode: str,
    extension: float,
    transform: ModelInputTransform,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(m, 4) model-frame boxes and, in mode "mask", (m, 1, s, s) mask logits of the
    ``kept`` organs (indices b·n + j) from their masks ``drawn`` per image (n, H, W)."""
    low_res_size = transform.image_size // 4
    boxes, logits = [], []
    for index in kept.tolist():
        mask = drawn[index // n_obj][index % n_obj].cpu().numpy()
        prompts = prompts_from_mask(mask, mode, transform, low_res_size, extension)
        assert prompts.boxes is not None  # modes box and mask
        boxes.append(transform.boxes(prompts.boxes, mask.shape))
        if prompts.mask_input is not None:
            logits.append(prompts.mask_input)
    return torch.cat(boxes), torch.cat(logits) if logits else None


def _organ_losses(
    scores: MaskScores,
    low_res: torch.Tensor,
    ended: torch.Tensor,
    box_areas: torch.Tensor,
    settings: PromptingSettings,
) -> torch.Tensor:
    """The mean over N organs of the mask loss (:func:`_mask_loss`) of those still on the
    slice and, for the ``ended`` (N,) ones, Σp / (Σp + A): p the sigmoid of their (N, 1,
    s, s) low-resolution logits, A their ``box_areas`` (N,) in low-resolution pixels."""
    count = len(ended)
    loss = low_res.new_zeros((), dtype=torch.float32)
    if not ended.all():
        on = ~ended
        kept = MaskScores(
            scores.intersection[on],
            scores.total[on],
            None if scores.focal is None else scores.focal[on],
            scores.true_iou[on],
            scores.hard_dice[on],
        )
        loss = loss + _mask_loss(kept, settings) * (count - int(ended.sum()))
    if ended.any():
        drawn = torch.sigmoid(low_res[ended].float()).sum(dim=(1, 2, 3))
        loss = loss + (drawn / (drawn + box_areas[ended].clamp(min=1.0))).sum()
    return loss / count
