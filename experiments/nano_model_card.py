"""The measured numbers of the model card of ``samforge_nano`` (docs/samforge_nano.md).

Evaluates a trained model next to a randomly initialised model of the same shape, on data
the recipe (configs/recipes/samforge_nano.yaml) never trained on:

- HC18 subjects 250–299 (real fetal-head ultrasound), interactive 2D;
- 2D phantoms of the four modalities with seeds the recipe never drew, interactive 2D;
- TotalSegmentator's CT and MR volumes (held out; labels are TotalSegmentator's output) and
  the MNI152 brain template (grey/white matter), 3D propagation from a box on one slice.

Interactive 2D: box start and point start, then 7 correction rounds (8 predictions).
Writes ``results.json``, ``results.md`` and each evaluation's report into ``--out``.

    python experiments/nano_model_card.py [--model samforge_nano] [--data ../shared/data]
        [--out nano-card] [--phantoms 8]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from samforge.data import read_case
from samforge.data.builtin import mni152_case
from samforge.evaluation import InteractiveSettings, write_report
from samforge.evaluation.interactive3d import Protocol3D, evaluate_case
from samforge.files import write_text_atomically
from samforge.inference import Predictor, PropagationSettings
from samforge.models import build_model, load_model
from samforge.testing.timing import machine_description
from samforge.workflows.interactive import (
    evaluate_interactive2d,
    model_free_dice,
    phantom_images,
)
from samforge.workflows.subjects import SubjectRange, subject_images

ROUNDS = 8
HC18_HELD_OUT = SubjectRange(250, 299)  # never trained on by the recipe
PHANTOM_SEED = 5000  # the recipe trains on seed 1 and validates on seed 999
VOLUMES = {
    "totalseg_ct": ("totalsegmentator/example_ct_sm.nii.gz", "totalsegmentator/example_seg.nii.gz"),
    "totalseg_mr": (
        "totalsegmentator/example_mr_sm.nii.gz",
        "totalsegmentator/example_seg_mr.nii.gz",
    ),
}


def default_data() -> Path:
    return Path(os.environ.get("SAMFORGE_SHARED_DATA") or "../shared/data")


def random_twin(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised model of the same architecture and preprocessing."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(model.config).eval()


def interactive(predictors: dict, images: list, out: Path, title: str) -> dict:
    """{model: {start: [Dice of round 1..ROUNDS]}} (mean over images of per-image Dice)."""
    settings = InteractiveSettings(rounds=ROUNDS, seed=0)
    run = evaluate_interactive2d(predictors, images, out, title, settings)
    return {
        model: {start: [curve[r] for r in sorted(curve)] for start, curve in starts.items()}
        for model, starts in run.dice_by_round().items()
    }


def volumes(predictors: dict, data: Path, out: Path) -> dict:
    """{volume: {model: mean 3D Dice over its largest objects}} from a box on one slice."""
    cases = [
        read_case(data / image, data / label, name=name)
        for name, (image, label) in VOLUMES.items()
        if (data / image).is_file()
    ]
    cases.append(mni152_case(step=2))
    protocol = Protocol3D(start="box", max_objects=8, min_size=100)
    table: dict = {}
    for case in cases:
        rows = []
        for label, predictor in predictors.items():
            found = evaluate_case(predictor, case, [PropagationSettings()], protocol)
            rows += [{"model": label, **row} for row in found]
            table.setdefault(case.name, {})[label] = float(np.mean([r["dice"] for r in found]))
        table[case.name]["objects"] = len(rows) // len(predictors)
        summary = {"volume": list(case.image.shape), "modality": case.modality}
        write_report(out / case.name, rows, summary, {}, f"3D propagation: {case.name}")
    return table


def markdown(results: dict) -> str:
    lines = ["| data | model | start | round 1 | round 8 |", "|---|---|---|---:|---:|"]
    for group, table in results["interactive2d"].items():
        for model, starts in table.items():
            for start, curve in starts.items():
                lines.append(f"| {group} | {model} | {start} | {curve[0]:.3f} | {curve[-1]:.3f} |")
    lines += ["", "| volume | objects | " + " | ".join(results["models"]) + " |"]
    lines.append("|---|---:|" + "---:|" * len(results["models"]))
    for name, row in results["volumes"].items():
        values = " | ".join(f"{row[m]:.3f}" for m in results["models"])
        lines.append(f"| {name} | {row['objects']} | {values} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="samforge_nano")
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--out", type=Path, default=Path("nano-card"))
    parser.add_argument("--phantoms", type=int, default=8, help="per modality")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    trained = load_model(args.model)
    models = {"samforge_nano": trained, "random (same shape)": random_twin(trained)}
    predictors = {label: Predictor(model) for label, model in models.items()}
    started = time.perf_counter()
    results: dict = {"models": list(models), "interactive2d": {}, "references": {}}
    size = trained.config.image_size
    groups = {"phantoms (held-out seeds)": phantom_images(args.phantoms, size, PHANTOM_SEED)}
    if (args.data / "hc18").is_dir():
        hc18, _ = subject_images(args.data / "hc18", HC18_HELD_OUT, "hc18")
        groups = {"HC18 250–299": hc18, **groups}
    for group, images in groups.items():
        folder = args.out / group.split()[0].lower()
        results["interactive2d"][group] = interactive(predictors, images, folder, group)
        results["references"][group] = model_free_dice(images)
    results["volumes"] = volumes(predictors, args.data, args.out / "volumes")
    results["settings"] = {
        "model": args.model,
        "rounds": ROUNDS,
        "threads": args.threads,
        "seconds": time.perf_counter() - started,
        "machine": machine_description(),
    }
    write_text_atomically(args.out / "results.json", json.dumps(results, indent=2))
    write_text_atomically(args.out / "results.md", markdown(results))
    print(markdown(results))
    print(json.dumps(results["references"], indent=2))


if __name__ == "__main__":
    main()
