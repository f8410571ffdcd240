"""Which architecture for the built-in model (issue 21, item 4): models trained by the same
recipe, measured on the built-in model's held-out goals (issue 19) and on click and slice
latency, side by side.

Every quality figure comes from ``nano_model_card.py``'s own measurements (the same held-out
volumes, phantoms, HC18 subjects and settings); latency is timed here, the models in turn in
one process after a warm-up each (medians):

- *slice*: ``set_image`` of one 512×512 CT-like slice, what propagation pays per slice and a
  user per new image;
- *click*: one box decoded to a mask at that slice's resolution.

    python experiments/architecture_comparison.py \\
        --model nano=runs/arch/nano/model.pth --model vit_t=runs/arch/vit_t/model.pth \\
        [--data ../shared/data] [--out arch-card] [--phantoms 8] [--volumes 4] [--threads N]

Writes ``results.json`` and ``results.md`` into ``--out`` and prints the table; with
``--run LABEL=RUN_FOLDER`` (repeatable) also ``training_curves.png``, each run's training
Dice (last prediction) against its steps.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from nano_model_card import default_data, held_out_dice

from samforge.files import atomic_path, write_text_atomically
from samforge.inference import Predictor
from samforge.models import load_model
from samforge.testing.timing import alternating_medians, machine_description

SLICE_SHAPE = (512, 512)
GOAL_NAMES = {
    "3d_phantoms": "3D phantoms, box on the central slice (≥ 0.75)",
    "totalseg": "TotalSegmentator organs ≥ 10 slices (≥ 0.60)",
    "phantoms_2d": "2D phantoms, box, round 1 (≥ 0.85)",
    "hc18": "HC18 250–299, box, round 1 (≥ 0.94)",
}


def labelled_path(text: str) -> tuple[str, Path]:
    label, separator, path = text.partition("=")
    if not separator or not label:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    return label, Path(path)


def latency(models: dict[str, torch.nn.Module], repeats: int) -> dict[str, dict[str, float]]:
    """{model: {"slice_ms", "click_ms"}}: embedding a 512² slice, decoding one box on it
    (no embedding cache, which would answer the repeated slice)."""
    predictors = {label: Predictor(model, cache_size=0) for label, model in models.items()}
    rng = np.random.default_rng(0)
    image = (rng.normal(40, 30, SLICE_SHAPE)).astype(np.int16)  # CT-like HU values
    box = np.array([150, 180, 330, 360])
    slices, clicks = {}, {}
    for label, predictor in predictors.items():
        slices[label] = lambda predictor=predictor: predictor.set_image(image)
        clicks[label] = lambda predictor=predictor: predictor.predict(boxes=box)
    with torch.inference_mode():
        slice_times = alternating_medians(slices, repeats)
        for predictor in predictors.values():
            predictor.set_image(image)
        click_times = alternating_medians(clicks, 4 * repeats)
    return {
        label: {"slice_ms": 1000 * slice_times[label][0], "click_ms": 1000 * click_times[label][0]}
        for label in predictors
    }


def size_facts(model: torch.nn.Module, path: Path) -> dict[str, float]:
    parameters = sum(p.numel() for p in model.parameters())
    encoder = sum(p.numel() for p in model.image_encoder.parameters())
    return {
        "parameters_m": parameters / 1e6,
        "encoder_parameters_m": encoder / 1e6,
        "file_mb": path.stat().st_size / 1e6,
        "input": model.config.image_size,
    }


def markdown(results: dict) -> str:
    labels = list(results["models"])
    lines = ["| | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]

    def row(name: str, values: dict, fmt: str) -> None:
        lines.append(f"| {name} | " + " | ".join(format(values[m], fmt) for m in labels) + " |")

    facts = results["models"]
    row("input side", {m: facts[m]["input"] for m in labels}, "d")
    row("parameters (M)", {m: facts[m]["parameters_m"] for m in labels}, ".2f")
    row("file (MB)", {m: facts[m]["file_mb"] for m in labels}, ".1f")
    row("slice: embed 512² (ms)", {m: results["latency"][m]["slice_ms"] for m in labels}, ".1f")
    row("click: 1 box (ms)", {m: results["latency"][m]["click_ms"] for m in labels}, ".1f")
    for key, name in GOAL_NAMES.items():
        if key in results["quality"]:
            row(name, results["quality"][key], ".3f")
    return "\n".join(lines) + "\n"


def training_curves(runs: list[tuple[str, Path]], out: Path) -> Path:
    """Plot each run's ``train/dice_last`` (10-point means) against its steps."""
    figure = Figure(figsize=(6, 3.4))
    axes = figure.subplots()
    for label, run in runs:
        with (run / "logs" / "metrics.csv").open(newline="") as file:
            rows = [r for r in csv.DictReader(file) if r.get("train/dice_last")]
        steps = np.array([int(r["step"]) for r in rows])
        dice = np.array([float(r["train/dice_last"]) for r in rows])
        window = min(10, len(dice))
        smooth = np.convolve(dice, np.ones(window) / window, mode="valid")
        axes.plot(steps[window - 1 :], smooth, label=label)
    axes.set_xscale("log")
    axes.set_xlabel("step (batch 2)")
    axes.set_ylabel("training Dice, last prediction")
    axes.legend()
    figure.tight_layout()
    path = out / "training_curves.png"
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=labelled_path, action="append", required=True)
    parser.add_argument("--run", type=labelled_path, action="append", default=[])
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--out", type=Path, default=Path("arch-card"))
    parser.add_argument("--phantoms", type=int, default=8, help="2D phantoms per modality")
    parser.add_argument("--volumes", type=int, default=4, help="held-out 3D phantoms")
    parser.add_argument("--repeats", type=int, default=5, help="timed slices per model")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.run:
        training_curves(args.run, args.out)

    models = {label: load_model(path) for label, path in args.model}
    predictors = {label: Predictor(model) for label, model in models.items()}
    started = time.perf_counter()
    results: dict = {
        "models": {label: size_facts(models[label], path) for label, path in args.model},
        "latency": latency(models, args.repeats),
    }
    results["quality"] = held_out_dice(predictors, args.data, args.out, args.phantoms, args.volumes)
    results["settings"] = {
        "models": {label: str(path) for label, path in args.model},
        "precision": {label: p.precision for label, p in predictors.items()},
        "threads": args.threads,
        "seconds": time.perf_counter() - started,
        "machine": machine_description(),
    }
    write_text_atomically(args.out / "results.json", json.dumps(results, indent=2))
    table = markdown(results)
    write_text_atomically(args.out / "results.md", table)
    print(f"# {results['settings']['machine']}")
    print(table)


if __name__ == "__main__":
    main()
