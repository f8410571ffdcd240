"""Every figure samforge draws, written as PNG files (atomically); each function returns
the path written.

Evaluation figures take the long-format rows of :mod:`samforge.evaluation.report` (dicts
with ``model``, ``dataset``, ``case``, ``round``, ``dice`` and, depending on the run,
``start``, ``corruption`` and ``severity``); the others take arrays.

Only matplotlib's object-oriented API is used (``Figure``, never ``pyplot``): no global
state, no display backend, safe in threads and on headless machines, and a user's own
choice of backend stays as it is.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..data.corruptions import CORRUPTIONS, PAPER_SEVERITY, corrupt_with_params
from ..files import write_bytes_atomically
from .report import image_level, mean_by

SHEET_SIZE_INCHES = (15.0, 9.6)
SHEET_DPI = 100  # the contact sheet is 1500 × 960 pixels


def _save(figure: Figure, path: Path, dpi: int = 110, tight: bool = True) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return write_bytes_atomically(Path(path), buffer.getvalue())


def plot_dice_vs_round(rows: Sequence[dict], path: Path) -> Path:
    """Mean Dice (over images) after each round, one line per model and start prompt."""
    curves = mean_by(image_level(rows, ("model", "start")), ("model", "start", "round"))
    figure = Figure(figsize=(6, 4))
    axis = figure.subplots()
    for model, start in sorted({(m, s) for m, s, _ in curves}):
        points = sorted((r, d) for (m, s, r), d in curves.items() if (m, s) == (model, start))
        rounds, values = zip(*points, strict=True)
        axis.plot(rounds, values, marker="o", label=f"{model} ({start})")
    axis.set(xlabel="round (1 = start prompt)", ylabel="Dice", ylim=(0, 1.02))
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_title("Interactive 2D: Dice per round")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, path)


def plot_dataset_bars(rows: Sequence[dict], path: Path) -> Path:
    """Final-round Dice per dataset, one bar per model (and start prompt)."""
    last = max(int(row["round"]) for row in rows)
    final = [row for row in rows if int(row["round"]) == last]
    means = mean_by(
        image_level(final, ("dataset", "model", "start")), ("dataset", "model", "start")
    )
    datasets = sorted({d for d, _, _ in means})
    series = sorted({(m, s) for _, m, s in means})
    width = 0.8 / max(len(series), 1)
    figure = Figure(figsize=(max(4, 1.5 * len(datasets) + 2), 4))
    axis = figure.subplots()
    for index, (model, start) in enumerate(series):
        values = [means.get((d, model, start), np.nan) for d in datasets]
        axis.bar(
            np.arange(len(datasets)) + index * width, values, width, label=f"{model} ({start})"
        )
    axis.set_xticks(np.arange(len(datasets)) + width * (len(series) - 1) / 2, datasets)
    axis.set(ylabel=f"Dice after round {last}", ylim=(0, 1.02))
    axis.legend(fontsize=8)
    return _save(figure, path)


def plot_robustness_heatmap(rows: Sequence[dict], path: Path) -> Path:
    """Final-round Dice per corruption (rows) and model × severity (columns)."""
    last = max(int(row["round"]) for row in rows)
    final = [row for row in rows if int(row["round"]) == last]
    keys = ("model", "corruption", "severity")
    means = mean_by(image_level(final, keys), keys)
    corruptions = sorted({c for _, c, _ in means}, key=lambda c: (c != "clean", c))
    columns = sorted({(m, int(s)) for m, c, s in means if c != "clean"})
    grid = np.full((len(corruptions), len(columns)), np.nan)
    for i, corruption in enumerate(corruptions):
        for j, (model, severity) in enumerate(columns):
            # Clean images have no severity: show their Dice in every column of the model.
            key = (model, corruption, 0 if corruption == "clean" else severity)
            grid[i, j] = means.get(key, np.nan)
    figure = Figure(figsize=(1.0 * len(columns) + 3, 0.4 * len(corruptions) + 1.5))
    axis = figure.subplots()
    image = axis.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    axis.set_xticks(range(len(columns)), [f"{m}\ns{s}" for m, s in columns], fontsize=7)
    axis.set_yticks(range(len(corruptions)), corruptions, fontsize=8)
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            axis.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6, color="w")
    figure.colorbar(image, ax=axis, label=f"Dice after round {last}")
    axis.set_title("Robustness")
    return _save(figure, path)


@dataclass(frozen=True)
class Overlay:
    """One qualitative example: (H, W, 3) image on 0–255, (H, W) true and predicted
    label maps, and a title."""

    image: np.ndarray
    target: np.ndarray
    prediction: np.ndarray
    title: str


def plot_overlays(examples: Sequence[Overlay], path: Path, columns: int = 4) -> Path:
    """A grid of images with the truth (green contour) and the prediction (red contour)."""
    count = max(len(examples), 1)
    columns = min(columns, count)
    rows = -(-count // columns)
    figure = Figure(figsize=(3 * columns, 3 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, example in zip(axes.flat, examples, strict=False):
        axis.imshow(np.clip(example.image, 0, 255).astype(np.uint8), cmap="gray")
        for labels, colour in ((example.target, "lime"), (example.prediction, "red")):
            if labels.any():
                axis.contour(labels > 0, levels=[0.5], colors=colour, linewidths=0.8)
        axis.set_title(example.title, fontsize=7)
    return _save(figure, path)


def plot_propagation(
    volume: np.ndarray, truth: np.ndarray, prediction: np.ndarray, prompted: int, path: Path
) -> Path:
    """Slices through one object propagated in a (D, H, W) volume: five slices spread over
    the object's extent and the prompted one, with the truth (green) and the propagated
    mask (red); intensities shown between the volume's 1st and 99th percentiles."""
    slices = np.flatnonzero(truth.any(axis=(1, 2)))
    chosen = np.unique([*np.linspace(slices[0], slices[-1], 4).round().astype(int), prompted])
    low, high = np.percentile(volume, (1, 99))
    shown = np.clip((volume.astype(np.float32) - low) / max(high - low, 1e-6) * 255, 0, 255)
    examples = [
        Overlay(
            np.repeat(shown[z][..., None], 3, axis=2),
            truth[z].astype(np.uint8),
            prediction[z].astype(np.uint8),
            f"slice {z}" + (" (box prompt)" if z == prompted else ""),
        )
        for z in chosen
    ]
    return plot_overlays(examples, path, columns=len(examples))


