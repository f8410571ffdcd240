"""Summaries and the report of the interactive 3D protocol (:mod:`.interactive3d`).

Rows come in two levels (the ``level`` column): ``"object"``, one per object and setting
(what the grid search ranks settings by), and ``"class"``, one per class of a test case:
the union of that class's propagated objects against the class's whole 3D mask, as the 2D
protocol scores classes. Rows written before levels existed count as object rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .plots import plot_grid_dice, plot_test_dice
from .report import write_report

if TYPE_CHECKING:
    from ..inference import PropagationSettings
    from .interactive3d import Protocol3D


def is_level(row: dict, level: str) -> bool:
    """Whether ``row`` is of ``level``; rows without one are object rows."""
    return (row.get("level") or "object") == level


def mean_dice_per_setting(rows: Iterable[dict]) -> dict[str, float]:
    """Setting label -> mean Dice over the object rows of that setting."""
    values: dict[str, list[float]] = {}
    for row in rows:
        if is_level(row, "object"):
            values.setdefault(row["setting"], []).append(float(row["dice"]))
    return {label: float(np.mean(dices)) for label, dices in values.items()}


def summarize_interactive3d(
    rows: Sequence[dict], chosen: dict[str, PropagationSettings], protocol: Protocol3D
) -> dict:
    """Chosen settings, the validation grid table, per-model test means over objects and
    over classes, and per-class test means."""
    grid_table = []
    for name in chosen:
        val = [row for row in rows if row["model"] == name and row["split"] == "val"]
        for label, value in mean_dice_per_setting(val).items():
            grid_table.append({"model": name, "setting": label, "val_dice": value})
    test_table, class_table = [], []
    for name, setting in chosen.items():
        test = [row for row in rows if row["model"] == name and row["split"] == "test"]
        objects = [row for row in test if is_level(row, "object")]
        classes = [row for row in test if is_level(row, "class")]
        test_table.append(
            {
                "model": name,
                "setting": setting.label(),
                **_means(objects),
                "class_dice": _mean(row["dice"] for row in classes),
            }
        )
        for class_id in sorted({int(row["class_id"]) for row in test}):
            of_class = [row for row in test if int(row["class_id"]) == class_id]
            class_table.append(
                {
                    "model": name,
                    "class_id": class_id,
                    "objects": sum(is_level(row, "object") for row in of_class),
                    "object_dice": _mean(r["dice"] for r in of_class if is_level(r, "object")),
                    "class_dice": _mean(r["dice"] for r in of_class if is_level(r, "class")),
                }
            )
    return {
        "protocol": {
            "start": protocol.start,
            "min_size": protocol.min_size,
            "max_objects": protocol.max_objects,
            "connectivity": protocol.connectivity,
            "seed": protocol.seed,
            "nsd_tolerance": protocol.nsd_tolerance,
            "tuned_on": "validation data only",
        },
        "chosen_settings": {name: setting_fields(s) for name, s in chosen.items()},
        "test_results": test_table,
        "test_results_per_class": class_table,
        "validation_grid": grid_table,
    }


def write_interactive3d_report(
    out: Path, rows: list[dict], summary: dict, title: str = "Interactive 3D evaluation"
) -> Path:
    """results.csv, summary.json, the validation-grid and test-Dice plots and report.html."""
    out = Path(out)
    objects = [row for row in rows if is_level(row, "object")]
    figures = {
        "validation_Dice_per_setting": plot_grid_dice(summary, out / "validation_grid.png"),
        "test_Dice_per_object": plot_test_dice(objects, out / "test_dice.png"),
    }
    return write_report(out, rows, summary, figures, title)


def setting_fields(setting: PropagationSettings) -> dict:
    return {
        "setting": setting.label(),
        "mode": setting.mode,
        "iou_threshold": setting.iou_threshold,
        "box_extension": setting.box_extension,
    }


def _mean(values: Iterable[float]) -> float:
    values = [float(value) for value in values]
    return float(np.mean(values)) if values else float("nan")


def _means(rows: Sequence[dict]) -> dict:
    if not rows:
        return {"objects": 0, "dice": float("nan"), "hd95": float("nan"), "nsd": float("nan")}
    distances = np.array([row["hd95"] for row in rows], dtype=float)
    finite = distances[np.isfinite(distances)]
    return {
        "objects": len(rows),
        "dice": _mean(row["dice"] for row in rows),
        # An empty prediction has no surface (HD95 = inf): averaged over the others,
        # and counted, so one miss does not turn the mean into inf.
        "hd95": float(finite.mean()) if finite.size else float("inf"),
        "empty_predictions": int((~np.isfinite(distances)).sum()),
        "nsd": _mean(row["nsd"] for row in rows),
    }
