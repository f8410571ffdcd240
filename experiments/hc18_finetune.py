"""HC18 fine-tune: the loss of each preset falls, and MedicoSAM training improves Dice.

Trains the built-in ``samforge_random_tiny`` model (ViT-test encoder, 256² input, random
init) with the presets ``medsam``, ``simpleft`` and ``medicosam`` on HC18 training subjects
(:func:`samforge.workflows.finetune.finetune`), then evaluates the start model and each
trained export with the interactive 2D protocol (box start and point start, 7 corrections)
on held-out subjects. Writes into ``--out``:

    runs/<preset>/          the training runs (config.yaml, logs/metrics.csv, model.pth, ...)
    eval/                   results.csv, summary.json, report.html of the evaluation module
    loss_curves.png         training loss per step of every preset (and a moving average)
    results.md              Dice table (rounds 1 and 8, box and point start) and loss table
    results.json            the same numbers, machine-readable

    python experiments/hc18_finetune.py [--data DIR] [--out DIR] [--steps 600]
        [--train-subjects 000-199] [--eval-subjects 250-299] [--lr 3e-4]

Subjects 250–299 are never trained on (the default training range stops at 199). A run
into an existing ``--out`` reuses finished training runs (a run folder with ``model.pth``)
and starts the evaluation afresh. ``samforge train --config runs/<preset>/config.yaml``
repeats a run from the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from samforge.errors import ConfigError
from samforge.evaluation import InteractiveSettings
from samforge.evaluation.plots import plot_loss_curves
from samforge.files import write_text_atomically
from samforge.inference import Predictor
from samforge.models import load_model
from samforge.testing.timing import machine_description
from samforge.workflows.finetune import FinetuneResult, finetune, finetune_config
from samforge.workflows.interactive import evaluate_interactive2d, model_free_dice
from samforge.workflows.subjects import SubjectRange, subject_images

PRESETS = ("medsam", "simpleft", "medicosam")
START_MODEL = "samforge_random_tiny"


def default_data() -> Path:
    shared = os.environ.get("SAMFORGE_SHARED_DATA")
    return Path(shared) / "hc18" if shared else Path("../shared/data/hc18")


def subject_range(text: str) -> SubjectRange:
    try:
        return SubjectRange.parse(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def train_preset(args: argparse.Namespace, preset: str) -> FinetuneResult:
    """One training run of ``preset`` on the training subjects (reused when finished)."""
    config = finetune_config(
        preset,
        name=preset,
        model=START_MODEL,
        train=[{"path": str(args.data.resolve()), "subjects": [str(args.train_subjects)]}],
        output_dir=args.out / "runs",
        steps=args.steps,
        lr=args.lr,
        seed=args.seed,
        deterministic=True,
    )
    result = finetune(config, if_exists="reuse")
    print(f"[{preset}] {result.global_step} steps, trained in {result.seconds:.0f} s", flush=True)
    return result


def evaluate(args: argparse.Namespace, models: dict[str, str | Path]) -> dict:
    """The interactive 2D protocol (box and point start) on the held-out subjects."""
    images, subjects = subject_images(args.data, args.eval_subjects, "hc18")
    predictors = {label: Predictor(load_model(str(source))) for label, source in models.items()}
    settings = InteractiveSettings(rounds=args.rounds, seed=args.seed)
    started = time.perf_counter()
    run = evaluate_interactive2d(
        predictors, images, args.out / "eval", "HC18 held-out: interactive 2D", settings
    )
    return {
        "models": list(models),
        "dice": run.dice_by_round(),
        "images": len(images),
        "subjects": subjects,
        "seconds": time.perf_counter() - started,
        "references": model_free_dice(images),
    }


def markdown(args: argparse.Namespace, trained: dict, result: dict, total: float) -> str:
    train, held_out, last = args.train_subjects, args.eval_subjects, args.rounds
    lines = [
        "# HC18 fine-tune of samforge_random_tiny",
        "",
        f"Machine: {machine_description()}.",
        f"Training: subjects {train.first:03d}–{train.last:03d} of {args.data}, {args.steps} "
        f"steps per preset, batch 1, AdamW lr {args.lr}, lr_decay 1.0, seed {args.seed}, "
        "deterministic.",
        f"Evaluation: held-out subjects {held_out.first:03d}–{held_out.last:03d} "
        f"({result['subjects']} subjects, {result['images']} images), interactive 2D protocol, "
        f"{last} rounds (start + corrections), no mask feedback; mean over images of the Dice.",
        f"Wall time: {total:.0f} s in all (evaluation {result['seconds']:.0f} s).",
        "",
        "## Training loss (train/loss per step, mean over the first / last 10% of steps)",
        "",
        "| preset | steps | first 10% | last 10% | last / first | train time s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for preset, run in trained.items():
        first, final = run.losses.window_means()
        lines.append(
            f"| {preset} | {run.global_step} | {first:.4f} | {final:.4f} "
            f"| {final / first:.3f} | {run.seconds:.0f} |"
        )
    lines += [
        "",
        f"## Interactive 2D Dice on held-out subjects (rounds 1 and {last})",
        "",
        f"| model | box r1 | box r{last} | point r1 | point r{last} |",
        "|---|---:|---:|---:|---:|",
    ]
    for label in result["models"]:
        starts = result["dice"].get(label, {})
        cells = [
            f"{starts.get(start, {}).get(round_, float('nan')):.4f}"
            for start in ("box", "point")
            for round_ in (1, last)
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    references = result["references"]
    lines += [
        "",
        "Masks without a model, same images: the whole image "
        f"{references['whole image']:.4f}, the filled bounding box of the head "
        f"{references['filled box']:.4f}.",
        "",
        "Loss curves: loss_curves.png; evaluation report: eval/report.html; each run's "
        "config: runs/<preset>/config.yaml (`samforge train --config` repeats it).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data(), help="HC18 folder")
    parser.add_argument("--out", type=Path, default=Path("hc18_finetune"), help="output folder")
    parser.add_argument("--steps", type=int, default=600, help="training steps per preset")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--train-subjects", type=subject_range, default=SubjectRange(0, 199))
    parser.add_argument("--eval-subjects", type=subject_range, default=SubjectRange(250, 299))
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
    if args.train_subjects.overlaps(args.eval_subjects):
        parser.error("--train-subjects and --eval-subjects overlap; keep the evaluation held out")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    trained = {preset: train_preset(args, preset) for preset in args.presets}
    plot_loss_curves(
        {preset: run.losses for preset, run in trained.items()},
        args.out / "loss_curves.png",
        "HC18, samforge_random_tiny: loss per step (faint) and moving mean",
        ylabel="train/loss (Dice loss + IoU MSE)",
    )
    models: dict[str, str | Path] = {f"start ({START_MODEL})": START_MODEL}
    models.update({preset: run.export_path for preset, run in trained.items()})
    result = evaluate(args, models)
    total = time.perf_counter() - started

    text = markdown(args, trained, result, total)
    write_text_atomically(args.out / "results.md", text)
    numbers = {
        "machine": machine_description(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "losses": {
            preset: dict(
                zip(("first", "last"), run.losses.window_means(), strict=True),
                logged_steps=len(run.losses.losses),
            )
            for preset, run in trained.items()
        },
        "dice": {
            f"{label}|{start}|{round_}": value
            for label, starts in result["dice"].items()
            for start, curve in starts.items()
            for round_, value in curve.items()
            if round_ in (1, args.rounds)
        },
        "references": result["references"],
        "images": result["images"],
        "subjects": result["subjects"],
        "seconds_total": total,
        "seconds_eval": result["seconds"],
        "train_seconds": {preset: run.seconds for preset, run in trained.items()},
    }
    write_text_atomically(args.out / "results.json", json.dumps(numbers, indent=2))
    print(text)


if __name__ == "__main__":
    main()
