"""Where the iterative objective scores a prediction: at each image's original size with
the padding left out (micro-sam's ``SamTrainer``), or in the model frame.

micro-sam scores ``postprocess_masks`` of the low-resolution logits: upsampled to the S²
frame, the padding cropped, resized to the original image, then Dice and the true IoU
against the original-size target. ``ModelInputTransform.original_logits``
(:mod:`samforge.preprocessing`) is that resize (the Predictor's), so no pixel of padding
counts, and every pixel of the original counts once whatever the image's size. The S²
frame itself is never kept for the backward pass: the resize is two small matrix
products per image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from ..preprocessing import ModelInputTransform
from .losses import dice_terms, focal_loss, upscale_logits


class MaskScores(NamedTuple):
    """Per object and mask slot, (N, M) each: Σpt and the Dice denominator, the focal
    loss (None unless asked for), all with gradients; the true IoU and the hard Dice of
    the binarised masks (logit > 0), detached."""

    intersection: torch.Tensor
    total: torch.Tensor
    focal: torch.Tensor | None
    true_iou: torch.Tensor
    hard_dice: torch.Tensor


class ScoringFrame:
    """The targets a prediction is scored against, and the resize that takes its logits
    there.

    Args:
        targets: (N, S, S) bool targets in the model frame, N = B·n objects.
        original_targets: per image, (n, H, W) bool targets at its original size; None
            scores in the model frame (padding included).
        transform: the model's input transform (needed with ``original_targets``).
    """

    def __init__(
        self,
        targets: torch.Tensor,
        original_targets: Sequence[torch.Tensor] | None = None,
        transform: ModelInputTransform | None = None,
    ) -> None:
        if original_targets is not None and transform is None:
            raise ValueError("scoring at the original size needs the model's input transform")
        self.targets = _Targets(targets)
        self.original = None
        if original_targets is not None:
            self.original = [_Targets(t.to(targets.device)) for t in original_targets]
        self.transform = transform

    def score(self, low_res: torch.Tensor, denominator: str, focal: bool) -> MaskScores:
        """(N, M, s, s) low-resolution logits -> their :class:`MaskScores`."""
        if self.original is None or self.transform is None:
            logits = upscale_logits(low_res, self.targets.size)
            return _scores(logits, self.targets, denominator, focal)
        parts, start = [], 0
        for targets in self.original:
            objects = low_res[start : start + targets.count].float()  # fp32 under autocast
            logits = self.transform.original_logits(objects, targets.size)
            parts.append(_scores(logits, targets, denominator, focal))
            start += targets.count
        if start != len(low_res):
            raise ValueError(f"{len(low_res)} predictions for {start} original targets")
        focal_parts = [part.focal for part in parts if part.focal is not None]
        return MaskScores(
            torch.cat([part.intersection for part in parts]),
            torch.cat([part.total for part in parts]),
            torch.cat(focal_parts) if focal_parts else None,
            torch.cat([part.true_iou for part in parts]),
            torch.cat([part.hard_dice for part in parts]),
        )


class _Targets:
    """(N, H, W) targets as bool (the hard scores) and float32, made once per step: the
    losses save the float targets for the backward pass, and every prediction's terms
    then share one copy."""

    def __init__(self, targets: torch.Tensor) -> None:
        self.hard = targets.bool()
        self.soft = self.hard.float()
        self.count = len(targets)
        self.size = (targets.shape[-2], targets.shape[-1])


def _scores(logits: torch.Tensor, targets: _Targets, denominator: str, focal: bool) -> MaskScores:
    """Scores of (N, M, H, W) logits against (N, H, W) targets."""
    intersection, total = dice_terms(logits, targets.soft, denominator)
    focal_terms = focal_loss(logits, targets.soft) if focal else None
    with torch.no_grad():
        predicted = logits.flatten(2) > 0
        truth = targets.hard.flatten(1)[:, None]
        overlap = (predicted & truth).sum(-1).float()
        areas = (predicted.sum(-1) + truth.sum(-1)).float()
        union = areas - overlap
        true_iou = torch.where(union > 0, overlap / union.clamp(min=1), 1.0)
        hard_dice = torch.where(areas > 0, 2 * overlap / areas.clamp(min=1), 1.0)
    return MaskScores(intersection, total, focal_terms, true_iou, hard_dice)
