"""Where and how the interactive 3D protocol prompts an object: micro-sam's start.

micro-sam's 3D evaluation (``evaluation/multi_dimensional_segmentation.py``,
``segment_slices_from_ground_truth``) prompts each object once, on the slice
``floor(mean(first, last))`` of the slices it occupies, with either

- ``"box"``: the exact box of the object's cross-section there, or
- ``"points"``: one positive and one negative point (its ``PointAndBoxPromptGenerator`` with
  one of each and ``dilation_strength=10``): the positive point is a uniformly random pixel
  of the cross-section; the negative one a uniformly random pixel of the cross-section's
  box widened by 10 pixels on every side (clipped to the image) that lies farther than 10
  pixels (3×3 dilations) from the object, or, when there is none, a random background pixel.

samforge adds ``"point"``: one positive point at the innermost pixel (the 2D protocol's
start). A single mask is decoded for every start, as micro-sam does. The random points come
from the generator the caller passes (seeded per case and object by the protocol), so a
run is reproducible, where micro-sam draws from numpy's global state.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from ..errors import InputImageError
from ..prompts import Prompts, box_from_masks, center_points

START_PROMPTS_3D: tuple[str, ...] = ("box", "points", "point")
# micro-sam's dilation_strength: the negative point keeps this far (pixels) from the object
# and is drawn within the object's box widened by as much.
NEGATIVE_POINT_MARGIN = 10


def central_slice(mask: np.ndarray) -> int:
    """``floor(mean(first, last))`` of the slices a (D, H, W) object occupies (micro-sam's
    prompt slice; for a connected object, the lower middle of its extent)."""
    slices = np.flatnonzero(mask.any(axis=(1, 2)))
    if slices.size == 0:
        raise InputImageError("the object mask is empty: it has no central slice.")
    return (int(slices[0]) + int(slices[-1])) // 2


def start_prompt(
    mask: np.ndarray, start: str, generator: torch.Generator | None = None
) -> tuple[int, Prompts]:
    """The protocol's prompt for a (D, H, W) object: its central slice, and the prompt of
    ``start`` (:data:`START_PROMPTS_3D`) on its cross-section there (one object)."""
    index = central_slice(mask)
    section = np.ascontiguousarray(mask[index])
    if start == "box":
        return index, Prompts(boxes=box_from_masks(torch.from_numpy(section)[None]))
    if start == "point":
        point = center_points(torch.from_numpy(section)[None])[:, None]  # (1, 1, 2)
        return index, Prompts(point, torch.ones(1, 1))
    if start == "points":
        generator = generator or torch.Generator().manual_seed(0)
        positive = _random_pixel(section, generator)
        negative = _random_pixel(negative_region(section), generator)
        if negative is None:
            negative = _random_pixel(~section, generator)
        points = [p for p in (positive, negative) if p is not None]
        labels = [1.0, 0.0][: len(points)]
        return index, Prompts(torch.tensor([points]), torch.tensor([labels]))
    raise InputImageError(f"start must be one of {START_PROMPTS_3D}; got {start!r}.")


def negative_region(section: np.ndarray, margin: int = NEGATIVE_POINT_MARGIN) -> np.ndarray:
    """(H, W) bool: pixels of the object's box widened by ``margin`` (clipped) that are
    farther than ``margin`` 3×3 dilations from the (H, W) object ``section``."""
    rows, columns = np.flatnonzero(section.any(axis=1)), np.flatnonzero(section.any(axis=0))
    widened = np.zeros_like(section, dtype=bool)
    widened[
        max(rows[0] - margin, 0) : rows[-1] + 1 + margin,
        max(columns[0] - margin, 0) : columns[-1] + 1 + margin,
    ] = True
    near = ndimage.binary_dilation(section, structure=np.ones((3, 3), bool), iterations=margin)
    return widened & ~near


def _random_pixel(region: np.ndarray, generator: torch.Generator) -> list[float] | None:
    """A uniformly random ``[x, y]`` of the True pixels of (H, W) ``region``, or None."""
    ys, xs = np.nonzero(region)
    if ys.size == 0:
        return None
    pick = int(torch.randint(ys.size, (1,), generator=generator))
    return [float(xs[pick]), float(ys[pick])]
