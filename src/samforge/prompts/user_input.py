"""Checks of prompt values, each raising a :class:`PromptError` that says what was wrong.

Two kinds: what a prompt must be on its own (numeric, finite, the right shape, valid
labels, ordered boxes), checked when user input becomes a :class:`~samforge.prompts.Prompts`
record; and whether it fits an image (points and boxes inside it, mask logits of the
model's low-resolution size), checked when the Predictor decodes it.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import PromptError

VALID_POINT_LABELS = (-1, 0, 1, 2, 3)


def as_float_array(value, name: str) -> np.ndarray:
    """A list, array or tensor as float32 numbers, all finite."""
    array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    if not np.issubdtype(array.dtype, np.number):
        raise PromptError(f"{name} must be numeric, got dtype {array.dtype}.")
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise PromptError(f"{name} contains NaN or infinite values: {array.tolist()}.")
    return array


def _batched(array: np.ndarray, name: str, single_ndim: int, hint: str) -> np.ndarray:
    if array.ndim == single_ndim:
        return array[None]
    if array.ndim == single_ndim + 1:
        return array
    raise PromptError(f"{name} has shape {array.shape}; expected {hint}.")


def user_points(points, labels) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) or (B, N, 2) points with (N,) or (B, N) labels -> (B, N, 2) and (B, N)."""
    if points is None or labels is None:
        raise PromptError("points and labels go together: pass both, one label per point.")
    point_array = _batched(as_float_array(points, "points"), "points", 2, "(N, 2) or (B, N, 2)")
    label_array = _batched(as_float_array(labels, "labels"), "labels", 1, "(N,) or (B, N)")
    if point_array.shape[-1] != 2:
        raise PromptError(f"points must have (x, y) in the last axis, got {point_array.shape}.")
    if label_array.shape != point_array.shape[:2]:
        raise PromptError(
            f"labels {label_array.shape} do not match points {point_array.shape[:2]}: "
            "give one label per point."
        )
    bad_labels = sorted(set(np.unique(label_array).tolist()) - set(VALID_POINT_LABELS))
    if bad_labels:
        raise PromptError(
            f"point labels {bad_labels} are not valid: use 1 (foreground), 0 (background) "
            "or -1 (padding)."
        )
    return point_array, label_array


def user_boxes(boxes) -> np.ndarray:
    """(4,) or (B, 4) boxes x0, y0, x1, y1 -> (B, 4), each with x0 < x1 and y0 < y1."""
    box_array = _batched(as_float_array(boxes, "boxes"), "boxes", 1, "(4,) or (B, 4)")
    if box_array.shape[-1] != 4:
        raise PromptError(f"boxes must be x0, y0, x1, y1; got shape {box_array.shape}.")
    x0, y0, x1, y1 = box_array.T
    if np.any((x1 <= x0) | (y1 <= y0)):
        raise PromptError(
            f"boxes must be ordered x0 < x1 and y0 < y1 (x0, y0, x1, y1), got {box_array.tolist()}."
        )
    return box_array


def user_mask_input(mask_input) -> np.ndarray:
    """(s, s), (1, s, s) or (B, 1, s, s) low-resolution logits -> (B, 1, s, s)."""
    mask_array = as_float_array(mask_input, "mask_input")
    while mask_array.ndim < 4:
        mask_array = mask_array[None]
    if mask_array.ndim != 4 or mask_array.shape[1] != 1:
        raise _mask_size_error(mask_array.shape, "s")
    return mask_array


def check_points_inside(
    points: torch.Tensor, labels: torch.Tensor, image_size: tuple[int, int]
) -> None:
    """Every point but padding (label −1) lies inside an image of ``image_size`` (H, W)."""
    height, width = image_size
    real = labels != -1
    xs, ys = points[..., 0][real], points[..., 1][real]
    outside = (xs < 0) | (xs >= width) | (ys < 0) | (ys >= height)
    if outside.any():
        first = (float(xs[outside][0]), float(ys[outside][0]))
        raise PromptError(
            f"{int(outside.sum())} point(s) lie outside the {width}×{height} (W×H) image, "
            f"e.g. (x, y) = {first}; points are (x, y) pixel coordinates with "
            f"0 ≤ x < {width} and 0 ≤ y < {height}."
        )


def check_boxes_inside(boxes: torch.Tensor, image_size: tuple[int, int]) -> None:
    """Every box lies inside an image of ``image_size`` (H, W), ends included."""
    height, width = image_size
    x0, y0, x1, y1 = boxes.unbind(dim=1)
    if ((x0 < 0) | (y0 < 0) | (x1 > width) | (y1 > height)).any():
        raise PromptError(
            f"boxes {boxes.tolist()} reach outside the {width}×{height} (W×H) image; "
            f"clip them to 0 ≤ x ≤ {width}, 0 ≤ y ≤ {height}."
        )


def check_mask_size(mask_input: torch.Tensor, low_res_size: int) -> None:
    """The mask logits have the model's low-resolution size (s, s)."""
    if tuple(mask_input.shape[2:]) != (low_res_size, low_res_size):
        raise _mask_size_error(tuple(mask_input.shape), low_res_size)


def _mask_size_error(shape: tuple[int, ...], size: int | str) -> PromptError:
    return PromptError(
        f"mask_input has shape {shape}; expected low-resolution logits "
        f"(B, 1, {size}, {size}) as returned in low_res_logits."
    )
