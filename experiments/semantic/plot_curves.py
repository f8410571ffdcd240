"""The comparison's learning curves from the runs' logs (``logs/metrics.csv``): per task the
training loss of each model (logged every 10 steps, mean of the last 5 points) and, where
the runs validated (HC18: subjects 200–249 after every epoch), the validation Dice.

    python experiments/semantic/plot_curves.py [--runs runs/semantic] [--out curves.png]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from samforge.files import atomic_path

TASKS = {"hc18": "HC18 2D", "totalseg": "TotalSegmentator 3D", "mni152": "MNI152 3D"}
MODELS = {"nano": "samforge_nano encoder", "random": "random init", "unet": "MONAI UNet"}
SMOOTHING = 5


def column(run: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one logged metric of a run."""
    with open(run / "logs" / "metrics.csv", newline="") as handle:
        rows = [(int(r["step"]), float(r[name])) for r in csv.DictReader(handle) if r.get(name)]
    steps, values = zip(*rows, strict=True) if rows else ((), ())
    return np.array(steps), np.array(values)


def smoothed(values: np.ndarray) -> np.ndarray:
    """Trailing mean over the last SMOOTHING points (fewer at the start)."""
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), SMOOTHING)
    return (sums[1:] - sums[np.arange(1, len(values) + 1) - counts]) / counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/semantic"))
    parser.add_argument("--out", type=Path, default=Path("runs/semantic/curves.png"))
    args = parser.parse_args()
    tasks = [t for t in TASKS if all((args.runs / f"{t}_{m}").is_dir() for m in MODELS)]
    validated = [t for t in tasks if column(args.runs / f"{t}_nano", "val/dice")[0].size]
    panels = [(t, "train/loss") for t in tasks] + [(t, "val/dice") for t in validated]
    figure = Figure(figsize=(3.2 * len(panels), 2.8), dpi=90, layout="constrained")
    grid = figure.subplots(1, len(panels), squeeze=False)[0]
    for axes, (task, metric) in zip(grid, panels, strict=True):
        for key, label in MODELS.items():
            steps, values = column(args.runs / f"{task}_{key}", metric)
            shown = smoothed(values) if metric == "train/loss" else values
            axes.plot(steps, shown, marker="o" if metric == "val/dice" else None, label=label)
        what = "training loss (Dice + CE)" if metric == "train/loss" else "validation Dice"
        axes.set(title=f"{TASKS[task]}: {what}", xlabel="step")
        axes.title.set_fontsize(9)
        axes.grid(alpha=0.3)
    figure.axes[0].legend(fontsize=7)
    with atomic_path(args.out) as path:
        figure.savefig(path, format="png")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
