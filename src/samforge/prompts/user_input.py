"""Checks and batching of user prompts for the Predictor.

Prompts arrive as arrays in original-image pixels, for one object or a batch of B
objects; they leave as float tensors of shape (B, ...) or a :class:`PromptError` that
says what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import PromptError

VALID_POINT_LABELS = (-1, 0, 1, 2, 3)


@dataclass(frozen=True)
class PromptBatch:
    """Prompts for B objects, in original-image pixels.

    points: (B, N, 2) as (x, y), or None; labels: (B, N) with 1 foreground, 0 background,
    −1 padding (for objects with fewer points); boxes: (B, 4) x0, y0, x1, y1 with the end
    exclusive, or None; mask_input: (B, 1, s, s) low-resolution logits, or None.
    """

    points: torch.Tensor | None
    labels: torch.Tensor | None
    boxes: torch.Tensor | None
    mask_input: torch.Tensor | None

    @property
    def num_objects(self) -> int:
        for value in (self.points, self.boxes, self.mask_input):
            if value is not None:
                return value.shape[0]
        return 0


def _as_float_array(value, name: str) -> np.ndarray:
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


def validate_prompts(
    image_size: tuple[int, int],
    low_res_size: int,
    points=None,
    labels=None,
    boxes=None,
    mask_input=None,
) -> PromptBatch:
    """Check prompts against an image of ``image_size`` = (H, W) and batch them."""
    height, width = image_size
    point_tensor = label_tensor = box_tensor = mask_tensor = None
    sizes: dict[str, int] = {}

    if points is not None or labels is not None:
        if points is None or labels is None:
            raise PromptError("points and labels go together: pass both, one label per point.")
        point_array = _batched(
            _as_float_array(points, "points"), "points", 2, "(N, 2) or (B, N, 2)"
        )
        label_array = _batched(_as_float_array(labels, "labels"), "labels", 1, "(N,) or (B, N)")
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
        real = label_array != -1
        xs, ys = point_array[..., 0][real], point_array[..., 1][real]
        outside = (xs < 0) | (xs >= width) | (ys < 0) | (ys >= height)
        if outside.any():
            first = (float(xs[outside][0]), float(ys[outside][0]))
            raise PromptError(
                f"{int(outside.sum())} point(s) lie outside the {width}×{height} (W×H) image, "
                f"e.g. (x, y) = {first}; points are (x, y) pixel coordinates with "
                f"0 ≤ x < {width} and 0 ≤ y < {height}."
            )
        point_tensor, label_tensor = torch.from_numpy(point_array), torch.from_numpy(label_array)
        sizes["points"] = point_array.shape[0]

    if boxes is not None:
        box_array = _batched(_as_float_array(boxes, "boxes"), "boxes", 1, "(4,) or (B, 4)")
        if box_array.shape[-1] != 4:
            raise PromptError(f"boxes must be x0, y0, x1, y1; got shape {box_array.shape}.")
        x0, y0, x1, y1 = box_array.T
        if np.any((x1 <= x0) | (y1 <= y0)):
            raise PromptError(
                f"boxes must be ordered x0 < x1 and y0 < y1 (x0, y0, x1, y1), got "
                f"{box_array.tolist()}."
            )
        if np.any((x0 < 0) | (y0 < 0) | (x1 > width) | (y1 > height)):
            raise PromptError(
                f"boxes {box_array.tolist()} reach outside the {width}×{height} (W×H) image; "
                f"clip them to 0 ≤ x ≤ {width}, 0 ≤ y ≤ {height}."
            )
        box_tensor = torch.from_numpy(box_array)
        sizes["boxes"] = box_array.shape[0]

    if mask_input is not None:
        mask_array = _as_float_array(mask_input, "mask_input")
        while mask_array.ndim < 4:
            mask_array = mask_array[None]
        expected = (low_res_size, low_res_size)
        if mask_array.ndim != 4 or mask_array.shape[1] != 1 or mask_array.shape[2:] != expected:
            raise PromptError(
                f"mask_input has shape {mask_array.shape}; expected low-resolution logits "
                f"(B, 1, {low_res_size}, {low_res_size}) as returned in low_res_logits."
            )
        mask_tensor = torch.from_numpy(mask_array)
        sizes["mask_input"] = mask_array.shape[0]

    if not sizes:
        raise PromptError("no prompt given: pass points with labels, boxes, or both.")
    if len(set(sizes.values())) > 1:
        raise PromptError(f"prompts disagree on the number of objects: {sizes}.")
    return PromptBatch(point_tensor, label_tensor, box_tensor, mask_tensor)
