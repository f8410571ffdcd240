"""HC18 fine-tune: the loss of each preset falls, and MedicoSAM training improves Dice.

Trains the built-in ``samforge_random_tiny`` model (ViT-test encoder, 256² input, random
init) with the presets ``medsam``, ``simpleft`` and ``medicosam`` on HC18 training subjects,
through the public API (``load_config`` then ``train``), then evaluates the start model and
each trained export with the interactive 2D protocol (box start and point start, 7
corrections) on held-out subjects. Writes into ``--out``:

    runs/<preset>/          the training runs (config.yaml, logs/metrics.csv, model.pth, ...)
    eval/                   results.csv, summary.json, report.html of the evaluation module
    loss_curves.png         training loss per step of every preset (and a moving average)
    results.md              Dice table (rounds 1 and 8, box and point start) and loss table
    results.json            the same numbers, machine-readable

    python experiments/hc18_finetune.py [--data DIR] [--out DIR] [--steps 600]
        [--train-subjects 000-199] [--eval-subjects 250-299] [--lr 3e-4]

Subjects 250–299 are never trained on (the default training range stops at 199). A run
into an existing ``--out`` reuses finished training runs (a run folder with ``model.pth``)
and starts the evaluation afresh.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

PRESETS = ("medsam", "simpleft", "medicosam")
START_MODEL = "samforge_random_tiny"


def default_data() -> Path:
    shared = os.environ.get("SAMFORGE_SHARED_DATA")
    return Path(shared) / "hc18" if shared else Path("../shared/data/hc18")


def subject_range(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)-(\d+)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"give a range such as 000-199, not {text!r}")
    return int(match.group(1)), int(match.group(2))


def overrides(args: argparse.Namespace, preset: str) -> list[str]:
    """The ``--set`` overrides of one training run (also printed as the CLI command)."""
    first, last = args.train_subjects
    train = f"[{{path: {args.data.resolve()}, subjects: ['{first:03d}-{last:03d}']}}]"
    return [
        f"name={preset}",
        f"model={START_MODEL}",
        f"output_dir={(args.out / 'runs').resolve()}",
        f"data.train={train}",
        f"optimizer.lr={args.lr}",
        "optimizer.lr_decay=1.0",
        "trainer.max_epochs=1000",  # the step budget ends the run
        f"trainer.max_steps={args.steps}",
        f"trainer.seed={args.seed}",
        "trainer.log_every_n_steps=1",
        f"trainer.checkpoint_every_n_steps={max(args.steps, 1)}",
        "trainer.deterministic=true",
        "trainer.progress=false",
    ]


def train_preset(args: argparse.Namespace, preset: str) -> dict:
    from samforge.training.config import load_config
    from samforge.training.engine import train

    run_dir = args.out / "runs" / preset
    export = run_dir / "model.pth"
    settings = overrides(args, preset)
    command = "samforge train --config " + preset + "".join(f' --set "{s}"' for s in settings)
    if export.is_file() and (run_dir / "summary.json").is_file():
        print(f"[{preset}] reusing the finished run in {run_dir}", flush=True)
    else:
        config = load_config(preset, settings)
        started = time.perf_counter()
        train(config)
        print(f"[{preset}] trained in {time.perf_counter() - started:.0f} s", flush=True)
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"preset": preset, "export": export, "summary": summary, "command": command}


def read_losses(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(steps, train/loss) of every logged training step of a run."""
    steps, losses = [], []
    with open(run_dir / "logs" / "metrics.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("train/loss"):
                steps.append(int(row["step"]))
                losses.append(float(row["train/loss"]))
    return np.array(steps), np.array(losses)


def loss_windows(losses: np.ndarray, fraction: float = 0.1) -> tuple[float, float]:
    """Mean loss over the first and the last ``fraction`` of the logged steps."""
    window = max(1, round(len(losses) * fraction))
    return float(losses[:window].mean()), float(losses[-window:].mean())


def plot_losses(runs: dict[str, Path], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for preset, run_dir in runs.items():
        steps, losses = read_losses(run_dir)
        (line,) = axis.plot(steps, losses, alpha=0.2, linewidth=0.8)
        width = max(1, len(losses) // 20)
        smooth = np.convolve(losses, np.ones(width) / width, mode="valid")
        axis.plot(steps[width - 1 :], smooth, color=line.get_color(), label=f"{preset}")
    axis.set_xlabel("training step")
    axis.set_ylabel("train/loss (Dice loss + IoU MSE)")
    axis.set_title("HC18, samforge_random_tiny: loss per step (faint) and moving mean")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def held_out_images(args: argparse.Namespace):
    from samforge.data.readers.layouts import open_dataset
    from samforge.evaluation.runs import iter_images

    first, last = args.eval_subjects
    found = open_dataset(args.data)
    chosen = [i for i, s in enumerate(found.subjects) if s.isdigit() and first <= int(s) <= last]
    subjects = {found.subjects[i] for i in chosen}
    return list(iter_images(found.select(chosen), "hc18")), len(subjects)


def trivial_references(images) -> dict[str, float]:
    """Dice of masks that need no model, on the same images: the whole image, and the
    filled bounding box of every object (what a box prompt alone already tells)."""
    from samforge.evaluation.interactive2d import object_masks
    from samforge.evaluation.metrics import dice
    from samforge.prompts import box_from_masks

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


def evaluate(args: argparse.Namespace, models: dict[str, str | Path]) -> dict:
    """The interactive 2D protocol (box and point start) on the held-out subjects."""
    from samforge.evaluation.interactive2d import InteractiveSettings
    from samforge.evaluation.report import RESULTS_CSV, write_csv
    from samforge.evaluation.runs import (
        run_interactive2d,
        summarize_interactive,
        write_interactive_report,
    )
    from samforge.inference.predictor import Predictor
    from samforge.models import load_model

    out = args.out / "eval"
    out.mkdir(parents=True, exist_ok=True)
    images, subjects = held_out_images(args)
    settings = InteractiveSettings(rounds=args.rounds, seed=args.seed)
    predictors = {label: Predictor(load_model(str(source))) for label, source in models.items()}
    started = time.perf_counter()
    rows, overlays = run_interactive2d(
        predictors, images, ("box", "point"), settings, show_progress=False
    )
    seconds = time.perf_counter() - started
    write_csv(out / RESULTS_CSV, rows)
    summary = summarize_interactive(rows, settings)
    write_interactive_report(out, rows, overlays, summary, "HC18 held-out: interactive 2D")
    dice = {
        (item["model"], item["start"], item["round"]): (item["dice"], item["images"])
        for item in summary["dice_per_round"]
    }
    return {
        "dice": dice,
        "images": len(images),
        "subjects": subjects,
        "seconds": seconds,
        "references": trivial_references(images),
    }


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch thread(s), Python {platform.python_version()}, no GPU"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data(), help="HC18 folder")
    parser.add_argument("--out", type=Path, default=Path("hc18_finetune"), help="output folder")
    parser.add_argument("--steps", type=int, default=600, help="training steps per preset")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--train-subjects", type=subject_range, default=(0, 199))
    parser.add_argument("--eval-subjects", type=subject_range, default=(250, 299))
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--rounds", type=int, default=8, help="evaluation rounds (1 + corrections)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: on a shared CPU more threads than free cores make steps "
        "many times slower)",
    )
    args = parser.parse_args()
    if not args.data.is_dir():
        parser.error(f"--data {args.data} is not a folder; set SAMFORGE_SHARED_DATA or --data")
    a, b = args.train_subjects
    c, d = args.eval_subjects
    if a <= d and c <= b:
        parser.error("--train-subjects and --eval-subjects overlap; keep the evaluation held out")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    trained = [train_preset(args, preset) for preset in args.presets]
    runs = {item["preset"]: args.out / "runs" / item["preset"] for item in trained}
    plot = plot_losses(runs, args.out / "loss_curves.png")

    models: dict[str, str | Path] = {f"start ({START_MODEL})": START_MODEL}
    models.update({item["preset"]: item["export"] for item in trained})
    result = evaluate(args, models)
    total = time.perf_counter() - started

    lines = [
        "# HC18 fine-tune of samforge_random_tiny",
        "",
        f"Machine: {machine()}.",
        f"Training: subjects {a:03d}–{b:03d} of {args.data}, {args.steps} steps per preset, "
        f"batch 1, AdamW lr {args.lr}, lr_decay 1.0, seed {args.seed}, deterministic.",
        f"Evaluation: held-out subjects {c:03d}–{d:03d} ({result['subjects']} subjects, "
        f"{result['images']} images), interactive 2D protocol, {args.rounds} rounds "
        "(start + corrections), no mask feedback; mean over images of the Dice.",
        f"Wall time: {total:.0f} s in all (evaluation {result['seconds']:.0f} s).",
        "",
        "## Training loss (train/loss per step, mean over the first / last 10% of steps)",
        "",
        "| preset | steps | first 10% | last 10% | last / first | train time s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    losses = {}
    for item in trained:
        _, values = read_losses(runs[item["preset"]])
        first, last = loss_windows(values)
        losses[item["preset"]] = {"first": first, "last": last, "logged_steps": len(values)}
        lines.append(
            f"| {item['preset']} | {item['summary']['global_step']} | {first:.4f} | {last:.4f} "
            f"| {last / first:.3f} | {item['summary']['seconds']:.0f} |"
        )
    last_round = args.rounds
    lines += [
        "",
        f"## Interactive 2D Dice on held-out subjects (rounds 1 and {last_round})",
        "",
        f"| model | box r1 | box r{last_round} | point r1 | point r{last_round} |",
        "|---|---:|---:|---:|---:|",
    ]
    table = {}
    for label in models:
        cells = []
        for start in ("box", "point"):
            for round_ in (1, last_round):
                value = result["dice"].get((label, start, round_), (float("nan"), 0))[0]
                table[f"{label}|{start}|{round_}"] = value
                cells.append(f"{value:.4f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    references = result["references"]
    lines += [
        "",
        "Masks without a model, same images: the whole image "
        f"{references['whole image']:.4f}, the filled bounding box of the head "
        f"{references['filled box']:.4f}.",
    ]
    lines += ["", f"Loss curves: {plot.name}; evaluation report: eval/report.html.", ""]
    lines += ["Training commands (CLI equivalent of each run):", ""]
    lines += [f"    {item['command']}" for item in trained]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    (args.out / "results.json").write_text(
        json.dumps(
            {
                "machine": machine(),
                "args": {k: str(v) for k, v in vars(args).items()},
                "losses": losses,
                "dice": table,
                "references": references,
                "images": result["images"],
                "subjects": result["subjects"],
                "seconds_total": total,
                "seconds_eval": result["seconds"],
                "train_seconds": {i["preset"]: i["summary"]["seconds"] for i in trained},
            },
            indent=2,
        )
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
