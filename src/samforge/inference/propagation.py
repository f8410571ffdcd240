"""Interactive 3D segmentation: prompt one or more slices, propagate through the volume.

>>> result = propagate(predictor, volume, [SlicePrompt(40, box=[60, 80, 120, 130])],
...                    PropagationSettings(mode="mask", iou_threshold=0.8))
>>> result.mask.shape   # (D, H, W) bool

The prompted slices are segmented from the user's prompts first. Then propagation runs
down from the lowest and up from the highest prompted slice, and fills each gap between
two prompted slices from both ends (the lower half from below, the upper half from above).
Each new slice is prompted from the mask of the slice before it
(:mod:`samforge.inference.volume_prompts`); a front stops, without writing the slice, at
the volume's edge, when the new mask is empty, or when IoU(previous mask, new mask) falls
below ``iou_threshold`` (the object ended, or the model jumped to another one).

Every slice is embedded once per propagation: fronts never overlap, and the prompted
slices are not embedded again when a front starts from them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..data.intensity import IntensityMapping, volume_normalizer
from ..errors import ConfigError, InputImageError, PromptError
from .objects import wants_multimask
from .predictor import Predictor
from .volume_prompts import SlicePrompts, check_box_extension, check_mode, prompts_from_mask


@dataclass(frozen=True)
class PropagationSettings:
    """How masks travel from slice to slice.

    mode: one of :data:`samforge.inference.volume_prompts.PROMPT_MODES`.
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
class SlicePrompt:
    """The user's prompts for one object on slice ``index`` (original pixels, (x, y)).

    points: (N, 2) and labels (N,) (1 foreground, 0 background); box: (4,) x0, y0, x1, y1
    with exclusive ends. At least one of them.
    """

    index: int
    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    box: np.ndarray | None = None


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
    prompts: Sequence[SlicePrompt],
    settings: PropagationSettings | None = None,
    *,
    mapping: IntensityMapping | None = None,
) -> PropagationResult:
    """Segment one object through a (D, H, W) volume from prompts on one or more slices.

    Args:
        predictor: embeds each slice (through its in-memory cache) and decodes prompts.
        volume: (D, H, W) intensities, slice axis first.
        prompts: one :class:`SlicePrompt` per prompted slice (distinct slices).
        settings: propagation mode, IoU stop and box extension.
        mapping: one intensity mapping for every slice (default: ``volume_normalizer``
            with the predictor's intensity mode and window).
    """
    settings = settings or PropagationSettings()
    volume = _checked_volume(volume)
    anchors = _checked_prompts(prompts, volume.shape)
    if mapping is None:
        mapping = volume_normalizer(volume, mode=predictor.intensity, window=predictor.window)
    runner = _Runner(predictor, volume, mapping, settings)
    for prompt in anchors:
        runner.segment_prompted(prompt)
    indices = [prompt.index for prompt in anchors]
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
    ) -> None:
        self.predictor = predictor
        self.volume = volume
        self.mapping = mapping
        self.settings = settings
        depth = volume.shape[0]
        self.result = PropagationResult(
            np.zeros(volume.shape, dtype=bool), np.zeros(depth, dtype=bool)
        )

    def segment_prompted(self, prompt: SlicePrompt) -> None:
        num_points = 0 if prompt.points is None else len(prompt.points)
        multimask = wants_multimask(num_points, int(prompt.box is not None))
        mask = self._decode(prompt.index, prompt.points, prompt.labels, prompt.box, None, multimask)
        self.result.mask[prompt.index] = mask
        self.result.segmented[prompt.index] = True

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
            mask = self._decode_derived(index, prompts)
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

    def _decode_derived(self, index: int, prompts: SlicePrompts) -> np.ndarray:
        mask_input = None if prompts.mask_input is None else prompts.mask_input[None]
        return self._decode(index, prompts.points, prompts.labels, prompts.box, mask_input, False)

    def _decode(
        self,
        index: int,
        points: np.ndarray | None,
        labels: np.ndarray | None,
        box: np.ndarray | None,
        mask_input: np.ndarray | None,
        multimask: bool,
    ) -> np.ndarray:
        """Embed slice ``index`` (or take it from the cache) and return its (H, W) mask."""
        self.predictor.set_image(self.volume[index], mapping=self.mapping)
        prediction = self.predictor.predict(
            points=points, labels=labels, boxes=box, mask_input=mask_input, multimask=multimask
        ).best()
        self.result.decoded += 1
        return prediction.masks[0, 0]


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


def _checked_prompts(prompts: Sequence[SlicePrompt], shape: tuple[int, ...]) -> list[SlicePrompt]:
    if not prompts:
        raise PromptError("propagation needs prompts on at least one slice.")
    anchors = sorted(prompts, key=lambda prompt: prompt.index)
    indices = [prompt.index for prompt in anchors]
    if len(set(indices)) != len(indices):
        raise PromptError(f"slices {indices} repeat: give all prompts of a slice together.")
    for prompt in anchors:
        if not 0 <= prompt.index < shape[0]:
            raise PromptError(
                f"prompted slice {prompt.index} is outside the volume's {shape[0]} slices."
            )
        if prompt.points is None and prompt.box is None:
            raise PromptError(f"slice {prompt.index} has no prompt: give a box or points.")
    return anchors
