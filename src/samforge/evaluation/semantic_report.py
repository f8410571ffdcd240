"""The report of a semantic evaluation (:mod:`.semantic`): overlays of each model's worst
cases, the per-class Dice chart and the results.csv / summary.json / report.html files.

The worst cases are chosen from all rows (a resumed run's too) and segmented again for the
figure, so the overlays always show the cases the summary ranks last. A 2D case is shown
whole; a volume by the slice where its worst-scored class differs most between reference
and prediction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..data import Case, IntensitySettings
from .plots import Overlay, plot_class_dice, plot_label_overlays
from .report import write_report
from .semantic import Segmenter, SemanticSettings, worst_cases

WORST_PER_MODEL = 2

CaseLookup = Callable[[str, str], Case | None]
"""``lookup(dataset, case_name) -> Case``: finds a case again for its overlay (None: a case
of an earlier run that this one does not read)."""


def worst_overlays(
    segmenters: dict[str, Segmenter],
    lookup: CaseLookup,
    rows: Sequence[dict],
    settings: SemanticSettings,
    per_model: int = WORST_PER_MODEL,
) -> list[Overlay]:
    """Overlays of each model's ``per_model`` cases of lowest mean Dice."""
    overlays = []
    for model, dataset, name in worst_cases(rows, per_model):
        case = lookup(dataset, name)
        if model not in segmenters or case is None:  # from an earlier run into the folder
            continue
        prediction = np.asarray(segmenters[model](case.image, case.spacing, case.modality))
        mine = [r for r in rows if (r["model"], r["dataset"], r["case"]) == (model, dataset, name)]
        overlays.append(case_overlay(case, prediction, mine, model, settings))
    return overlays


def case_overlay(
    case: Case, prediction: np.ndarray, rows: Sequence[dict], model: str, settings: SemanticSettings
) -> Overlay:
    """One case's overlay; a volume's slice is where its worst class errs most.

    Args:
        prediction: the case's (H, W) or (D, H, W) label map.
        rows: the case's rows (one per scored class) for this model.
    """
    assert case.label is not None  # scored cases have labels
    scored = [r for r in rows if np.isfinite(float(r["dice"]))]
    worst = min(scored, key=lambda r: float(r["dice"])) if scored else None
    mapping = IntensitySettings().case_mapping(case)
    mean = np.mean([float(r["dice"]) for r in scored]) if scored else float("nan")
    title = f"{model} · {case.name}\nmean Dice {mean:.2f}"
    if worst is not None:
        title += f" · worst {worst['class']} {float(worst['dice']):.2f}"
    if not case.is_volume:
        return Overlay(mapping(case.image), case.label, prediction, title)
    class_id = int(worst["class_id"]) if worst is not None else settings.scored[0]
    errors = ((prediction == class_id) != (case.label == class_id)).sum(axis=(1, 2))
    z = int(np.argmax(errors))
    return Overlay(mapping(case.image[z]), case.label[z], prediction[z], f"{title} · slice {z}")


def write_semantic_report(
    out_dir: Path,
    rows: list[dict],
    summary: dict,
    overlays: Sequence[Overlay],
    settings: SemanticSettings,
    title: str = "Semantic segmentation",
) -> Path:
    """The per-class Dice chart, the worst-case overlays and the report files."""
    out_dir = Path(out_dir)
    figures: dict[str, Path] = {}
    if summary["per_class"]:
        figures["dice_per_class"] = plot_class_dice(summary["per_class"], out_dir / "dice.png")
    if overlays:
        figures["worst_cases"] = plot_label_overlays(
            overlays, out_dir / "worst_cases.png", settings.class_names
        )
    return write_report(out_dir, rows, summary, figures, title)
