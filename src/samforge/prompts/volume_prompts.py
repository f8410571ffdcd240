"""Prompts for the next slice of a volume, derived from the mask of the slice before it.

One code for 3D propagation (:mod:`samforge.inference.propagation`) and for training it
(:mod:`samforge.training.volume_slices`), so that the model trains on exactly the prompts
propagation feeds it.

Five modes, as in micro-sam's ``segment_mask_in_volume`` (the reference of MedicoSAM's
interactive 3D protocol):

==================  =====================================================================
``box``             the mask's bounding box, extended by ``box_extension``
``mask``            that box plus the mask as low-resolution logits (±6.9)
``points``          positive points at the peaks of the smoothed inner distance transform,
                    negative points at the peaks of the outer one, inside the extended box
``points_and_mask`` those points plus the mask logits (no box)
``single_point``    one positive point at the argmax of the smoothed inner distance
==================  =====================================================================

``box_extension`` below 1 is a fraction of the box's width (height) added to the left and
right (top and bottom); 1 or more is a number of pixels added to each side. Boxes are
clipped to the image. All coordinates are original-image pixels, (x, y), ends exclusive.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.segmentation import find_boundaries

from ..errors import ConfigError
from ..preprocessing import ModelInputTransform
from .record import Prompts
from .sampler import box_from_masks

PROMPT_MODES: tuple[str, ...] = ("box", "mask", "points", "points_and_mask", "single_point")

# log(0.999 / 0.001): micro-sam's logits for a binary mask fed back as a prompt.
MASK_LOGIT = 6.9
# Smoothing of the distance maps before peak picking, so that a ragged boundary does not
# give a peak per pixel (micro-sam uses skimage's gaussian with sigma 1).
DISTANCE_SIGMA = 1.0
# Peaks are at least this far apart (pixels), as in micro-sam: positives 3, negatives 5.
POSITIVE_MIN_DISTANCE = 3
NEGATIVE_MIN_DISTANCE = 5
# More points than this add nothing to SAM's answer but cost decoder time.
MAX_POINTS_PER_LABEL = 8


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`PROMPT_MODES`, else a ConfigError listing them."""
    if mode not in PROMPT_MODES:
        raise ConfigError(
            f"unknown propagation mode {mode!r}; use one of {', '.join(PROMPT_MODES)}."
        )
    return mode


def check_box_extension(box_extension: float) -> float:
    """``box_extension`` if ≥ 0 (a fraction below 1, pixels from 1 on), else a ConfigError."""
    if not np.isfinite(box_extension) or box_extension < 0:
        raise ConfigError(
            f"box_extension must be ≥ 0 (a fraction < 1 or pixels ≥ 1); got {box_extension}."
        )
    return float(box_extension)


def prompts_from_mask(
    mask: np.ndarray,
    mode: str,
    transform: ModelInputTransform,
    low_res_size: int,
    box_extension: float = 0.0,
) -> Prompts:
    """Prompts of ``mode`` for the object in ``mask`` (H, W) bool (must not be empty), as
    a record of one object."""
    check_mode(mode)
    box = extended_box(mask, box_extension)
    logits = None
    if mode in ("mask", "points_and_mask"):
        logits = _one_object(mask_logits(mask, transform, low_res_size))
    if mode in ("box", "mask"):
        return Prompts(boxes=_one_object(box), mask_input=logits)
    if mode == "single_point":
        point = single_point_from_mask(mask)
        return Prompts(_one_object(point[None]), torch.ones(1, 1))
    points, labels = points_from_mask(mask, box)
    return Prompts(_one_object(points), _one_object(labels), mask_input=logits)


def _one_object(array: np.ndarray) -> torch.Tensor:
    """A numpy prompt of one object as a tensor with the batch axis in front."""
    return torch.from_numpy(array)[None]


