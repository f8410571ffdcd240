"""The goals of the built-in model (issue 19), measured for v1 and a candidate side by side.

Every measurement is on data the recipes (configs/recipes/samforge_nano*.yaml) never train on:

==========================  ============================================================  ======
goal                        measured on                                                   target
==========================  ============================================================  ======
3D phantoms                 propagation from the exact box on each object's central       ≥ 0.75
                            slice, default settings (box + mask, IoU stop 0.8): varied
                            3D phantoms with seeds from 5000 (training draws ≥ 2^30)
TotalSegmentator organs     the same on TotalSegmentator's example CT and MR (held out),   ≥ 0.60
                            objects spanning ≥ 10 slices
2D phantoms, box, round 1   2D phantoms of the four modalities, seeds from 5000           ≥ 0.85
HC18, box, round 1          HC18 subjects 250–299 (real fetal-head ultrasound)            ≥ 0.94
robustness                  box, round 1, on the 2D phantoms: each of the 12 corruptions  ≤ 0.05
                            at severity 3 loses at most 0.05 Dice against clean           drop
==========================  ============================================================  ======

A candidate ships as ``samforge_nano`` only if it meets or beats every other model of the
card (v1, and the versions named with ``--also``) on every goal.
Writes ``results.json``, ``results.md``, each evaluation's report and, with ``--run``, the
candidate's training curve (``training_curve.png``) into ``--out``.

    python experiments/nano_model_card.py [--candidate runs/samforge_nano_v2/model.pth]
        [--run runs/samforge_nano_v2] [--data ../shared/data] [--out nano-card]
        [--also samforge_nano_v2] [--phantoms 8] [--volumes 8] [--robust-images 4]
        [--threads N]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from samforge.data import read_case
from samforge.data.corruptions import CORRUPTIONS, PAPER_SEVERITY
from samforge.data.phantoms.varied import varied_volume
from samforge.evaluation import InteractiveSettings, write_report
from samforge.evaluation.interactive3d import Protocol3D, evaluate_case
from samforge.evaluation.robustness import CLEAN, run_robustness, summarize_robustness
from samforge.files import atomic_path, write_text_atomically
from samforge.inference import Predictor, PropagationSettings
from samforge.models import load_model
from samforge.testing.timing import machine_description
from samforge.workflows.interactive import evaluate_interactive2d, phantom_images
from samforge.workflows.subjects import SubjectRange, subject_images

HC18_HELD_OUT = SubjectRange(250, 299)  # never trained on by the recipes
HELD_OUT_SEED = 5000  # 2D phantoms: the recipes train on seed 1, validate on 999
HELD_OUT_VOLUMES = {
    "totalseg_ct": ("totalsegmentator/example_ct_sm.nii.gz", "totalsegmentator/example_seg.nii.gz"),
    "totalseg_mr": (
        "totalsegmentator/example_mr_sm.nii.gz",
        "totalsegmentator/example_seg_mr.nii.gz",
    ),
}
PHANTOM_SIDE = 256  # the 2D phantoms of the goals
MIN_SLICES = 10  # organs of the TotalSegmentator goal span at least this many slices
# (name, target, higher is better); the robustness goal is the largest drop from clean.
GOALS = (
    ("3D phantoms, box on the central slice", 0.75, True),
    ("TotalSegmentator organs ≥ 10 slices", 0.60, True),
    ("2D phantoms, box, round 1", 0.85, True),
    ("HC18 250–299, box, round 1", 0.94, True),
    ("largest drop under a corruption (sev. 3)", 0.05, False),
)


def default_data() -> Path:
    return Path(os.environ.get("SAMFORGE_SHARED_DATA") or "../shared/data")


def propagation_dice(predictors: dict, cases: list, out: Path, min_slices: int = 0) -> dict:
    """{model: mean Dice of the objects spanning ≥ ``min_slices`` slices}, from the exact
    box on each object's central slice, propagation's default settings."""
    protocol = Protocol3D(start="box", min_size=100)
    rows: list[dict] = []
    for case in cases:
        for label, predictor in predictors.items():
            found = evaluate_case(predictor, case, [PropagationSettings()], protocol)
            rows += [{"model": label, **row} for row in found if row["slices_true"] >= min_slices]
    summary = {"cases": [case.name for case in cases], "min_slices": min_slices}
    write_report(out, rows, summary, {}, "3D propagation from a box on the central slice")
    return {
        label: float(np.mean([r["dice"] for r in rows if r["model"] == label]))
        for label in predictors
    }


def box_round1(predictors: dict, images: list, out: Path, title: str) -> dict:
    """{model: mean Dice over images of the first prediction from the exact box}."""
    run = evaluate_interactive2d(
        predictors, images, out, title, InteractiveSettings(rounds=1), starts=("box",)
    )
    return {model: starts["box"][1] for model, starts in run.dice_by_round().items()}


def held_out_dice(
    predictors: dict, data: Path, out: Path, phantoms_per_modality: int, volumes: int
) -> dict:
    """{goal: {model: mean Dice}} for the four Dice goals (3D phantoms, TotalSegmentator,
    2D phantoms, HC18), each on its held-out data; a goal whose data is absent is left out.
    The 2D phantoms are the built-in model's 256² whatever a model's input."""
    results: dict = {}
    cases = [varied_volume(HELD_OUT_SEED + i) for i in range(volumes)]
    results["3d_phantoms"] = propagation_dice(predictors, cases, out / "phantoms_3d")
    held_out = [
        read_case(data / image, data / label, name=name)
        for name, (image, label) in HELD_OUT_VOLUMES.items()
        if (data / image).is_file()
    ]
    if held_out:
        results["totalseg"] = propagation_dice(predictors, held_out, out / "totalseg", MIN_SLICES)
    phantoms = phantom_images(phantoms_per_modality, PHANTOM_SIDE, HELD_OUT_SEED)
    results["phantoms_2d"] = box_round1(predictors, phantoms, out / "phantoms_2d", "2D")
    if (data / "hc18").is_dir():
        hc18, _ = subject_images(data / "hc18", HC18_HELD_OUT, "hc18")
        results["hc18"] = box_round1(predictors, hc18, out / "hc18", "HC18 250–299")
    return results


def robustness(predictors: dict, images: list, out: Path) -> dict:
    """{model: {"clean": Dice, corruption: Dice}} at severity 3, box start, round 1."""
    settings = InteractiveSettings(rounds=1)
    rows = run_robustness(
        predictors, images, sorted(CORRUPTIONS), (PAPER_SEVERITY,), settings, show_progress=False
    )
    summary = summarize_robustness(rows)
    write_text_atomically(out / "robustness.json", json.dumps(summary, indent=2))
    table: dict = {model: {} for model in predictors}
    for cell in summary["per_corruption"]:
        table[cell["model"]][cell["corruption"]] = cell["dice"]
    return table


def largest_drop(cells: dict) -> float:
    return max(cells[CLEAN] - dice for kind, dice in cells.items() if kind != CLEAN)


def goal_rows(results: dict) -> list[dict]:
    """One row per goal: each model's value and whether it meets the target."""
    values = {
        GOALS[0][0]: results["3d_phantoms"],
        GOALS[1][0]: results.get("totalseg"),
        GOALS[2][0]: results["phantoms_2d"],
        GOALS[3][0]: results.get("hc18"),
        GOALS[4][0]: {m: largest_drop(c) for m, c in results["robustness"].items()},
    }
    rows = []
    for name, target, higher in GOALS:
        measured = values[name] or {}
        row: dict = {"goal": name, "target": target, "higher_is_better": higher}
        for model, value in measured.items():
            row[model] = value
            row[f"{model} met"] = value >= target if higher else value <= target
        rows.append(row)
    return rows


