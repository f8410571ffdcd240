"""Interactive 3D protocol: prompt each object on its central slice, propagate, score in 3D.

micro-sam's 3D evaluation (``evaluation/multi_dimensional_segmentation.py``), with the
differences named below.

Objects are the 3D connected components of each class (:func:`instances_from_labels`),
26-connected by default (``skimage.measure.label``'s default, as medico-sam; set
``connectivity`` 1 for 6-connected ones).
Each is prompted on its central slice, ``floor(mean(first, last))`` of its slices, with its
exact box, micro-sam's one positive and one negative point, or its innermost point
(:mod:`.start_prompts3d`), then propagated (:func:`samforge.inference.propagation.propagate`)
and scored against the object's own 3D mask: Dice, HD95 and NSD with the voxel spacing. On
the test data each class is scored too: the union of its propagated objects against the
class's 3D mask (:mod:`.interactive3d_report`; micro-sam scores the instance segmentation
as a whole, with mSA).

The propagation settings (mode × IoU threshold × box extension) are chosen per model and
start prompt by grid search on the VALIDATION cases only; the test cases are read after
the choice is made and only ever with the chosen setting. (The reference tuned them on
each test volume's own labels, which inflates its numbers.) :func:`micro_sam_grid` is the
reference's grid: 5 modes × IoU stops 0.5–0.9 × box extensions 0–0.25.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from ..data import Case, IntensitySettings, ObjectInstance, instances_from_labels
from ..errors import ConfigError, InputImageError
from ..inference import Predictor, PropagationSettings, propagate
from ..prompts.volume_prompts import PROMPT_MODES
from .interactive3d_report import (
    mean_dice_per_setting,
    setting_fields,
    summarize_interactive3d,
    write_interactive3d_report,
)
from .metrics import dice, hd95, normalized_surface_distance
from .start_prompts3d import START_PROMPTS_3D, central_slice, start_prompt

__all__ = [
    "START_PROMPTS_3D",
    "Protocol3D",
    "central_slice",
    "evaluate_case",
    "grid_search",
    "micro_sam_grid",
    "run_interactive3d",
    "settings_grid",
    "start_prompt",
    "summarize_interactive3d",
    "write_interactive3d_report",
]

DEFAULT_IOU_THRESHOLDS = (0.5, 0.8)
DEFAULT_BOX_EXTENSIONS = (0.0, 0.1)
# micro-sam's default grid (default_grid_search_values_multi_dimensional_segmentation).
MICRO_SAM_IOU_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
MICRO_SAM_BOX_EXTENSIONS = tuple(round(0.025 * step, 3) for step in range(11))
# The ``object`` column of class rows: they stand for all the class's objects.
CLASS_ROW_OBJECT = -1


@dataclass(frozen=True)
class Protocol3D:
    """What every object of every case goes through.

    start: "box" (exact box of the object on its central slice), "points" (micro-sam's
        random positive and negative point there) or "point" (its innermost pixel).
    min_size: smallest object in voxels; max_objects: at most this many objects per case
        (the largest), None for all; intensity, window: how the volume maps to SAM's
        input (:class:`IntensitySettings`, one mapping for all its slices); nsd_tolerance:
        NSD tolerance in the units of the spacing (mm for NIfTI/DICOM); connectivity: of
        the 3D components, 3 (26-connected, the default), 2 (18) or 1 (6); seed: of the
        random "points" start, drawn per case and object (the same whatever else is run).
    """

    start: str = "box"
    min_size: int = 20
    max_objects: int | None = None
    intensity: str = "auto"
    nsd_tolerance: float = 2.0
    window: str | tuple[float, float] | None = None
    connectivity: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.start not in START_PROMPTS_3D:
            raise ConfigError(f"start must be one of {START_PROMPTS_3D}; got {self.start!r}.")
        if self.max_objects is not None and self.max_objects < 1:
            raise ConfigError(f"max_objects must be ≥ 1 or None; got {self.max_objects}.")
        if self.connectivity not in (1, 2, 3):
            raise ConfigError(
                f"connectivity must be 3 (26-connected), 2 (18) or 1 (6); got {self.connectivity}."
            )
        IntensitySettings(self.intensity, self.window)  # a bad mode or window fails here

    @property
    def intensity_settings(self) -> IntensitySettings:
        return IntensitySettings(self.intensity, self.window)

    def generator(self, case_name: str, number: int) -> torch.Generator:
        """The random source of object ``number`` of ``case_name``'s start prompt."""
        key = zlib.crc32(f"{case_name}/{number}".encode())
        return torch.Generator().manual_seed(self.seed * 1_000_003 + key)


def settings_grid(
    modes: Sequence[str] = PROMPT_MODES,
    iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
    box_extensions: Sequence[float] = DEFAULT_BOX_EXTENSIONS,
) -> list[PropagationSettings]:
    """Every combination, in a fixed order (ties in the grid search go to the earliest)."""
    grid = [
        PropagationSettings(mode, float(threshold), float(extension))
        for mode, threshold, extension in itertools.product(modes, iou_thresholds, box_extensions)
    ]
    if not grid:
        raise ConfigError("the settings grid is empty: give at least one value of each.")
    return grid


