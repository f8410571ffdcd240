"""Interactive 3D segmentation: prompt one or more slices, propagate through the volume.

>>> result = propagate(predictor, volume, {40: Prompts.from_user(boxes=[60, 80, 120, 130])},
...                    PropagationSettings(mode="mask", iou_threshold=0.8))
>>> result.mask.shape   # (D, H, W) bool

The prompted slices are segmented from the user's prompts first. Then propagation runs
down from the lowest and up from the highest prompted slice, and fills each gap between
two prompted slices from both ends (the lower half from below, the upper half from above).
Each new slice is prompted from the mask of the slice before it
(:mod:`samforge.prompts.volume_prompts`); a front stops, without writing the slice, at
the volume's edge, when the new mask is empty, or when IoU(previous mask, new mask) falls
below ``iou_threshold`` (the object ended, or the model jumped to another one).

Every slice is embedded once per propagation: fronts never overlap, and the prompted
slices are not embedded again when a front starts from them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..data import IntensityMapping
from ..errors import ConfigError, InputImageError, PromptError
from ..prompts import Prompts, wants_multimask
from ..prompts.volume_prompts import check_box_extension, check_mode, prompts_from_mask
from .predictor import Predictor


@dataclass(frozen=True)
class PropagationSettings:
    """How masks travel from slice to slice.

    mode: one of :data:`samforge.prompts.volume_prompts.PROMPT_MODES`.
    iou_threshold: stop when IoU(previous slice's mask, new mask) is below this, in [0, 1].
    box_extension: fraction (< 1) of the box size, or pixels (≥ 1), added to each side.
    """

    mode: str = "mask"
    iou_threshold: float = 0.8
    box_extension: float = 0.0

    def __post_init__(self) -> None:
        check_mode(self.mode)
        check_box_extension(self.box_extension)
        if not 0.0 <= self.iou_threshold <= 1.0:
            raise ConfigError(f"iou_threshold must lie in [0, 1]; got {self.iou_threshold}.")

    def label(self) -> str:
        """A short name such as ``mask/iou0.8/ext0.1`` for tables and plots."""
        return f"{self.mode}/iou{self.iou_threshold:g}/ext{self.box_extension:g}"


@dataclass(frozen=True)
class Stop:
    """Where a front ended: ``last`` is the last slice it wrote (its start slice if none),
    ``step`` is −1 (down) or +1 (up), ``reason`` is "edge", "gap" (met the other front),
    "empty", or "iou" (then ``iou`` is the value that fell short)."""

    start: int
    step: int
    last: int
    reason: str
    iou: float | None = None


@dataclass
class PropagationResult:
    """mask: (D, H, W) bool; segmented: (D,) bool, the slices that were written;
    stops: one :class:`Stop` per front; decoded: number of slices decoded in all."""

    mask: np.ndarray
    segmented: np.ndarray
    stops: list[Stop] = field(default_factory=list)
    decoded: int = 0


def propagate(
    predictor: Predictor,
    volume: np.ndarray,
    prompts: Mapping[int, Prompts],
    settings: PropagationSettings | None = None,
    *,
    mapping: IntensityMapping | None = None,
    progress: Callable[[int], None] | None = None,
) -> PropagationResult:
    """Segment one object through a (D, H, W) volume from prompts on one or more slices.

    Args:
        predictor: embeds each slice (through its in-memory cache) and decodes prompts.
        volume: (D, H, W) intensities, slice axis first.
        prompts: slice index -> the user's prompts for the object on that slice (one
            object: points and/or a box, in the slice's pixels).
        settings: propagation mode, IoU stop and box extension.
        mapping: one intensity mapping for every slice (default:
            :meth:`Predictor.volume_mapping`, the predictor's intensity settings).
        progress: called with the number of slices decoded so far after each slice (at
            most D in all; fewer when the fronts stop early).
    """
    settings = settings or PropagationSettings()
    volume = _checked_volume(volume)
    anchors = _checked_prompts(prompts, volume.shape)
    if mapping is None:
        mapping = predictor.volume_mapping(volume)
    runner = _Runner(predictor, volume, mapping, settings, progress)
    for index, slice_prompts in anchors:
        runner.segment_prompted(index, slice_prompts)
    indices = [index for index, _ in anchors]
    runner.run(indices[0], -1, -1)
    runner.run(indices[-1], volume.shape[0], +1)
    for lower, upper in itertools.pairwise(indices):
        middle = (lower + upper) // 2
        runner.run(lower, middle + 1, +1)
        runner.run(upper, middle, -1)
    return runner.result


class _Runner:
    """The state of one propagation: the volume, the growing mask, the fronts' stops."""

    def __init__(
        self,
        predictor: Predictor,
        volume: np.ndarray,
        mapping: IntensityMapping,
        settings: PropagationSettings,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.predictor = predictor
        self.progress = progress
        self.volume = volume
        self.mapping = mapping
        self.settings = settings
        depth = volume.shape[0]
        self.result = PropagationResult(
            np.zeros(volume.shape, dtype=bool), np.zeros(depth, dtype=bool)
        )

    def segment_prompted(self, index: int, prompts: Prompts) -> None:
        mask = self._decode(index, prompts, wants_multimask(prompts))
        self.result.mask[index] = mask
        self.result.segmented[index] = True

    def run(self, start: int, stop: int, step: int) -> None:
        """Propagate from slice ``start`` (already segmented) over range(start+step, stop)."""
        settings = self.settings
        previous, last, iou = self.result.mask[start], start, None
        reason = "edge" if stop in (-1, self.volume.shape[0]) else "gap"
        for index in range(start + step, stop, step):
            if not previous.any():  # the prompted slice came out empty: nothing to follow
                reason = "empty"
                break
            prompts = prompts_from_mask(
                previous,
                settings.mode,
                self.predictor.transform,
                self.predictor.low_res_size,
                settings.box_extension,
            )
            mask = self._decode(index, prompts, multimask=False)
            if not mask.any():
                reason = "empty"
                break
            overlap = _iou(previous, mask)
            if overlap < settings.iou_threshold:
                reason, iou = "iou", overlap
                break
            self.result.mask[index] = mask
            self.result.segmented[index] = True
            previous, last = mask, index
        self.result.stops.append(Stop(start, step, last, reason, iou))

    def _decode(self, index: int, prompts: Prompts, multimask: bool) -> np.ndarray:
        """Embed slice ``index`` (or take it from the cache) and return its (H, W) mask."""
        self.predictor.set_image(self.volume[index], mapping=self.mapping)
        prediction = self.predictor.decode(prompts, multimask).best()
        self.result.decoded += 1
        if self.progress is not None:
            self.progress(self.result.decoded)
        return prediction.masks[0, 0].cpu().numpy()


# Not evaluation.metrics.iou: inference sits below evaluation (DESIGN.md's layers), and
# for the stop an empty union must count as no overlap (0), not as a perfect match (1).
def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 0.0


def _checked_volume(volume: np.ndarray) -> np.ndarray:
    volume = np.asarray(volume)
    if volume.ndim != 3 or 0 in volume.shape:
        raise InputImageError(
            f"propagation needs a (D, H, W) volume; got shape {volume.shape}. "
            "For a 2D image, use Predictor.predict."
        )
    return volume


def _checked_prompts(
    prompts: Mapping[int, Prompts], shape: tuple[int, ...]
) -> list[tuple[int, Prompts]]:
    """(slice index, prompts) pairs in slice order, each checked."""
    if not prompts:
        raise PromptError("propagation needs prompts on at least one slice.")
    anchors = sorted(prompts.items())
    for index, slice_prompts in anchors:
        if not 0 <= index < shape[0]:
            raise PromptError(f"prompted slice {index} is outside the volume's {shape[0]} slices.")
        if slice_prompts.points is None and slice_prompts.boxes is None:
            raise PromptError(f"slice {index} has no prompt: give a box or points.")
        if slice_prompts.num_objects != 1:
            raise PromptError(
                f"slice {index} has prompts for {slice_prompts.num_objects} objects: "
                "propagation follows one object, so give one box and/or its points."
            )
    return anchors