def markdown(results: dict) -> str:
    models = results["models"]
    header = "| goal | target | " + " | ".join(models) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(models)]
    for row in results["goals"]:
        cells = []
        for model in models:
            if model not in row:
                cells.append("n/a")
                continue
            cells.append(f"{row[model]:.3f} {'met' if row[f'{model} met'] else 'not met'}")
        sign = "≥" if row["higher_is_better"] else "≤"
        lines.append(f"| {row['goal']} | {sign} {row['target']} | " + " | ".join(cells) + " |")
    lines += ["", "| corruption (sev. 3), box, round 1 | " + " | ".join(models) + " |"]
    lines.append("|---|" + "---:|" * len(models))
    for kind in [CLEAN, *sorted(CORRUPTIONS)]:
        values = " | ".join(f"{results['robustness'][m][kind]:.3f}" for m in models)
        lines.append(f"| {kind} | {values} |")
    return "\n".join(lines) + "\n"


def verdict(results: dict) -> str:
    """Whether the candidate meets or beats every other model on every goal (what
    shipping needs)."""
    if "candidate" not in results["models"]:
        return "no candidate given"
    others = [model for model in results["models"] if model != "candidate"]
    worse = []
    for row in results["goals"]:
        if "candidate" not in row:
            continue
        sign = 1 if row["higher_is_better"] else -1
        worse += [
            f"{row['goal']} (against {other})"
            for other in others
            if sign * (row["candidate"] - row[other]) < 0
        ]
    if worse:
        return "do NOT ship: the candidate is worse on " + "; ".join(worse)
    return f"the candidate meets or beats {', '.join(others)} on every goal"


