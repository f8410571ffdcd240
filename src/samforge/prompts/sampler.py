"""The prompt sampler shared by training and evaluation (batched torch).

Every function takes B object masks ``(B, H, W)`` bool (or predictions of the same shape)
and returns prompts in the pixel frame of those masks (the original image in evaluation,
the model's input frame in training): points as ``(x, y)`` float32, boxes as
``x0, y0, x1, y1`` float32 with the end exclusive, labels 1 (foreground), 0 (background),
−1 (padding, for an object without a valid point). Randomness comes only from the
``torch.Generator`` passed in, so a seed reproduces the prompts exactly.

Uniform sampling inside a region is done for all objects at once: draw a uniform score per
pixel, zero it outside the region and take the argmax (ties have probability zero).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from ..errors import PromptError

# MedicoSAM grows training boxes by up to 2.5% of each side, outward only.
BOX_JITTER_FRACTION = 0.025
# Width of the ring around an object searched for a negative point when there is no
# false positive (MedicoSAM's first fallback).
NEGATIVE_RING_PX = 3


def _check_masks(masks: torch.Tensor | np.ndarray, name: str = "masks") -> torch.Tensor:
    if not isinstance(masks, torch.Tensor):
        masks = torch.as_tensor(np.asarray(masks))
    if masks.ndim != 3:
        raise PromptError(f"{name} has shape {tuple(masks.shape)}; expected (B, H, W).")
    return masks.bool()


def box_from_masks(masks: torch.Tensor) -> torch.Tensor:
    """Tight boxes around B masks.

    Args:
        masks: (B, H, W) bool.

    Returns:
        (B, 4) float32 ``[min_x, min_y, max_x + 1, max_y + 1]`` (end exclusive, the
        Predictor's box convention); all zeros for an empty mask.
    """
    masks = _check_masks(masks)
    batch, height, width = masks.shape
    rows = masks.any(dim=2)  # (B, H): which rows hold the object
    cols = masks.any(dim=1)  # (B, W)
    y_index = torch.arange(height, device=masks.device)
    x_index = torch.arange(width, device=masks.device)
    big = max(height, width) + 1
    min_y = torch.where(rows, y_index, big).amin(dim=1)
    max_y = torch.where(rows, y_index, -1).amax(dim=1)
    min_x = torch.where(cols, x_index, big).amin(dim=1)
    max_x = torch.where(cols, x_index, -1).amax(dim=1)
    boxes = torch.stack([min_x, min_y, max_x + 1, max_y + 1], dim=1).float()
    empty = ~rows.any(dim=1)
    boxes[empty] = 0.0
    return boxes.reshape(batch, 4)


def center_points(masks: torch.Tensor) -> torch.Tensor:
    """The innermost pixel of each mask: argmax of its Euclidean distance transform.

    Args:
        masks: (B, H, W) bool.

    Returns:
        (B, 2) float32 ``(x, y)``; the first maximum in row-major order wins a tie.
        An empty mask raises :class:`PromptError` (it has no inside).
    """
    masks = _check_masks(masks)
    empty = ~masks.flatten(1).any(dim=1)
    if empty.any():
        raise PromptError(
            f"masks {torch.nonzero(empty).flatten().tolist()} are empty: a centre point needs "
            "at least one foreground pixel; drop empty objects first."
        )
    centers = torch.empty(masks.shape[0], 2, dtype=torch.float32)
    for index, mask in enumerate(masks.cpu().numpy()):
        # Pad with background: without it, pixels outside the image do not count as
        # background and an object cut by the border gets its "centre" on the border.
        distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
        centers[index] = torch.tensor([x, y], dtype=torch.float32)
    return centers.to(masks.device)


def jitter_boxes(
    boxes: torch.Tensor,
    image_size: tuple[int, int],
    fraction: float = BOX_JITTER_FRACTION,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Grow boxes outward by up to ``fraction`` of their width (x) or height (y) per side.

    Each of the four sides moves independently by a uniform amount in [0, fraction·side];
    boxes never shrink (MedicoSAM jitters outward only, so the object stays inside) and are
    clipped to the image.

    Args:
        boxes: (B, 4) ``x0, y0, x1, y1``, end exclusive.
        image_size: (H, W).

    Returns:
        (B, 4) float32 boxes containing the input boxes, inside ``[0, W] × [0, H]``.
    """
    if fraction < 0:
        raise PromptError(f"box jitter fraction must be ≥ 0; got {fraction}.")
    boxes = torch.as_tensor(boxes, dtype=torch.float32)
    height, width = image_size
    size = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)  # (B, 4): w, h, w, h
    amount = torch.rand(boxes.shape, generator=generator, device=boxes.device) * fraction * size
    grown = boxes + amount * boxes.new_tensor([-1.0, -1.0, 1.0, 1.0])
    limits = boxes.new_tensor([width, height]).repeat(2)
    return torch.minimum(grown.clamp(min=0.0), limits)