def micro_sam_grid() -> list[PropagationSettings]:
    """micro-sam's default grid: 5 modes × 5 IoU stops × 11 box extensions (275)."""
    return settings_grid(PROMPT_MODES, MICRO_SAM_IOU_THRESHOLDS, MICRO_SAM_BOX_EXTENSIONS)


def case_objects(case: Case, protocol: Protocol3D) -> list[ObjectInstance]:
    """The case's objects, the ``max_objects`` largest if capped, in label order."""
    if not case.is_volume or case.label is None:
        raise InputImageError(
            f"case {case.name!r} must be a labelled volume for the 3D protocol "
            f"(image {case.image.shape}, label {'missing' if case.label is None else 'present'})."
        )
    objects = instances_from_labels(
        case.label, min_size=protocol.min_size, connectivity=protocol.connectivity
    )
    if protocol.max_objects is not None and len(objects) > protocol.max_objects:
        largest = sorted(range(len(objects)), key=lambda i: -objects[i].area)
        objects = [objects[i] for i in sorted(largest[: protocol.max_objects])]
    return objects


def evaluate_case(
    predictor: Predictor,
    case: Case,
    grid: Sequence[PropagationSettings],
    protocol: Protocol3D,
    *,
    surface_metrics: bool = True,
    class_scores: bool = False,
    on_embedded: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """One row per (object, setting): Dice (and HD95/NSD) of the propagated 3D mask; with
    ``class_scores``, also one per (class, setting): the union of the class's propagated
    objects against the class's 3D mask (``level`` "class", ``object`` -1; ``level``
    "object" otherwise).

    Slice embeddings are computed once per case, in batches
    (:meth:`Predictor.embed_volume`: the slices the objects span plus a margin, which
    propagation may overshoot into), and reused by every object and setting; any other
    slice a front reaches is embedded when reached. ``on_embedded`` gets (done, total)
    slices as they are embedded.
    """
    mapping = protocol.intensity_settings.volume_mapping(case.image, case.modality)
    objects = case_objects(case, protocol)
    rows = []
    unions: dict[tuple[int, int], np.ndarray] = {}  # (setting, class) -> predicted voxels
    with _volume_cache(predictor, case.image.shape[0]):
        predictor.embed_volume(
            case.image,
            mapping=mapping,
            indices=_spanned_slices(objects, case.image.shape[0]),
            progress=on_embedded,
        )
        for number, instance in enumerate(objects):
            generator = protocol.generator(case.name, number)
            index, prompts = start_prompt(instance.mask, protocol.start, generator)
            for setting_index, setting in enumerate(grid):
                result = propagate(
                    predictor, case.image, {index: prompts}, setting, mapping=mapping
                )
                row = {
                    "case": case.name,
                    "modality": case.modality,
                    "level": "object",
                    "object": number,
                    "class_id": instance.class_id,
                    "voxels": instance.area,
                    "start": protocol.start,
                    "prompt_slice": index,
                    **setting_fields(setting),
                    "slices_true": int(instance.mask.any(axis=(1, 2)).sum()),
                    "slices_segmented": int(result.segmented.sum()),
                    "dice": dice(result.mask, instance.mask),
                }
                if surface_metrics:
                    row.update(_surface_fields(result.mask, instance.mask, case, protocol))
                rows.append(row)
                if class_scores:
                    union = unions.setdefault(
                        (setting_index, instance.class_id), np.zeros_like(result.mask)
                    )
                    union |= result.mask
    for (setting_index, class_id), predicted in unions.items():
        truth = np.asarray(case.label) == class_id
        row = {
            "case": case.name,
            "modality": case.modality,
            "level": "class",
            "object": CLASS_ROW_OBJECT,
            "class_id": class_id,
            "num_objects": sum(instance.class_id == class_id for instance in objects),
            "voxels": int(truth.sum()),
            "start": protocol.start,
            **setting_fields(grid[setting_index]),
            "slices_true": int(truth.any(axis=(1, 2)).sum()),
            "slices_segmented": int(predicted.any(axis=(1, 2)).sum()),
            "dice": dice(predicted, truth),
        }
        if surface_metrics:
            row.update(_surface_fields(predicted, truth, case, protocol))
        rows.append(row)
    return rows


def grid_search(
    predictor: Predictor,
    val_cases: Iterable[Case],
    grid: Sequence[PropagationSettings],
    protocol: Protocol3D,
    on_case: Callable[[Case], None] | None = None,
    *,
    done: Sequence[dict] = (),
    on_rows: Callable[[list[dict]], None] | None = None,
    on_embedded: Callable[[int, int], None] | None = None,
) -> tuple[PropagationSettings, list[dict]]:
    """The setting with the highest mean per-object Dice on ``val_cases``, and the rows.

    Only validation cases are read here; ties go to the earliest setting in ``grid``.
    ``done`` holds rows of an earlier, interrupted run: a case whose rows cover the whole
    grid is taken from them instead of being recomputed. ``on_rows`` receives each case's
    new rows as soon as they exist (to save them); ``on_embedded`` is passed to
    :func:`evaluate_case`.
    """
    rows = []
    for case in val_cases:
        case_rows = finished_rows(done, case.name, grid)
        if case_rows is None:
            case_rows = evaluate_case(
                predictor, case, grid, protocol, surface_metrics=False, on_embedded=on_embedded
            )
            if on_rows is not None:
                on_rows(case_rows)
        rows.extend(case_rows)
        if on_case is not None:
            on_case(case)
    if not rows:
        raise ConfigError(
            "the validation data hold no objects: the grid search needs labelled volumes "
            f"with objects of at least {protocol.min_size} voxels."
        )
    means = mean_dice_per_setting(rows)
    best = max(grid, key=lambda setting: means[setting.label()])  # max keeps the first tie
    return best, rows


def finished_rows(
    done: Sequence[dict], case_name: str, grid: Sequence[PropagationSettings]
) -> list[dict] | None:
    """The rows of ``case_name`` in ``done`` if they cover every setting of ``grid``."""
    labels = {setting.label() for setting in grid}
    rows = [row for row in done if row["case"] == case_name and row["setting"] in labels]
    return rows if rows and {row["setting"] for row in rows} == labels else None


def run_interactive3d(
    predictors: dict[str, Predictor],
    val_cases: Sequence[Case],
    test_cases: Sequence[Case],
    grid: Sequence[PropagationSettings],
    protocol: Protocol3D,
    on_case: Callable[[Case], None] | None = None,
    *,
    rows: Sequence[dict] = (),
    checkpoint: Callable[[list[dict]], object] | None = None,
    on_embedded: Callable[[int, int], None] | None = None,
) -> tuple[list[dict], dict]:
    """Grid search on the validation cases, then the test cases with the chosen setting.

    Returns the long-format rows (``split`` "val" for the grid, "test" for the test run;
    ``model`` names the predictor) and a summary with the chosen setting per model.
    ``val_cases``/``test_cases`` may be lazy (a CaseList); each is iterated once per model,
    and no test case is loaded before that model's setting is chosen.

    Resuming: ``rows`` of an earlier run into the same output (same grid and protocol) are
    kept, and a case whose rows are all there is not recomputed; ``checkpoint`` receives
    all rows after every newly computed case. ``on_embedded`` gets (done, total) slices of
    the volume being embedded.
    """
    results = list(rows)
    chosen = {}

    def keep(model: str, split: str, new_rows: list[dict]) -> None:
        results.extend({"model": model, "split": split, **row} for row in new_rows)
        if checkpoint is not None:
            checkpoint(results)

    for name, predictor in predictors.items():
        earlier = {
            split: [row for row in rows if row["model"] == name and row["split"] == split]
            for split in ("val", "test")
        }
        chosen[name], _ = grid_search(
            predictor,
            val_cases,
            grid,
            protocol,
            on_case,
            done=earlier["val"],
            on_rows=partial(keep, name, "val"),
            on_embedded=on_embedded,
        )
        for case in test_cases:
            if finished_rows(earlier["test"], case.name, [chosen[name]]) is None:
                case_rows = evaluate_case(
                    predictor,
                    case,
                    [chosen[name]],
                    protocol,
                    class_scores=True,
                    on_embedded=on_embedded,
                )
                keep(name, "test", case_rows)
            if on_case is not None:
                on_case(case)
    return results, summarize_interactive3d(results, chosen, protocol)


def _surface_fields(
    prediction: np.ndarray, truth: np.ndarray, case: Case, protocol: Protocol3D
) -> dict:
    return {
        "hd95": hd95(prediction, truth, case.spacing),
        "nsd": normalized_surface_distance(prediction, truth, protocol.nsd_tolerance, case.spacing),
    }


# Slices beyond an object's extent that propagation typically still visits before stopping.
_SLICE_MARGIN = 2


def _spanned_slices(objects: Sequence, depth: int) -> list[int]:
    """The slices any object occupies, widened by ``_SLICE_MARGIN`` on both sides."""
    spanned: set[int] = set()
    for instance in objects:
        occupied = np.flatnonzero(instance.mask.any(axis=(1, 2)))
        if occupied.size:
            low = max(int(occupied[0]) - _SLICE_MARGIN, 0)
            high = min(int(occupied[-1]) + _SLICE_MARGIN, depth - 1)
            spanned.update(range(low, high + 1))
    return sorted(spanned)


@contextmanager
def _volume_cache(predictor: Predictor, depth: int) -> Iterator[None]:
    """Hold every slice of one volume in the predictor's memory cache while it is evaluated
    (all objects and settings reuse them), then free them."""
    capacity = predictor.cache.capacity
    predictor.cache.capacity = max(capacity, depth)
    try:
        yield
    finally:
        predictor.cache.clear()
        predictor.cache.capacity = capacity
