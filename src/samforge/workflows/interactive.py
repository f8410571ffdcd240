"""The interactive 2D protocol as the demo and the experiments run it: phantom images, one
evaluation with its report, Dice per round, and the Dice of masks that need no model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.phantoms import phantom_case
from ..evaluation import (
    EvalImage,
    InteractiveSettings,
    dice,
    iter_images,
    object_masks,
    run_interactive2d,
    summarize_interactive,
    write_interactive_report,
)
from ..inference import Predictor
from ..prompts import box_from_masks

MODALITIES_2D = ("ct", "mr", "us", "xray")
BOTH_STARTS = ("box", "point")


def phantom_images(
    per_modality: int, size: int, seed: int, modalities: Sequence[str] = MODALITIES_2D
) -> list[EvalImage]:
    """``per_modality`` 2D phantoms (size × size) of each modality, seeds ``seed``,
    ``seed + 1``, ...; each modality is one dataset (``"<modality> phantoms"``) in reports."""
    images: list[EvalImage] = []
    for modality in modalities:
        cases = [
            phantom_case(modality, shape=(size, size), seed=seed + i) for i in range(per_modality)
        ]
        images += iter_images(cases, f"{modality} phantoms")
    return images


@dataclass(frozen=True)
class Interactive2DRun:
    """The rows, summary and ``report.html`` of one interactive 2D evaluation."""

    rows: list[dict]
    summary: dict
    report: Path

    def dice_by_round(self) -> dict[str, dict[str, dict[int, float]]]:
        """{model: {start: {round: mean Dice over images}}}."""
        table: dict[str, dict[str, dict[int, float]]] = {}
        for item in self.summary["dice_per_round"]:
            starts = table.setdefault(item["model"], {})
            starts.setdefault(item["start"], {})[int(item["round"])] = item["dice"]
        return table


def evaluate_interactive2d(
    predictors: Mapping[str, Predictor],
    images: Sequence[EvalImage],
    out: Path,
    title: str,
    settings: InteractiveSettings,
    starts: Sequence[str] = BOTH_STARTS,
) -> Interactive2DRun:
    """Every model from every start prompt, ``settings.rounds`` predictions per object;
    writes results.csv, summary.json, the plots and report.html into ``out``."""
    rows, overlays = run_interactive2d(
        dict(predictors), images, tuple(starts), settings, show_progress=False
    )
    summary = summarize_interactive(rows, settings)
    report = write_interactive_report(Path(out), rows, overlays, summary, title)
    return Interactive2DRun(rows, summary, report)


def model_free_dice(images: Sequence[EvalImage]) -> dict[str, float]:
    """Mean Dice, over the images with objects, of two masks that need no model: the whole
    image, and the filled bounding box of every object (what a box prompt alone tells)."""
    whole, boxes = [], []
    for image in images:
        masks, _ = object_masks(image.label)
        if len(masks) == 0:
            continue
        target = image.label > 0
        filled = np.zeros_like(target)
        for x0, y0, x1, y1 in box_from_masks(masks).round().int().tolist():
            filled[y0:y1, x0:x1] = True  # end exclusive
        whole.append(dice(np.ones_like(target), target))
        boxes.append(dice(filled, target))
    return {"whole image": float(np.mean(whole)), "filled box": float(np.mean(boxes))}
