"""The three ways an object's mask changes: prompts on a slice (the Predictor), a brush
stroke, and propagation through the volume (:func:`samforge.inference.propagate`).

Each is a plain function of arrays, so the annotator's results are exactly what the Python
API gives for the same prompts.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
from skimage.draw import disk

from ...data import IntensityMapping
from ...errors import PromptError
from ...inference import Predictor, PropagationResult, PropagationSettings, propagate
from ...prompts import wants_multimask
from .objects import ObjectInfo, SlicePrompts

MAX_BRUSH_RADIUS = 200


def segment_slice(
    predictor: Predictor, plane: np.ndarray, mapping: IntensityMapping, prompts: SlicePrompts
) -> np.ndarray:
    """The (H, W) bool mask of one object on one slice from its prompts: three masks and
    the best kept for a lone point, one mask otherwise (as ``propagate`` does on its
    prompted slices)."""
    record = prompts.to_prompts()
    predictor.set_image(plane, mapping=mapping)
    prediction = predictor.decode(record, wants_multimask(record)).best()
    return prediction.masks[0, 0].cpu().numpy()


def propagate_object(
    predictor: Predictor,
    volume: np.ndarray,
    mapping: IntensityMapping,
    info: ObjectInfo,
    settings: PropagationSettings,
    progress: Callable[[int], None] | None = None,
) -> PropagationResult:
    """Follow ``info``'s object through ``volume`` from every slice it was prompted on.

    Raises:
        PromptError: the object has no prompted slice yet.
    """
    if not info.prompts:
        raise PromptError(
            f"object {info.name!r} has no prompts yet: draw a box or click on one slice, "
            "then propagate."
        )
    anchors = {index: prompts.to_prompts() for index, prompts in info.prompts.items()}
    return propagate(predictor, volume, anchors, settings, mapping=mapping, progress=progress)


def paint_stroke(
    mask: np.ndarray, stroke: Sequence[tuple[float, float]], radius: float, erase: bool
) -> np.ndarray:
    """A copy of ``mask`` (H, W) bool with a brush stroke drawn (or erased): discs of
    ``radius`` pixels along the polyline through ``stroke``'s (x, y) points."""
    if not stroke:
        raise PromptError("a brush stroke needs at least one point.")
    if not 0.5 <= radius <= MAX_BRUSH_RADIUS:
        raise PromptError(f"brush radius must lie in [0.5, {MAX_BRUSH_RADIUS}]; got {radius}.")
    painted = np.zeros(mask.shape, dtype=bool)
    points = np.asarray(stroke, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(points).all():
        raise PromptError("brush stroke points must be finite numbers.")
    centres = [points[0]]
    for start, end in itertools.pairwise(points):
        # Discs at most half a radius apart leave no gaps along the line.
        steps = max(1, int(np.ceil(np.linalg.norm(end - start) / max(radius / 2, 0.5))))
        centres += [start + (end - start) * t for t in np.linspace(0, 1, steps + 1)[1:]]
    for x, y in centres:
        rows, cols = disk((y, x), radius, shape=mask.shape)
        painted[rows, cols] = True
    return mask & ~painted if erase else mask | painted