def sample_points(
    regions: torch.Tensor, num_points: int = 1, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points drawn uniformly without replacement inside each of B regions.

    Args:
        regions: (B, H, W) bool.
        num_points: N points per region.

    Returns:
        points (B, N, 2) float32 ``(x, y)`` and valid (B, N) bool; a region with fewer than
        N pixels gets its remaining slots at (0, 0) with ``valid`` False.
    """
    regions = _check_masks(regions, "regions")
    batch, height, width = regions.shape
    flat = regions.reshape(batch, -1)
    # Uniform scores in [0, 1) inside the region, −1 outside: the top-N are N uniform
    # draws without replacement from the region.
    scores = torch.rand(flat.shape, generator=generator, device=regions.device)
    scores.masked_fill_(~flat, -1.0)
    if num_points == 1:
        top, index = scores.max(dim=1, keepdim=True)  # cheaper than topk
    else:
        top, index = scores.topk(min(num_points, height * width), dim=1)
        missing = num_points - top.shape[1]  # an image smaller than N pixels
        top = torch.nn.functional.pad(top, (0, missing), value=-1.0)
        index = torch.nn.functional.pad(index, (0, missing))
    valid = top >= 0
    index = torch.where(valid, index, torch.zeros_like(index))
    points = torch.stack([index % width, index // width], dim=-1).float()
    return points, valid


def positive_points(
    masks: torch.Tensor, num_points: int = 1, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """N random foreground points per object.

    Args:
        masks: (B, H, W) bool object masks.

    Returns:
        points (B, N, 2) float32 ``(x, y)`` and labels (B, N) float32: 1, or −1 where an
        object has fewer than N pixels.
    """
    points, valid = sample_points(masks, num_points, generator)
    return points, _labels(valid, 1.0)


def _labels(valid: torch.Tensor, label: float) -> torch.Tensor:
    return torch.where(valid, label, -1.0).float()


def _with_fallback(region: torch.Tensor, fallback) -> torch.Tensor:
    """``region`` (B, H, W), with the objects where it is empty taken from ``fallback``:
    a function of the boolean index of those objects, so that an expensive fallback is
    computed only for the objects that need it."""
    empty = ~region.flatten(1).any(dim=1)
    if empty.any():
        region = region.clone()
        region[empty] = fallback(empty)
    return region


def box_masks(boxes: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """(B, 4) boxes ``x0, y0, x1, y1`` (end exclusive) -> (B, H, W) bool pixel masks.

    A pixel (x, y) is inside when x0 ≤ x < x1 and y0 ≤ y < y1.
    """
    height, width = image_size
    xs = torch.arange(width, device=boxes.device, dtype=boxes.dtype)
    ys = torch.arange(height, device=boxes.device, dtype=boxes.dtype)
    x0, y0, x1, y1 = (boxes[:, i, None] for i in range(4))
    inside_x = (xs >= x0) & (xs < x1)  # (B, W)
    inside_y = (ys >= y0) & (ys < y1)  # (B, H)
    return inside_y[:, :, None] & inside_x[:, None, :]


def ring_around(masks: torch.Tensor, width: int = NEGATIVE_RING_PX) -> torch.Tensor:
    """Pixels within ``width`` px (chessboard distance) of each object but outside it,
    restricted to the object's bounding box: (B, H, W) bool -> (B, H, W) bool."""
    masks = _check_masks(masks)
    dilated = torch.nn.functional.max_pool2d(
        masks[:, None].float(), kernel_size=2 * width + 1, stride=1, padding=width
    )[:, 0].bool()
    return dilated & ~masks & box_masks(box_from_masks(masks), (masks.shape[1], masks.shape[2]))


def correction_regions(
    predictions: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where MedicoSAM draws its correction points, with the reference fallbacks.

    Positive: the false negatives; if there are none, the object itself (then all of it is
    a true positive). Negative: the false positives; if none, a 3-px ring around the object
    inside its box; if that is empty too (an object filling its box), anywhere in the
    background.

    Args:
        predictions, targets: (B, H, W) bool.
        valid: (B, H, W) bool where the image is (training frames are padded); points are
            drawn only there. Default: everywhere.

    Returns:
        positive and negative regions, (B, H, W) bool each.
    """
    predictions = _check_masks(predictions, "predictions")
    targets = _check_masks(targets, "targets")
    if predictions.shape != targets.shape:
        raise PromptError(
            f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} "
            "must have the same (B, H, W) shape."
        )
    if valid is not None:
        valid = _check_masks(valid, "valid")
        predictions = predictions & valid
    else:
        valid = torch.ones_like(targets)
    positive = _with_fallback(targets & ~predictions, lambda empty: targets[empty])

    def ring_or_background(empty: torch.Tensor) -> torch.Tensor:
        objects, inside = targets[empty], valid[empty]
        return _with_fallback(
            ring_around(objects) & inside, lambda none: ~objects[none] & inside[none]
        )

    negative = _with_fallback(predictions & ~targets, ring_or_background)
    return positive, negative


def correction_points(
    predictions: torch.Tensor,
    targets: torch.Tensor,
    generator: torch.Generator | None = None,
    valid: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One positive and one negative correction point per object.

    Args:
        predictions: (B, H, W) bool current masks.
        targets: (B, H, W) bool true object masks.
        valid: (B, H, W) bool where points may go (see :func:`correction_regions`).

    Returns:
        points (B, 2, 2) float32 ``(x, y)`` (positive first) and labels (B, 2) float32
        ``[1, 0]``; a point whose region is empty even after the fallbacks (an empty object,
        or an object covering the whole image) gets label −1 (padding).
    """
    positive, negative = correction_regions(predictions, targets, valid)
    pos_points, pos_valid = sample_points(positive, 1, generator)
    neg_points, neg_valid = sample_points(negative, 1, generator)
    points = torch.cat([pos_points, neg_points], dim=1)
    labels = torch.cat([_labels(pos_valid, 1.0), _labels(neg_valid, 0.0)], dim=1)
    return points, labels
