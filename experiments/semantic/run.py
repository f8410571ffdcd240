"""The small semantic comparison: samforge_nano's encoder vs the same architecture randomly
initialised vs MONAI's UNet, trained for equal steps on the same patches, then evaluated
side by side with ``samforge evaluate semantic``.

Tasks (configs beside this file, ``<task>_{nano,random,unet}.yaml``; data made by the
``prepare_*.py`` scripts under ``runs/semantic/data``):

- ``hc18``: 2D fetal head, HC18 at quarter resolution, test subjects 250–299;
- ``mni152``: 3D grey/white matter, the MNI152 template's superior slabs;
- ``totalseg``: 3D five abdominal organs, TotalSegmentator's small CT example.

Writes ``runs/semantic/<task>_*/`` (the training runs; a finished one is reused),
``runs/semantic/eval_<task>/`` (the evaluation report) and ``runs/semantic/<task>.md`` (the
table: Dice, HD95, NSD, training time, the machine). Run from the repository root:

    python experiments/semantic/run.py hc18 [--steps 800] [--tolerance-mm 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from samforge.files import write_text_atomically
from samforge.testing.timing import machine_description
from samforge.training import load_config, train
from samforge.workflows.finetune import read_run

HERE = Path(__file__).parent
MODELS = {
    "nano": "samforge_nano encoder",
    "random": "same architecture, random init",
    "unet": "MONAI UNet",
}
TEST_DATA = {
    "hc18": "runs/semantic/data/hc18_quarter/test",
    "mni152": "runs/semantic/data/data3d/mni152/test",
    "totalseg": "runs/semantic/data/data3d/totalseg/test",
}


def train_run(config_file: Path, steps: int | None, threads: int) -> tuple[Path, float, int]:
    """(run folder, training seconds, steps) of one config. A finished run is reused; a run
    that was stopped (no summary) or trained fewer steps continues from its checkpoint."""
    overrides = [f"trainer.max_steps={steps}"] if steps else []
    config = load_config(config_file, overrides)
    checkpoints = list((config.run_dir / "checkpoints").glob("step-*.ckpt"))
    finished = (config.run_dir / "summary.json").is_file()
    ledger = config.run_dir / "training_seconds.json"  # run.py's: the parts' wall times
    if not finished or read_run(config.run_dir).global_step < config.trainer.max_steps:
        start = time.perf_counter()
        train(config, resume=bool(checkpoints), threads=threads)
        parts = json.loads(ledger.read_text()) if ledger.is_file() else []
        write_text_atomically(ledger, json.dumps([*parts, time.perf_counter() - start]))
    result = read_run(config.run_dir)
    seconds = sum(json.loads(ledger.read_text())) if ledger.is_file() else None
    seconds = seconds or training_seconds(config.run_dir)
    print(f"{config.name}: {result.global_step} steps in {seconds:.0f} s", flush=True)
    return config.run_dir, seconds, result.global_step


def training_seconds(run_dir: Path) -> float:
    """Wall time from the run's start (its config.yaml) to its last step checkpoint, for a
    run that ``run.py`` did not train (its parts' wall times are in training_seconds.json);
    model loading and the first data reads included."""
    last = max((run_dir / "checkpoints").glob("step-*.ckpt"), key=lambda p: p.name)
    return last.stat().st_mtime - (run_dir / "config.yaml").stat().st_mtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=sorted(TEST_DATA))
    parser.add_argument("--steps", type=int, default=None, help="Override trainer.max_steps.")
    parser.add_argument("--tolerance-mm", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=1, help="Torch threads of training.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = {
        key: train_run(HERE / f"{args.task}_{key}.yaml", args.steps, args.threads) for key in MODELS
    }
    out = Path("runs/semantic") / f"eval_{args.task}"
    command = [sys.executable, "-m", "samforge", "evaluate", "semantic", "--no-progress"]
    command += [arg for folder, _, _ in runs.values() for arg in ("-m", str(folder))]
    command += ["-d", TEST_DATA[args.task], "-o", str(out)]
    command += ["--tolerance-mm", str(args.tolerance_mm)]
    subprocess.run(command, check=True)
    summary = json.loads((out / "summary.json").read_text())
    lines = [
        f"machine: {machine_description()}",
        "",
        f"| model | steps | training time | class | Dice | HD95 | NSD @ {args.tolerance_mm:g} "
        "| HD95 undefined | test cases |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for key, (folder, seconds, steps) in runs.items():
        mean = next(r for r in summary["per_model"] if r["model"] == folder.name)
        classes = [r for r in summary["per_class"] if r["model"] == folder.name]
        lines.append(
            f"| {MODELS[key]} (`{folder.name}`) | {steps} | {seconds / 60:.1f} min | **mean** | "
            f"**{mean['dice']:.3f}** | **{mean['hd95']:.1f}** | **{mean['nsd']:.3f}** | | "
            f"{mean['cases']} |"
        )
        lines += [
            f"| | | | {r['class']} | {r['dice']:.3f} | {r['hd95']:.1f} | {r['nsd']:.3f} | "
            f"{r['hd95_undefined']} | {r['cases']} |"
            for r in classes
        ]
    table = "\n".join(lines) + "\n"
    write_text_atomically(Path("runs/semantic") / f"{args.task}.md", table)
    print(table)


if __name__ == "__main__":
    main()
