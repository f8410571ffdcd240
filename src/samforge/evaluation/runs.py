"""Running the interactive protocol over datasets: images, resume, progress, summaries.

Every image is normalised once to SAM's (H, W, 3) 0–255 input (volumes with one mapping
for the whole volume, so slices look alike) and given to the Predictor unchanged
(``intensity="none"``), so clean and corrupted versions go through the same path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..data import Case, IntensitySettings, MaskObject, slice_volume
from ..errors import DataError
from ..inference import Predictor
from .interactive2d import InteractiveSettings, evaluate_image, result_rows
from .plots import Overlay, plot_dataset_bars, plot_dice_vs_round, plot_overlays
from .report import image_level, mean_by, write_report

MAX_OVERLAYS = 8


@dataclass(frozen=True)
class EvalImage:
    """One 2D image ready for the protocol.

    Attributes:
        name: unique case name (slices: ``<volume>_z012``).
        rgb: (H, W, 3) float32 on 0–255, SAM's input.
        label: (H, W) integer label map.
        dataset, modality: for grouping the results.
        objects: the case's published masks (``Case.objects``), scored one by one; None
            when the objects are the label map's connected components.
    """

    name: str
    rgb: np.ndarray
    label: np.ndarray
    dataset: str
    modality: str
    objects: tuple[MaskObject, ...] | None = None


def iter_images(
    cases: Iterable[Case],
    dataset: str,
    *,
    intensity: str = "auto",
    window: str | tuple[float, float] | None = None,
    limit: int | None = None,
) -> Iterator[EvalImage]:
    """2D images of labelled cases; volumes are cut into their slices with foreground.

    ``intensity`` and ``window`` map the intensities (:class:`IntensitySettings`: one
    mapping for all slices of a volume). Cases without a label are skipped; ``limit`` caps
    the number of images yielded.

    Raises:
        DataError: no case has a label (a run would evaluate nothing).
    """
    settings = IntensitySettings(intensity, window)
    count = labelled = 0
    for case in cases:
        if case.label is None:
            continue
        labelled += 1
        mapping = settings.case_mapping(case)
        planes: Iterator[Case]
        if case.is_volume:  # the slices of a labelled volume have labels
            planes = (s for s in slice_volume(case, 0, True) if s.label is not None)
        else:
            planes = iter([case])
        for plane in planes:
            if limit is not None and count >= limit:
                return
            assert plane.label is not None  # labelled cases only, see above
            yield EvalImage(
                plane.name,
                mapping(plane.image),
                plane.label,
                dataset,
                case.modality,
                plane.objects,
            )
            count += 1
    if labelled == 0:
        raise DataError(
            f"dataset {dataset!r} has no case with a label map, so nothing can be evaluated; "
            "check that its labels are found (see `samforge data inspect`)."
        )


def progress_bar(description: str) -> Progress:
    """A rich progress bar (images done, elapsed time); the total is often unknown."""
    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    )


def done_keys(rows: Iterable[dict], fields: Sequence[str]) -> set[tuple]:
    """The combinations of ``fields`` (e.g. model, case, start) already in ``rows``."""
    return {tuple(str(row[f]) for f in fields) for row in rows}


def run_interactive2d(
    predictors: dict[str, Predictor],
    images: Iterable[EvalImage],
    starts: Sequence[str],
    settings: InteractiveSettings,
    *,
    rows: list[dict] | None = None,
    checkpoint: Callable[[list[dict]], object] | None = None,
    show_progress: bool = True,
) -> tuple[list[dict], list[Overlay]]:
    """Evaluate every (image, model, start) combination not yet in ``rows``.

    Args:
        predictors: model name -> Predictor (names go into the ``model`` column).
        rows: results of an earlier run into the same folder; their (model, dataset, case,
            start) combinations are skipped, so nothing is computed twice.
        checkpoint: called with all rows after each image (e.g. to rewrite the CSV).

    Returns:
        All rows (old and new) and up to :data:`MAX_OVERLAYS` qualitative examples.
    """
    rows = list(rows or [])
    finished = done_keys(rows, ("model", "dataset", "case", "start"))
    overlays: list[Overlay] = []
    with progress_bar("interactive 2D") as progress:
        task = progress.add_task("images", total=None, visible=show_progress)
        for image in images:
            for model, predictor in predictors.items():
                for start in starts:
                    if (model, image.dataset, image.name, start) in finished:
                        continue
                    result = evaluate_image(
                        predictor,
                        image.rgb,
                        image.label,
                        replace(settings, start=start),
                        name=image.name,
                        intensity="none",
                        objects=image.objects,
                    )
                    if result is None:
                        continue
                    fields = dict(
                        model=model,
                        dataset=image.dataset,
                        modality=image.modality,
                        case=image.name,
                        start=start,
                        use_masks=settings.use_masks,
                    )
                    rows.extend(result_rows(result, **fields))
                    if len(overlays) < MAX_OVERLAYS:
                        title = (
                            f"{model} · {start} · {image.name}\nDice {result.image_dice[-1]:.2f}"
                        )
                        overlays.append(Overlay(image.rgb, image.label, result.prediction, title))
            if checkpoint is not None:
                checkpoint(rows)
            progress.advance(task)
    return rows, overlays


def summarize_interactive(rows: Sequence[dict], settings: InteractiveSettings) -> dict:
    """Mean over images of the per-image Dice, per model, start and round; and the final
    round's Dice per dataset and per modality."""
    per_image = image_level(rows, ("model", "start", "dataset", "modality"))
    curve = mean_by(per_image, ("model", "start", "round"))
    images = dict.fromkeys(curve, 0)
    for row in per_image:
        images[(row["model"], row["start"], row["round"])] += 1
    last = max((int(row["round"]) for row in rows), default=0)
    final = [row for row in per_image if int(row["round"]) == last]
    by_dataset = mean_by(final, ("dataset", "model", "start"))
    by_modality = mean_by(final, ("modality", "model", "start"))
    # Datasets scored per mask (SA-Med2D-20M): their papers' figure, the mean over masks.
    masks = [r for r in rows if int(r["round"]) == last and r.get("mask") not in (None, "")]
    by_mask = mean_by(masks, ("dataset", "model", "start"))
    summary = {
        "protocol": "interactive2d",
        "settings": {
            "rounds": settings.rounds,
            "use_masks": settings.use_masks,
            "min_size": settings.min_size,
            "seed": settings.seed,
        },
        "dice_per_round": [
            {"model": m, "start": s, "round": int(r), "dice": d, "images": images[(m, s, r)]}
            for (m, s, r), d in sorted(curve.items())
        ],
        "final_dice_per_dataset": [
            {"dataset": ds, "model": m, "start": s, "round": last, "dice": d}
            for (ds, m, s), d in sorted(by_dataset.items())
        ],
        "final_dice_per_modality": [
            {"modality": mo, "model": m, "start": s, "round": last, "dice": d}
            for (mo, m, s), d in sorted(by_modality.items())
        ],
    }
    if by_mask:
        summary["final_dice_per_mask"] = [
            {"dataset": ds, "model": m, "start": s, "round": last, "dice": d}
            for (ds, m, s), d in sorted(by_mask.items())
        ]
    return summary


def write_interactive_report(
    out_dir: Path, rows: list[dict], overlays: Sequence[Overlay], summary: dict, title: str
) -> Path:
    """Plots (Dice vs round, per-dataset bars, overlays) and the report files."""
    out_dir = Path(out_dir)
    figures: dict[str, Path] = {}
    if rows:
        figures["dice_vs_round"] = plot_dice_vs_round(rows, out_dir / "dice_vs_round.png")
        figures["dice_per_dataset"] = plot_dataset_bars(rows, out_dir / "dice_per_dataset.png")
    if overlays:
        figures["examples"] = plot_overlays(overlays, out_dir / "examples.png")
    return write_report(out_dir, rows, summary, figures, title)