def plot_grid_dice(summary: dict, path: Path) -> Path:
    """Mean validation Dice of every propagation setting of the 3D grid search, one bar
    series per model; the chosen setting of each model is outlined."""
    table = summary["validation_grid"]
    labels = list(dict.fromkeys(row["setting"] for row in table))
    models = list(summary["chosen_settings"])
    width = 0.8 / len(models)
    figure = Figure(figsize=(max(6, 0.35 * len(labels) * len(models) + 2), 4.5))
    axis = figure.subplots()
    for index, model in enumerate(models):
        values = {row["setting"]: row["val_dice"] for row in table if row["model"] == model}
        chosen = summary["chosen_settings"][model]["setting"]
        positions = np.arange(len(labels)) + index * width
        bars = axis.bar(positions, [values.get(label, np.nan) for label in labels], width)
        bars[labels.index(chosen)].set_edgecolor("black")
        bars[labels.index(chosen)].set_linewidth(2)
        bars[0].set_label(f"{model} (chosen: {chosen})")
    axis.set_xticks(np.arange(len(labels)) + width * (len(models) - 1) / 2, labels)
    axis.tick_params(axis="x", rotation=70, labelsize=7)
    axis.set(ylabel="mean Dice (validation objects)", ylim=(0, 1.02))
    axis.set_title("Propagation settings: validation grid (mode/IoU threshold/box extension)")
    axis.legend(fontsize=8)
    axis.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def plot_test_dice(rows: Sequence[dict], path: Path) -> Path:
    """Per-object 3D Dice on the test data with the chosen setting, one column per model."""
    models = list(dict.fromkeys(row["model"] for row in rows))
    figure = Figure(figsize=(max(4, 1.5 * len(models) + 2), 4))
    axis = figure.subplots()
    rng = np.random.default_rng(0)  # horizontal jitter only, for legibility
    for index, model in enumerate(models):
        values = [r["dice"] for r in rows if r["model"] == model and r["split"] == "test"]
        axis.scatter(index + rng.uniform(-0.15, 0.15, len(values)), values, s=12, alpha=0.7)
        if values:
            axis.hlines(np.mean(values), index - 0.3, index + 0.3, color="black")
    axis.set_xticks(range(len(models)), models)
    axis.set(ylabel="3D Dice per object (test)", ylim=(-0.02, 1.02))
    axis.set_title("Test objects (line: mean)")
    axis.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def plot_loss_curves(
    histories: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: Path,
    title: str,
    ylabel: str = "train/loss",
) -> Path:
    """Training loss per step of one or more runs: ``{run: (steps, losses)}``.

    With many steps the logged values are drawn faint and their moving mean (over a
    twentieth of the steps) on top; with few, the values themselves with markers.
    """
    figure = Figure(figsize=(7, 4))
    axis = figure.subplots()
    for name, (steps, losses) in histories.items():
        steps, losses = np.asarray(steps), np.asarray(losses, dtype=float)
        width = max(1, len(losses) // 20)
        if width == 1:
            axis.plot(steps, losses, marker=".", label=name)
            continue
        (line,) = axis.plot(steps, losses, alpha=0.2, linewidth=0.8)
        smooth = np.convolve(losses, np.ones(width) / width, mode="valid")
        axis.plot(steps[width - 1 :], smooth, color=line.get_color(), label=name)
    axis.set(xlabel="training step", ylabel=ylabel, title=title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, path)


def plot_contact_sheet(
    image: np.ndarray,
    path: Path,
    *,
    severity: int = PAPER_SEVERITY,
    seed: int = 0,
    title: str | None = None,
) -> Path:
    """A 3 × 5 grid, 1500 × 960 pixels: the image and its 12 corruptions at ``severity``,
    each titled with the parameters drawn.

    Args:
        image: (H, W) or (H, W, 3), uint8 or float on 0–255.
    """
    panels = [("clean", image, "")]
    for kind in CORRUPTIONS:
        degraded, params = corrupt_with_params(image, kind, severity, seed)
        panels.append((kind, degraded, _parameter_summary(params)))
    figure = Figure(figsize=SHEET_SIZE_INCHES, dpi=SHEET_DPI)
    paper = " (the paper's setting)" if severity == PAPER_SEVERITY else ""
    figure.suptitle(
        f"{title or 'image'}: 12 corruptions at severity {severity}{paper}", fontsize=13
    )
    axes = figure.subplots(3, 5)
    for axis in axes.flat:
        axis.set_axis_off()
    for axis, (name, panel, summary) in zip(axes.flat, panels, strict=False):
        shown = np.asarray(panel, dtype=np.float64) / 255.0
        axis.imshow(shown, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        axis.set_title(f"{name}\n{summary}" if summary else name, fontsize=9)
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.88, wspace=0.05, hspace=0.3)
    return _save(figure, path, dpi=SHEET_DPI, tight=False)


def _parameter_summary(params: dict[str, Any]) -> str:
    """Short 'key=value' text of the drawn parameters for a panel title (two lines at most)."""
    parts = []
    for key, value in params.items():
        if key in ("kind", "severity", "order"):
            continue
        parts.append(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}")
    return textwrap.fill(", ".join(parts), width=36, max_lines=2, placeholder=" …")


def plot_class_dice(per_class: Sequence[dict], path: Path) -> Path:
    """Mean Dice per class (the summary's ``per_class`` rows), one bar per model and dataset."""
    classes = list(dict.fromkeys(row["class"] for row in per_class))
    series = list(dict.fromkeys((row["model"], row["dataset"]) for row in per_class))
    values = {(r["model"], r["dataset"], r["class"]): r["dice"] for r in per_class}
    width = 0.8 / max(len(series), 1)
    figure = Figure(figsize=(max(5, 0.3 * len(classes) * len(series) + 2), 4))
    axis = figure.subplots()
    for index, (model, dataset) in enumerate(series):
        heights = [values.get((model, dataset, name), np.nan) for name in classes]
        label = model if len({d for _, d in series}) == 1 else f"{model} ({dataset})"
        axis.bar(np.arange(len(classes)) + index * width, heights, width, label=label)
    axis.set_xticks(np.arange(len(classes)) + width * (len(series) - 1) / 2, classes)
    axis.tick_params(axis="x", rotation=60 if len(classes) > 4 else 0, labelsize=7)
    axis.set(ylabel="mean Dice over cases", ylim=(0, 1.02), title="Semantic: Dice per class")
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, path)


