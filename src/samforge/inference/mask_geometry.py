"""Geometry of automatic mask generation: point grids, crop boxes, mask boxes, stability,
non-maximum suppression and small-region clean-up, with the semantics of SAM's
``segment_anything/utils/amg.py`` (the official generator's helpers).

Boxes here are (x0, y0, x1, y1) with x1, y1 the last pixel *inside* the mask (inclusive),
as the official ``batched_mask_to_box`` makes them; crop boxes are (x0, y0, x1, y1) with the
end exclusive, as the official ``generate_crop_boxes`` makes them.
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import torch
from scipy import ndimage

# The official generator drops masks whose box lies within this many pixels of a crop edge
# that is not also an image edge: such masks are cut by the crop.
CROP_EDGE_TOLERANCE = 20.0


def point_grid(points_per_side: int) -> np.ndarray:
    """(n², 2) points (x, y) in [0, 1]², cell centres of an n × n grid, rows of x first."""
    offset = 1 / (2 * points_per_side)
    side = np.linspace(offset, 1 - offset, points_per_side)
    xs, ys = np.meshgrid(side, side)
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def layer_point_grids(points_per_side: int, crop_n_layers: int, downscale: int) -> list:
    """One grid per crop layer: layer i has ``int(points_per_side / downscale**i)`` per side."""
    return [point_grid(int(points_per_side / downscale**i)) for i in range(crop_n_layers + 1)]


def crop_boxes(
    image_size: tuple[int, int], crop_n_layers: int, overlap_ratio: float
) -> tuple[list[list[int]], list[int]]:
    """The whole image, then for layer i ≥ 1 a (2^i × 2^i) grid of overlapping crops.

    Returns:
        (crop boxes x0, y0, x1, y1 with the end exclusive, the layer of each box).
    """
    height, width = image_size
    boxes, layers = [[0, 0, width, height]], [0]
    for layer in range(1, crop_n_layers + 1):
        per_side = 2**layer
        overlap = int(overlap_ratio * min(height, width) * (2 / per_side))
        crop_width = math.ceil((overlap * (per_side - 1) + width) / per_side)
        crop_height = math.ceil((overlap * (per_side - 1) + height) / per_side)
        x_starts = [int((crop_width - overlap) * i) for i in range(per_side)]
        y_starts = [int((crop_height - overlap) * i) for i in range(per_side)]
        for x0, y0 in product(x_starts, y_starts):
            boxes.append([x0, y0, min(x0 + crop_width, width), min(y0 + crop_height, height)])
            layers.append(layer)
    return boxes, layers


def stability_scores(logits: torch.Tensor, threshold: float, offset: float) -> torch.Tensor:
    """(B, H, W) logits -> (B,) IoU of the masks thresholded at ``threshold ± offset``.

    The higher cut's mask lies inside the lower one's, so the IoU is a ratio of pixel
    counts; an empty lower mask gives NaN, which no stability filter keeps.
    """
    inner = (logits > threshold + offset).flatten(1).sum(1)
    outer = (logits > threshold - offset).flatten(1).sum(1)
    return inner / outer


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """(B, H, W) bool -> (B, 4) float boxes x0, y0, x1, y1, inclusive; (0, 0, 0, 0) if empty."""
    rows, columns = masks.any(dim=2), masks.any(dim=1)
    boxes = torch.zeros(masks.shape[0], 4, device=masks.device)
    for axis, occupied in ((0, columns), (1, rows)):
        indices = torch.arange(occupied.shape[1], device=masks.device)
        first = torch.where(occupied, indices, occupied.shape[1]).amin(1)
        last = torch.where(occupied, indices, -1).amax(1)
        boxes[:, axis], boxes[:, axis + 2] = first.float(), last.float()
    return boxes * masks.flatten(1).any(1, keepdim=True)


def near_crop_edge(boxes: torch.Tensor, crop_box: list[int], image_size: tuple[int, int]):
    """(B, 4) boxes in crop pixels -> (B,) bool: a side within the tolerance of a crop edge
    that is not an image edge."""
    x0, y0 = crop_box[0], crop_box[1]
    in_image = boxes + torch.tensor([x0, y0, x0, y0], device=boxes.device)
    crop = torch.tensor(crop_box, dtype=torch.float, device=boxes.device)
    image = torch.tensor([0, 0, image_size[1], image_size[0]], device=boxes.device).float()
    at_crop = torch.isclose(in_image, crop[None], atol=CROP_EDGE_TOLERANCE, rtol=0)
    at_image = torch.isclose(in_image, image[None], atol=CROP_EDGE_TOLERANCE, rtol=0)
    return (at_crop & ~at_image).any(dim=1)


def box_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes that non-maximum suppression keeps, best score first.

    torchvision's ``nms`` semantics: boxes in descending score order (ties in input order)
    suppress later boxes whose IoU with them exceeds ``iou_threshold``; area is
    (x1 − x0)(y1 − y0). Computed by MONAI (imported here: it takes seconds to import).
    """
    from monai.data.box_utils import non_max_suppression

    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long)
    keep = non_max_suppression(boxes.float().cpu(), scores.float().cpu(), iou_threshold)
    return torch.as_tensor(keep, dtype=torch.long)


def remove_small_regions(mask: np.ndarray, min_area: int) -> tuple[np.ndarray, bool]:
    """Fill holes smaller than ``min_area`` pixels, then drop islands smaller than it (the
    largest island stays if all are small); 8-connected regions, as the official
    generator's OpenCV call. Returns (mask, whether it changed)."""
    changed = False
    for fill_holes in (True, False):
        regions, count = ndimage.label(mask != fill_holes, structure=np.ones((3, 3)))
        sizes = np.bincount(regions.ravel(), minlength=count + 1)[1:]
        small = np.flatnonzero(sizes < min_area) + 1
        if small.size == 0:
            continue
        changed = True
        if fill_holes:
            mask = mask | np.isin(regions, small)
        else:
            keep = np.setdiff1d(np.arange(1, count + 1), small)
            if keep.size == 0:
                keep = np.array([np.argmax(sizes) + 1])
            mask = np.isin(regions, keep)
    return mask, changed
