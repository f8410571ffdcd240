"""Segmentation losses of the training objectives, on logits and targets of one size.

Shapes: ``logits`` (N, M, H, W) with M masks per object, ``targets`` (N, H, W) bool.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

# Keeps the linear Dice defined for an empty prediction of an empty target.
DICE_EPS = 1e-6
# torch_em's ``dice_score`` clamps its denominator to at least this (its ``eps`` default).
TORCH_EM_DICE_EPS = 1e-7
DICE_DENOMINATORS = ("squared", "linear")


def dice_terms(
    logits: torch.Tensor, targets: torch.Tensor, denominator: str = "linear"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Σpt and the Dice denominator (Σp² + Σt² or Σp + Σt) of each mask, p the sigmoid of
    the logits: (N, M, H, W), (N, H, W) -> (N, M), (N, M). Sums of several images' objects
    add up, so a Dice over a batch of different image sizes is a sum of these."""
    if denominator not in DICE_DENOMINATORS:
        raise ValueError(f"denominator must be one of {DICE_DENOMINATORS}, not {denominator!r}")
    probs = torch.sigmoid(logits).flatten(2)
    truth = targets.flatten(1)[:, None].to(probs.dtype)
    intersection = (probs * truth).sum(-1)
    # t² = t for a binary target
    spread = (probs * probs).sum(-1) if denominator == "squared" else probs.sum(-1)
    return intersection, spread + truth.sum(-1)


def dice_from_terms(
    intersection: torch.Tensor, total: torch.Tensor, denominator: str = "linear"
) -> torch.Tensor:
    """Soft Dice loss from :func:`dice_terms`, elementwise, 0 is perfect.

    "squared": ``1 − 2Σpt / max(Σp² + Σt², 1e-7)``, torch_em's ``DiceLoss``, which
    micro-sam's (and so MedicoSAM's) ``SamTrainer`` trains with, one score per object;
    "linear": ``1 − (2Σpt + ε) / (Σp + Σt + ε)``, ε = 1e-6.
    """
    if denominator == "squared":
        return 1.0 - 2.0 * intersection / total.clamp(min=TORCH_EM_DICE_EPS)
    return 1.0 - (2.0 * intersection + DICE_EPS) / (total + DICE_EPS)


def dice_loss(
    logits: torch.Tensor, targets: torch.Tensor, denominator: str = "linear"
) -> torch.Tensor:
    """Soft Dice loss of each mask: (N, M, H, W), (N, H, W) -> (N, M), 0 is perfect;
    ``denominator`` as in :func:`dice_from_terms`."""
    return dice_from_terms(*dice_terms(logits, targets, denominator), denominator)


def batch_dice_loss(
    logits: torch.Tensor, targets: torch.Tensor, smooth: float = 1.0
) -> torch.Tensor:
    """One soft Dice loss over every object and pixel of the batch, per mask slot:
    (N, M, S, S), (N, S, S) -> (M,). SAM-UNet's (and SAM-Med2D's) ``DiceLoss`` sums over
    the whole batch with ``smooth`` 1, so large objects weigh more than in :func:`dice_loss`."""
    return batch_dice_from_terms(*dice_terms(logits, targets), smooth)


def batch_dice_from_terms(
    intersection: torch.Tensor, total: torch.Tensor, smooth: float = 1.0
) -> torch.Tensor:
    """:func:`batch_dice_loss` from the (N, M) linear :func:`dice_terms` -> (M,)."""
    return 1.0 - (2.0 * intersection.sum(0) + smooth) / (total.sum(0) + smooth)


def mask_iou(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """IoU of the binarised masks (logit > 0) with the targets: (N, M), no gradient."""
    with torch.no_grad():
        predicted = logits.flatten(2) > 0
        truth = targets.flatten(1)[:, None].bool()
        intersection = (predicted & truth).sum(-1).float()
        union = (predicted | truth).sum(-1).float()
        return torch.where(union > 0, intersection / union.clamp(min=1), 1.0)


def focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma: float = 2.0,
    alpha: float = 0.25,
    balanced: bool = True,
) -> torch.Tensor:
    """Sigmoid focal loss (Lin et al. 2017) averaged over pixels: (N, M, S, S) -> (N, M).

    ``balanced``: foreground pixels weigh ``alpha`` and background ``1 − alpha`` (Lin et
    al., torchvision, SAM-Med2D, SAM-UNet); otherwise every pixel weighs ``alpha``, as
    RobustSAM's ``FocalLoss(alpha=0.25)`` (and so RobustMedSAM) multiplies it in.
    """
    truth = targets[:, None].to(logits.dtype).expand_as(logits)
    cross_entropy = F.binary_cross_entropy_with_logits(logits, truth, reduction="none")
    probs = torch.sigmoid(logits)
    p_true = probs * truth + (1 - probs) * (1 - truth)
    weight = alpha * truth + (1 - alpha) * (1 - truth) if balanced else alpha
    return (weight * (1 - p_true) ** gamma * cross_entropy).flatten(2).mean(-1)


def upscale_logits(low_res: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Low-resolution logits (N, M, s, s) -> (N, M, S, S) float32, bilinear as SAM's
    postprocessing. float32 even under bf16 autocast: the losses sum over S² pixels."""
    return F.interpolate(low_res.float(), size=size, mode="bilinear", align_corners=False)
