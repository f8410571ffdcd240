"""Overlap and surface metrics for binary masks, 2D or 3D, with voxel spacing.

Dice and IoU count pixels; HD95 and the normalised surface distance (NSD) measure distances
between mask surfaces in physical units (``spacing`` per array axis). The surface
definitions follow MONAI (``compute_hausdorff_distance(percentile=95)`` and
``compute_surface_dice``): a surface voxel is a mask voxel with a face neighbour outside
the mask, and distances come from the Euclidean distance transform with ``sampling=spacing``.
The tests check these functions against MONAI; MONAI itself is not a runtime dependency.

Empty-mask conventions (MONAI returns NaN/inf here, which breaks averages):

==========================  ======  ======  =======  =====
case                        Dice    IoU     HD95     NSD
==========================  ======  ======  =======  =====
both empty                  1.0     1.0     0.0      1.0
exactly one empty           0.0     0.0     inf      0.0
==========================  ======  ======  =======  =====
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from ..errors import InputImageError


def _pair(prediction: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    prediction, target = np.asarray(prediction, dtype=bool), np.asarray(target, dtype=bool)
    if prediction.shape != target.shape:
        raise InputImageError(
            f"prediction {prediction.shape} and target {target.shape} must have the same shape."
        )
    return prediction, target


def dice(prediction: np.ndarray, target: np.ndarray) -> float:
    """2|P∩T| / (|P| + |T|) for bool masks of any (equal) shape; 1.0 when both are empty."""
    prediction, target = _pair(prediction, target)
    total = int(prediction.sum()) + int(target.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(prediction, target).sum()) / total


def iou(prediction: np.ndarray, target: np.ndarray) -> float:
    """|P∩T| / |P∪T| for bool masks of any (equal) shape; 1.0 when both are empty."""
    prediction, target = _pair(prediction, target)
    union = int(np.logical_or(prediction, target).sum())
    if union == 0:
        return 1.0
    return int(np.logical_and(prediction, target).sum()) / union


def _spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...]:
    if spacing is None:
        return (1.0,) * ndim
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != ndim or not all(s > 0 for s in spacing):
        raise InputImageError(
            f"spacing {spacing} must hold {ndim} positive numbers, one per array axis."
        )
    return spacing


def surface(mask: np.ndarray) -> np.ndarray:
    """Surface voxels: mask voxels with a face neighbour outside the mask (or the array)."""
    eroded = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(mask.ndim, 1))
    return mask & ~eroded


def _surface_distances(
    prediction: np.ndarray, target: np.ndarray, spacing: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Distances from each prediction surface voxel to the target surface, and back."""
    pred_surface, target_surface = surface(prediction), surface(target)
    to_target = ndimage.distance_transform_edt(~target_surface, sampling=spacing)
    to_prediction = ndimage.distance_transform_edt(~pred_surface, sampling=spacing)
    return to_target[pred_surface], to_prediction[target_surface]


def hd95(
    prediction: np.ndarray, target: np.ndarray, spacing: Sequence[float] | None = None
) -> float:
    """Symmetric 95th-percentile Hausdorff distance between mask surfaces.

    The larger of the two directed 95th percentiles (MONAI's definition), in the units of
    ``spacing`` (one value per array axis, default 1). See the module table for empty masks.
    """
    prediction, target = _pair(prediction, target)
    spacing = _spacing(spacing, prediction.ndim)
    if not prediction.any() and not target.any():
        return 0.0
    if not prediction.any() or not target.any():
        return float("inf")
    forward, backward = _surface_distances(prediction, target, spacing)
    return float(max(np.percentile(forward, 95), np.percentile(backward, 95)))


def normalized_surface_distance(
    prediction: np.ndarray,
    target: np.ndarray,
    tolerance: float,
    spacing: Sequence[float] | None = None,
) -> float:
    """Normalised surface distance (surface Dice) at ``tolerance`` (units of ``spacing``).

    The fraction of both surfaces that lies within ``tolerance`` of the other surface:
    (|{p ∈ ∂P : d(p, ∂T) ≤ τ}| + |{t ∈ ∂T : d(t, ∂P) ≤ τ}|) / (|∂P| + |∂T|).
    """
    if tolerance < 0:
        raise InputImageError(f"the NSD tolerance must be ≥ 0; got {tolerance}.")
    prediction, target = _pair(prediction, target)
    spacing = _spacing(spacing, prediction.ndim)
    if not prediction.any() and not target.any():
        return 1.0
    if not prediction.any() or not target.any():
        return 0.0
    forward, backward = _surface_distances(prediction, target, spacing)
    close = int((forward <= tolerance).sum()) + int((backward <= tolerance).sum())
    return close / (forward.size + backward.size)
