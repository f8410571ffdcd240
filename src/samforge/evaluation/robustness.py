"""Robustness sweep: the interactive 2D protocol on clean and corrupted images.

Each image is evaluated clean (``corruption="clean"``, ``severity=0``) and after every chosen
corruption type and severity of :mod:`samforge.data.corruptions` (applied to SAM's 0–255
input, seeded by the image name so a rerun draws the same degradation). The summary gives,
per model, the clean Dice, the degraded Dice (mean over all corruptions and severities) and
the Dice of each corruption and severity, all at the last round (and at the first, the start
prompt alone, which is what RobustMedSAM reports).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from ..data.corruptions import PAPER_SEVERITY, corrupt
from ..inference import Predictor
from .interactive2d import InteractiveSettings, evaluate_image, result_rows
from .plots import plot_robustness_heatmap
from .report import image_level, mean_by, write_report
from .runs import EvalImage, done_keys, progress_bar

CLEAN = "clean"


def variants(
    image: EvalImage, corruptions: Sequence[str], severities: Sequence[int]
) -> Iterable[tuple[str, int, Callable[[], np.ndarray]]]:
    """(corruption, severity, make the (H, W, 3) input) for the clean image and each
    degradation; inputs are made lazily, so finished ones cost nothing on resume."""
    yield CLEAN, 0, lambda: image.rgb
    seed = zlib.crc32(image.name.encode())
    for kind in corruptions:
        for severity in severities:
            yield kind, int(severity), partial(corrupt, image.rgb, kind, severity, seed)


def run_robustness(
    predictors: dict[str, Predictor],
    images: Iterable[EvalImage],
    corruptions: Sequence[str],
    severities: Sequence[int] = (PAPER_SEVERITY,),
    settings: InteractiveSettings | None = None,
    *,
    rows: list[dict] | None = None,
    checkpoint: Callable[[list[dict]], object] | None = None,
    show_progress: bool = True,
) -> list[dict]:
    """Evaluate every (image, corruption, severity, model) not yet in ``rows``.

    Returns all rows (old and new), with ``corruption`` and ``severity`` columns.
    """
    settings = settings or InteractiveSettings()
    rows = list(rows or [])
    fields = ("model", "dataset", "case", "start", "corruption", "severity")
    finished = done_keys(rows, fields)
    with progress_bar("robustness") as progress:
        task = progress.add_task("images", total=None, visible=show_progress)
        for image in images:
            for kind, severity, make in variants(image, corruptions, severities):
                todo = [
                    model
                    for model in predictors
                    if (model, image.dataset, image.name, settings.start, kind, str(severity))
                    not in finished
                ]
                if not todo:
                    continue
                degraded = make()
                for model in todo:
                    result = evaluate_image(
                        predictors[model],
                        degraded,
                        image.label,
                        settings,
                        name=image.name,
                        intensity="none",
                        objects=image.objects,
                    )
                    if result is None:
                        continue
                    rows.extend(
                        result_rows(
                            result,
                            model=model,
                            dataset=image.dataset,
                            modality=image.modality,
                            case=image.name,
                            start=settings.start,
                            corruption=kind,
                            severity=severity,
                        )
                    )
            if checkpoint is not None:
                checkpoint(rows)
            progress.advance(task)
    return rows


def summarize_robustness(rows: Sequence[dict]) -> dict:
    """Clean and degraded Dice per model, and Dice per corruption and severity.

    Means are over images of the per-image Dice (mean over classes); the degraded Dice is
    the mean over the (corruption, severity) cells, so each corruption weighs the same.
    """
    per_image = image_level(rows, ("model", "corruption", "severity"))
    cells = mean_by(per_image, ("model", "corruption", "severity", "round"))
    rounds = sorted({int(r) for *_, r in cells})
    summary_rounds = sorted({rounds[0], rounds[-1]}) if rounds else []
    table, overall = [], []
    for model in sorted({m for m, *_ in cells}):
        for round_ in summary_rounds:
            clean = cells.get((model, CLEAN, 0, round_), float("nan"))
            degraded = [
                d for (m, c, _, r), d in cells.items() if m == model and r == round_ and c != CLEAN
            ]
            overall.append(
                {
                    "model": model,
                    "round": round_,
                    "clean_dice": clean,
                    "degraded_dice": float(np.mean(degraded)) if degraded else float("nan"),
                }
            )
        for (m, c, s, r), d in sorted(cells.items()):
            if m == model and r in summary_rounds:
                table.append(
                    {"model": m, "corruption": c, "severity": int(s), "round": r, "dice": d}
                )
    return {"protocol": "robustness", "clean_vs_degraded": overall, "per_corruption": table}


def write_robustness_report(out_dir: Path, rows: list[dict], summary: dict, title: str) -> Path:
    """Heatmap and report files into ``out_dir``."""
    out_dir = Path(out_dir)
    figures = {}
    if rows:
        figures["robustness_heatmap"] = plot_robustness_heatmap(rows, out_dir / "robustness.png")
    return write_report(out_dir, rows, summary, figures, title)