def extended_box(mask: np.ndarray, box_extension: float = 0.0) -> np.ndarray:
    """(H, W) bool mask -> (4,) float32 bounding box x0, y0, x1, y1, extended and clipped."""
    check_box_extension(box_extension)
    box = box_from_masks(torch.from_numpy(np.asarray(mask, dtype=bool))[None])[0].numpy()
    width, height = box[2] - box[0], box[3] - box[1]
    if box_extension >= 1:
        dx = dy = box_extension
    else:
        dx, dy = box_extension * width, box_extension * height
    height_limit, width_limit = mask.shape
    extended = [box[0] - dx, box[1] - dy, box[2] + dx, box[3] + dy]
    low = np.zeros(2, dtype=np.float32)
    high = np.array([width_limit, height_limit], dtype=np.float32)
    return np.clip(np.array(extended, dtype=np.float32), np.tile(low, 2), np.tile(high, 2))


def points_from_mask(mask: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative points for ``mask`` (H, W), searched inside ``box`` (4,).

    Returns (N, 2) float32 (x, y) pixel indices and (N,) float32 labels (1s, then 0s).
    """
    x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
    x1, y1 = int(np.ceil(box[2])), int(np.ceil(box[3]))
    crop = np.asarray(mask[y0:y1, x0:x1], dtype=bool)
    inner, outer = _smoothed_distances(crop)
    positives = _peaks(inner, POSITIVE_MIN_DISTANCE)
    negatives = _peaks(outer, NEGATIVE_MIN_DISTANCE)
    rows_cols = np.concatenate([positives, negatives]).astype(np.float32)
    rows_cols += np.array([y0, x0], dtype=np.float32)  # crop -> image coordinates
    points = rows_cols[:, ::-1]  # (row, col) -> (x, y); SAM itself shifts to pixel centres
    labels = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
    return np.ascontiguousarray(points, dtype=np.float32), labels.astype(np.float32)


def single_point_from_mask(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool mask -> (2,) float32 (x, y): the pixel farthest inside the object
    (argmax of the smoothed inner distance)."""
    inner, _ = _smoothed_distances(np.asarray(mask, dtype=bool))
    row, col = np.unravel_index(np.argmax(inner), inner.shape)
    return np.array([col, row], dtype=np.float32)


def mask_logits(mask: np.ndarray, transform: ModelInputTransform, low_res_size: int) -> np.ndarray:
    """(H, W) bool mask -> (1, s, s) float32 logits (±6.9) aligned with the model's
    low-resolution output, so ``transform.masks`` maps them back onto ``mask``.

    The mask takes the image's path into the model frame (resize, pad), then each
    low-resolution pixel averages the S/s × S/s block it covers there: the inverse of the
    upsampling that turns low-resolution logits into full masks.
    """
    tensor = torch.from_numpy(np.asarray(mask, dtype=np.float32))[None, None]
    framed = transform.label_masks(tensor)
    fraction = F.interpolate(framed, size=(low_res_size, low_res_size), mode="area")
    logits = torch.where(fraction[0] >= 0.5, MASK_LOGIT, -MASK_LOGIT)
    return logits.numpy().astype(np.float32)


def _smoothed_distances(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed distance to the object's outline, kept inside (inner) or outside (outer)."""
    outline = find_boundaries(mask, mode="outer")
    distance = ndimage.gaussian_filter(ndimage.distance_transform_edt(~outline), DISTANCE_SIGMA)
    return np.where(mask, distance, 0.0), np.where(mask, 0.0, distance)


def _peaks(distance: np.ndarray, min_distance: int) -> np.ndarray:
    """(K, 2) (row, col) of the highest local maxima of a distance map, K ≤ the cap."""
    if not distance.any():
        return np.zeros((0, 2), dtype=np.int64)
    return peak_local_max(
        distance,
        min_distance=min_distance,
        exclude_border=False,
        num_peaks=MAX_POINTS_PER_LABEL,
    ).reshape(-1, 2)