def training_curve(run: Path, out: Path) -> Path | None:
    """Plot train/loss, train/dice_last and train/slice_dice of a run folder's log."""
    log = run / "logs" / "metrics.csv"
    if not log.is_file():
        return None
    with log.open(newline="") as file:
        rows = list(csv.DictReader(file))
    figure = Figure(figsize=(9, 3.2))
    names = ("train/loss", "train/dice_last", "train/slice_dice")
    for axes, name in zip(figure.subplots(1, 3), names, strict=True):
        points = [(int(r["step"]), float(r[name])) for r in rows if r.get(name)]
        if points:
            steps, values = np.array(points).T
            axes.plot(steps, values, lw=0.8, alpha=0.4)
            window = min(10, len(values))
            smooth = np.convolve(values, np.ones(window) / window, mode="valid")
            axes.plot(steps[window - 1 :], smooth, lw=1.6)
        axes.set_title(name)
        axes.set_xlabel("step")
    figure.tight_layout()
    path = out / "training_curve.png"
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", type=Path, help="a model file to compare with v1")
    parser.add_argument("--run", type=Path, help="the candidate's run folder (its curve)")
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        help="another version to compare: a registered name or a model file",
    )
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--out", type=Path, default=Path("nano-card"))
    parser.add_argument("--phantoms", type=int, default=8, help="2D phantoms per modality")
    parser.add_argument("--volumes", type=int, default=8, help="held-out 3D phantoms")
    parser.add_argument("--robust-images", type=int, default=4, help="per modality")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    models = {"v1": load_model("samforge_nano_v1")}
    models |= {name.removeprefix("samforge_nano_"): load_model(name) for name in args.also}
    if args.candidate is not None:
        models["candidate"] = load_model(args.candidate)
    predictors = {label: Predictor(model) for label, model in models.items()}
    started = time.perf_counter()
    size = models["v1"].config.image_size
    results: dict = {"models": list(models)}
    results |= held_out_dice(predictors, args.data, args.out, args.phantoms, args.volumes)
    robust_images = phantom_images(args.robust_images, size, HELD_OUT_SEED)
    results["robustness"] = robustness(predictors, robust_images, args.out / "robustness")
    results["goals"] = goal_rows(results)
    results["verdict"] = verdict(results)
    curve = training_curve(args.run, args.out) if args.run else None
    results["settings"] = {
        "candidate": str(args.candidate) if args.candidate else None,
        "training_curve": str(curve) if curve else None,
        "threads": args.threads,
        "seconds": time.perf_counter() - started,
        "machine": machine_description(),
    }
    write_text_atomically(args.out / "results.json", json.dumps(results, indent=2))
    write_text_atomically(args.out / "results.md", markdown(results))
    print(markdown(results))
    print(results["verdict"])


if __name__ == "__main__":
    main()