def plot_label_overlays(
    examples: Sequence[Overlay], path: Path, class_names: Sequence[str], columns: int = 3
) -> Path:
    """Images with every class's outline, one colour per class: the reference solid, the
    prediction dashed (label maps in the :class:`Overlay` records)."""
    count = max(len(examples), 1)
    columns = min(columns, count)
    rows = -(-count // columns)
    figure = Figure(figsize=(4 * columns, 4 * rows + 0.6))
    axes = figure.subplots(rows, columns, squeeze=False)
    colours = [colormaps["tab20"](i % 20) for i in range(len(class_names))]
    for axis in axes.flat:
        axis.axis("off")
    for axis, example in zip(axes.flat, examples, strict=False):
        axis.imshow(np.clip(example.image, 0, 255).astype(np.uint8), cmap="gray")
        for labels, style in ((example.target, "solid"), (example.prediction, "dashed")):
            for class_id in np.unique(labels[labels > 0]):
                axis.contour(
                    labels == class_id,
                    levels=[0.5],
                    colors=[colours[int(class_id) % len(colours)]],
                    linewidths=0.9,
                    linestyles=style,
                )
        axis.set_title(example.title, fontsize=7)
    figure.suptitle("reference: solid · prediction: dashed", fontsize=9)
    return _save(figure, path)
