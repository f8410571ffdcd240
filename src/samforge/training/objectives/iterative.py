"""MedicoSAM's iterative-prompting objective (Alg. 1), kind ``iterative``.

One training step on a batch of B images with n objects each:

1. Encode every image once.
2. First prompt for all objects, chosen once per step: a box or one random positive point,
   drawn with probability ``p_box`` of a box (``first_prompt`` "random") or alternating by
   training step, a point on even steps (``"alternate"``, micro-sam's ``SamTrainer``).
   ``box_style`` "medicosam": the object's box grown outward by up to ``box_jitter``
   (2.5%) per side; "sammed2d": the box of the object's largest
   component shifted by up to ``box_shift`` px in x and y (SAM-Med2D's
   ``get_boxes_from_mask``, which SAM-UNet trains with). A single point is
   ambiguous, so it is decoded with three masks; the loss takes the best of them and
   corrections continue from the mask with the highest predicted IoU.
3. ``n_steps`` predictions in all (the reference's ``n_sub_iteration``; 8 = the first
   prompt + 7 corrections; 0 and 1 both mean the first prompt only). After each prediction
   one positive point from the missed region and one negative point from the false region
   are added (:func:`samforge.prompts.correction_points`, the sampler evaluation uses);
   points accumulate and the box stays. With probability ``p_mask`` the previous low-res
   logits are fed back as mask prompt.
4. Loss per prediction: Dice loss of the mask (minimum over the masks of a multimask
   output; optionally weighted and with a focal term, as SAM-UNet trains) + MSE between
   predicted and true IoU of every mask; averaged over predictions. ``dice`` "squared" is
   torch_em's ``DiceLoss`` (Σp² + Σt² below, micro-sam's), "linear" Σp + Σt.
   ``dice_reduction`` "object" averages one Dice per object (MedicoSAM); "batch" takes one
   Dice over all objects and pixels of the batch (SAM-UNet's ``DiceLoss``, always linear
   with smooth 1). ``loss_resolution`` "original" scores each image at its original size
   with the padding left out, as micro-sam does (:mod:`samforge.training.scoring`);
   "model" in the S² frame. An optional semantic loss (``e_sem``) is added once per step.

The presets of the paper: MedSAM (``n_steps=0, p_box=1, p_mask=0``), SimpleFT
(``0, 0.5, 0``), MedicoSAM (``8, 0.5, 0.5``). Randomness comes only from the generator
passed in, so a seed reproduces a step exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal, NamedTuple

import torch
from pydantic import Field, model_validator
from torch.utils.checkpoint import checkpoint

from ...data import largest_component_boxes
from ...models import PromptableModel
from ...prompts import BOX_JITTER_FRACTION, Prompts, best_mask, box_from_masks, jitter_boxes
from ...prompts import positive_points as sample_positive_points
from ..losses import batch_dice_from_terms, dice_from_terms, upscale_logits
from ..scoring import MaskScores, ScoringFrame
from .base import Objective, ObjectiveSettings, register_objective, repeat_per_object
from .joint_semantic import JointSemanticLoss

# (image embeddings as returned by ``embed_images``, union of the objects (B, S, S) bool)
# -> scalar loss: the seam for a semantic decoder trained jointly on the shared encoder.
SemanticLoss = Callable[[Any, torch.Tensor], torch.Tensor]


class PromptingSettings(ObjectiveSettings):
    """How prompts are drawn in a step and how the losses are weighted (see the module
    docstring)."""

    kind: Literal["iterative"] = "iterative"
    n_steps: int = Field(8, ge=0)
    p_box: float = Field(0.5, ge=0.0, le=1.0)
    p_mask: float = Field(0.5, ge=0.0, le=1.0)
    box_style: Literal["medicosam", "sammed2d"] = "medicosam"
    box_jitter: float = Field(BOX_JITTER_FRACTION, ge=0.0)  # box_style medicosam
    box_shift: int = Field(5, ge=0)  # box_style sammed2d: at most this many px
    iou_weight: float = Field(1.0, ge=0.0)
    dice_weight: float = Field(1.0, ge=0.0)
    focal_weight: float = Field(0.0, ge=0.0)  # SAM-UNet adds a focal term (focal + 20·Dice)
    dice_reduction: Literal["object", "batch"] = "object"
    dice: Literal["squared", "linear"] = "squared"  # torch_em's (micro-sam's) or Σp + Σt
    loss_resolution: Literal["original", "model"] = "original"
    first_prompt: Literal["random", "alternate"] = "random"
    e_sem: bool = False  # joint semantic decoder on the encoder (joint_semantic.py)

    @model_validator(mode="after")
    def _alternate_is_half_boxes(self) -> PromptingSettings:
        if self.first_prompt == "alternate" and self.p_box != 0.5:
            raise ValueError(
                f"first_prompt 'alternate' starts half the steps from a box, so p_box "
                f"{self.p_box} would be ignored; set p_box: 0.5, or first_prompt: random"
            )
        return self

    @property
    def predictions(self) -> int:
        return max(self.n_steps, 1)


@register_objective
class IterativePrompting(Objective):
    """MedicoSAM's objective (and its MedSAM / SimpleFT / SAM-UNet settings).

    Args:
        settings: the validated settings.
        semantic_loss: optional joint semantic loss (MedicoSAM's ``e_sem``); an
            ``nn.Module`` registers as a submodule, so it trains with the model.
    """

    settings_type = PromptingSettings
    settings: PromptingSettings
    progress_bar: ClassVar[tuple[str, ...]] = ("loss", "dice_last")

    def __init__(
        self, settings: PromptingSettings, semantic_loss: SemanticLoss | None = None
    ) -> None:
        super().__init__(settings)
        if semantic_loss is None and settings.e_sem:
            semantic_loss = JointSemanticLoss()
        self.semantic_loss = semantic_loss

    def losses(
        self, model: PromptableModel, batch: dict[str, Any], generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        original = self.settings.loss_resolution == "original"
        out = iterative_prompting_loss(
            model,
            batch["image"],
            batch["masks"],
            self.settings,
            generator,
            self.semantic_loss,
            input_sizes=batch["input_size"],
            original_masks=batch["original_masks"] if original else None,
            step=int(batch.get("step", 0)),
        )
        logs = {
            "loss": out.loss,
            "mask_loss": out.mask_loss,
            "iou_loss": out.iou_loss,
            "dice_first": out.round_dice[0],
            "dice_last": out.round_dice[-1],
        }
        if out.semantic_loss is not None:
            logs["semantic_loss"] = out.semantic_loss
        return logs


class ObjectiveOutput(NamedTuple):
    """Scalar losses of one step; ``round_dice`` (predictions,) is the mean hard Dice of
    each prediction, detached, for logging how corrections help."""

    loss: torch.Tensor
    mask_loss: torch.Tensor
    iou_loss: torch.Tensor
    semantic_loss: torch.Tensor | None
    round_dice: torch.Tensor


def iterative_prompting_loss(
    model: PromptableModel,
    images: torch.Tensor,
    masks: torch.Tensor,
    settings: PromptingSettings,
    generator: torch.Generator,
    semantic_loss: SemanticLoss | None = None,
    input_sizes: torch.Tensor | None = None,
    original_masks: Sequence[torch.Tensor] | None = None,
    step: int = 0,
) -> ObjectiveOutput:
    """The loss of one step of Alg. 1.

    Args:
        model: a samforge model (``embed_images`` and ``decode``).
        images: (B, 3, S, S) model-ready images (:class:`ObjectSegmentationDataset`).
        masks: (B, n, S, S) object masks in {0, 1}, in the model frame.
        settings: prompting settings.
        generator: the only source of randomness (on the CPU).
        semantic_loss: optional joint loss on the embeddings and the union of the objects.
        input_sizes: (B, 2) (h, w) of the image content inside the padded frame (the
            dataset's ``input_size``); correction points never land in the padding.
        original_masks: per image, (n, H, W) object masks at its original size (the
            dataset's ``original_masks``): the loss is taken there, the padding left out;
            None takes it on ``masks``, in the model frame.
        step: the training step (from 0), which picks the first prompt when
            ``settings.first_prompt`` is "alternate".
    """
    batch, n_obj = masks.shape[:2]
    size = (images.shape[-2], images.shape[-1])
    targets = masks.flatten(0, 1) > 0.5  # (N, S, S), N = B·n
    # Prompts are drawn on the CPU (the generator lives there); copy the targets once.
    targets_cpu = targets.cpu()
    valid = None if input_sizes is None else _content_area(input_sizes, size, n_obj)
    transform = None if original_masks is None else model.config.input_transform()
    frame = ScoringFrame(targets, original_masks, transform)
    denominator = "linear" if settings.dice_reduction == "batch" else settings.dice
    embeddings = model.embed_images(images)
    per_object = repeat_per_object(embeddings, n_obj)
    prompts = _first_prompts(targets_cpu, settings, generator, step)
    multimask = prompts.boxes is None
    device = targets.device

    decode = _decoder(model)
    mask_losses, iou_losses, round_dice = [], [], []
    mask_inputs = None
    for round_index in range(settings.predictions):
        low_res, iou_pred = decode(per_object, *_on_device(prompts, device), mask_inputs, multimask)
        scores = frame.score(low_res, denominator, settings.focal_weight > 0)
        mask_losses.append(_mask_loss(scores, settings))
        if iou_pred is not None:
            iou_losses.append(torch.mean((iou_pred - scores.true_iou) ** 2))
        best_low_res, best_dice = best_mask(iou_pred, low_res, scores.hard_dice)
        round_dice.append(best_dice.mean())
        if round_index == settings.predictions - 1:
            break
        with torch.no_grad():  # corrections are drawn in the model frame
            predicted = upscale_logits(best_low_res, size)[:, 0] > 0
        prompts = prompts.corrected(predicted.cpu(), targets_cpu, generator, valid)
        feed_mask = bool(torch.rand((), generator=generator) < settings.p_mask)
        mask_inputs = best_low_res.detach() if feed_mask else None
        multimask = False

    mask_loss = torch.stack(mask_losses).mean()
    iou_loss = torch.stack(iou_losses).mean() if iou_losses else mask_loss.new_zeros(())
    loss = mask_loss + settings.iou_weight * iou_loss
    semantic = None
    if semantic_loss is not None:
        union = targets.view(batch, n_obj, *size).any(dim=1)
        semantic = semantic_loss(embeddings, union)
        loss = loss + semantic
    return ObjectiveOutput(loss, mask_loss, iou_loss, semantic, torch.stack(round_dice))


def _first_prompts(
    targets_cpu: torch.Tensor, settings: PromptingSettings, generator: torch.Generator, step: int
) -> Prompts:
    """A jittered box (probability ``p_box``, or on odd steps with ``first_prompt``
    "alternate") or one random positive point per object."""
    if settings.first_prompt == "alternate":
        use_box = step % 2 == 1  # micro-sam: a point when its iteration count is even
    else:
        use_box = bool(torch.rand((), generator=generator) < settings.p_box)
    if use_box:
        if settings.box_style == "sammed2d":
            return Prompts(
                boxes=shifted_component_boxes(targets_cpu, settings.box_shift, generator)
            )
        boxes = box_from_masks(targets_cpu)
        size = (targets_cpu.shape[1], targets_cpu.shape[2])
        boxes = jitter_boxes(boxes, size, settings.box_jitter, generator)
        return Prompts(boxes=boxes)
    points, labels = sample_positive_points(targets_cpu, 1, generator)
    return Prompts(points, labels)


def _decoder(model: PromptableModel) -> Callable[..., Any]:
    """``model.decode``; recomputed in the backward pass when the model's encoder is
    (``trainer.activation_checkpointing``): the activations of every round would otherwise
    be kept until the backward pass (0.66 GiB for 8 rounds of one object at 1024²,
    benchmarks/bench_training_memory.py)."""
    encoder = getattr(model, "image_encoder", None)
    if not getattr(encoder, "activation_checkpointing", False):
        return model.decode
    return functools.partial(checkpoint, model.decode, use_reentrant=False)


def _on_device(
    prompts: Prompts, device: torch.device
) -> tuple[tuple[torch.Tensor, torch.Tensor] | None, torch.Tensor | None]:
    """(point prompt or None, boxes or None) as ``decode`` takes them, on ``device``."""
    points = None
    if prompts.points is not None and prompts.labels is not None:  # given together
        points = (prompts.points.to(device), prompts.labels.to(device).long())
    return points, None if prompts.boxes is None else prompts.boxes.to(device)


def _content_area(input_sizes: torch.Tensor, size: tuple[int, int], n_obj: int) -> torch.Tensor:
    """(N, S, S) bool CPU masks of the image content (top-left h × w) of each object's image."""
    rows = torch.arange(size[0])[None, :, None]
    cols = torch.arange(size[1])[None, None, :]
    heights, widths = input_sizes.cpu().repeat_interleave(n_obj, dim=0).unbind(dim=1)
    return (rows < heights[:, None, None]) & (cols < widths[:, None, None])


def shifted_component_boxes(
    targets: torch.Tensor, max_shift: int, generator: torch.Generator
) -> torch.Tensor:
    """SAM-Med2D's training boxes: the box of each object's largest component, moved as a
    whole by a whole number of pixels in [−m, m − 1] in x and in y, m = min(``max_shift``,
    ⌊min(w, h) / 2⌋) (its ``get_boxes_from_mask``: noise_std 0.1·min(w, h), ×5, and
    ``np.random.randint(-m, m)``). (N, S, S) bool -> (N, 4) float32, not clipped."""
    boxes = torch.from_numpy(largest_component_boxes(targets.numpy()))
    sides = (boxes[:, 2:] - boxes[:, :2]).amin(dim=1)
    limit = torch.minimum(torch.floor(sides / 2), torch.tensor(float(max_shift)))[:, None]
    shift = torch.floor(torch.rand((len(boxes), 2), generator=generator) * 2 * limit) - limit
    return boxes + shift.repeat(1, 2)


def _mask_loss(scores: MaskScores, settings: PromptingSettings) -> torch.Tensor:
    """The mask loss of one prediction: weighted Dice (+ focal) loss of the best of its
    masks, per object and averaged, or one Dice over the batch (``dice_reduction``)."""
    focal = scores.focal if settings.focal_weight else None
    if settings.dice_reduction == "batch":
        slots = settings.dice_weight * batch_dice_from_terms(scores.intersection, scores.total)
        if focal is not None:
            slots = slots + settings.focal_weight * focal.mean(dim=0)
        return slots.amin()
    dice = dice_from_terms(scores.intersection, scores.total, settings.dice)
    loss = settings.dice_weight * dice
    if focal is not None:
        loss = loss + settings.focal_weight * focal
    return loss.amin(dim=1).mean()
