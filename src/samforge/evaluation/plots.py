"""Figures of an evaluation run, written as PNG files (atomically).

All functions take the long-format rows of :mod:`samforge.evaluation.report` (dicts with
``model``, ``dataset``, ``case``, ``round``, ``dice`` and, depending on the run, ``start``,
``corruption`` and ``severity``) and return the path written.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The object-oriented API without pyplot: no global state, no display backend, safe in
# threads and on headless machines.
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..files import write_bytes_atomically
from .report import image_level, mean_by


def _save(figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return write_bytes_atomically(path, buffer.getvalue())


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
