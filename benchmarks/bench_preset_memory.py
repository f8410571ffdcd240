"""Peak memory and seconds per step of every training preset, run the way ``samforge train``
runs it.

Each preset runs in a fresh subprocess through :func:`samforge.training.train` (the
Lightning engine, data module, objective, optimiser, checkpoint and export of a real run)
with two changes: the model is ``random:<--model>`` (the architecture with random weights;
ViT-B by default) and, for the presets that train on prompts, ``data.train`` is HC18 (real
540×800 ultrasound frames of subjects 000–007: resized to 1024 wide and padded, one head
per image) when ``--data`` holds it, else ultrasound phantoms of that size. The semantic
presets keep their own data (CT phantoms) and patch sizes. Everything else is the preset
as shipped: its objective, freezing, batch size, optimiser and frame size (SAM-UNet's
256², semantic3d's 128²).

Figures per preset:

- s/step: the median wall time between the ends of consecutive training steps after
  ``--warmup`` steps (the first step also creates the optimiser's state);
- peak RSS during the steps: the subprocess's peak resident set size (``ru_maxrss``, so
  Python, torch, the model and the data loader are included) at the end of the last step;
- peak RSS of the run: the same at exit, after Lightning's final checkpoint (with the
  optimiser state) and the export are written.

``--checkpointing`` adds a second run of every preset whose encoder trains, with
``trainer.activation_checkpointing: true`` (the ViT's blocks recomputed in the backward
pass): its memory saving and its cost in time.

    python benchmarks/bench_preset_memory.py [--model vit_b] [--presets medicosam ...]
        [--warmup 1] [--steps 2] [--threads 2] [--data ../shared/data] [--checkpointing]

ViT-B takes minutes per preset on two cores and up to ~13 GiB (medicosam): run it alone.
``--model vit_test`` checks the script in a minute.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from samforge.testing.timing import (
    WorkerFailed,
    machine_description,
    print_worker_result,
    run_worker,
)

PROMPT_PRESETS = ("medicosam", "medsam", "simpleft", "robust", "samunet")
SEMANTIC_PRESETS = ("semantic2d", "semantic3d")
# Activation checkpointing recomputes the ViT's blocks: nothing to save where the ViT is
# frozen (robust, samunet), and SAM-UNet refuses it.
ENCODER_TRAINS = ("medicosam", "medsam", "simpleft", *SEMANTIC_PRESETS)
HC18_SUBJECTS = "000-007"


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def data_override(preset: str, shared: Path | None) -> list[str]:
    if preset in SEMANTIC_PRESETS:
        return []
    if shared is not None and (shared / "hc18").is_dir():
        return [f"data.train=[{{path: {shared / 'hc18'}, subjects: ['{HC18_SUBJECTS}']}}]"]
    return ["data.train=[{phantoms: [us], count: 8, shape: [540, 800]}]"]


def worker(args: argparse.Namespace) -> dict:
    import lightning as L
    import torch

    from samforge.models import get_config
    from samforge.training import engine, load_config, train

    torch.set_num_threads(args.threads)
    shared = Path(args.data) if args.data else None
    total = args.warmup + args.steps
    with tempfile.TemporaryDirectory() as folder:
        config = load_config(
            args.worker,
            [
                f"output_dir={folder}",
                f"model=random:{args.model}",
                *data_override(args.worker, shared),
                "trainer.max_epochs=1000",
                f"trainer.max_steps={total}",
                f"trainer.checkpoint_every_n_steps={total}",
                "trainer.progress=false",
                f"trainer.activation_checkpointing={str(args.checkpointing).lower()}",
            ],
        )
        ends: list[float] = []
        during: list[float] = []

        class StepClock(L.Callback):
            def on_train_batch_end(self, *_args) -> None:
                ends.append(time.perf_counter())
                during.append(rss_mib())

        build = engine.build_trainer

        def build_with_clock(*a, **k):
            trainer = build(*a, **k)
            trainer.callbacks.append(StepClock())
            return trainer

        engine.build_trainer = build_with_clock
        started = time.perf_counter()
        result = train(config, threads=args.threads)
        elapsed = time.perf_counter() - started
    steps = [b - a for a, b in itertools.pairwise(ends)][max(args.warmup - 1, 0) :]
    return {
        "preset": args.worker + (" + checkpointing" if args.checkpointing else ""),
        "global_step": result.global_step,
        "frame": config.image_size or get_config(args.model).image_size,
        "batch_size": config.data.batch_size,
        "freeze": config.freeze.policy,
        "trainable": result.freeze.trainable,
        "total": result.freeze.trainable + result.freeze.frozen,
        "step_s": steps,
        "first_step_s": ends[0] - started if ends else None,
        "peak_steps_mib": during[-1] if during else None,
        "peak_run_mib": rss_mib(),
        "run_s": elapsed,
        "load_1min": os.getloadavg()[0],
    }


def main() -> None:
    presets = (*PROMPT_PRESETS, *SEMANTIC_PRESETS)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vit_b", help="architecture (vit_b, vit_test...)")
    parser.add_argument("--presets", nargs="+", default=list(presets), choices=presets)
    parser.add_argument("--warmup", type=int, default=1, help="steps before the timed ones")
    parser.add_argument("--steps", type=int, default=2, help="timed steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--data",
        default=os.environ.get("SAMFORGE_SHARED_DATA", "../shared/data"),
        help="the shared data folder (HC18) [$SAMFORGE_SHARED_DATA or ../shared/data]",
    )
    parser.add_argument(
        "--checkpointing",
        action="store_true",
        help="also run each preset whose encoder trains with activation checkpointing",
    )
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--worker", choices=presets, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 1:
        parser.error("--steps and --warmup must be ≥ 1 (a step's time ends at the next)")
    if args.worker:
        print_worker_result(worker(args))
        return

    hc18 = Path(args.data) / "hc18"
    print(f"machine: {machine_description()}, fp32, {args.threads} threads")
    print(
        f"settings: random {args.model} weights; prompt presets on "
        f"{'HC18 subjects ' + HC18_SUBJECTS if hc18.is_dir() else 'US phantoms 540×800'}, "
        f"semantic presets on their own phantoms; {args.warmup} warm-up + {args.steps} timed "
        "step(s), each preset in a fresh subprocess"
    )
    runs = [(name, False) for name in args.presets]
    if args.checkpointing:
        runs += [(name, True) for name in args.presets if name in ENCODER_TRAINS]
    results = []
    for name, checkpointing in runs:
        command = [sys.executable, __file__, "--worker", name, "--model", args.model]
        command += ["--warmup", str(args.warmup), "--steps", str(args.steps)]
        command += ["--threads", str(args.threads), "--data", args.data]
        command += ["--checkpointing"] if checkpointing else []
        name += " + checkpointing" if checkpointing else ""
        try:
            row = run_worker(command)
        except WorkerFailed as failure:  # e.g. SAM-UNet on vit_test (one global block)
            print(f"  {name}: not run ({failure})", flush=True)
            continue
        print(
            f"  {name}: steps {', '.join(f'{x:.1f}' for x in row['step_s'])} s; peak RSS "
            f"{row['peak_steps_mib']:.0f} MiB in the steps, {row['peak_run_mib']:.0f} MiB "
            f"with checkpoint and export; load {row['load_1min']:.1f}",
            flush=True,
        )
        results.append(row)

    print()
    print(
        "| preset | frame | batch | trains (parameters) | s/step | peak RSS in the steps GiB "
        "| peak RSS of the run GiB |"
    )
    print("|---|---:|---:|---|---:|---:|---:|")
    for row in results:
        trains = f"{row['freeze']} ({row['trainable'] / 1e6:.1f} M of {row['total'] / 1e6:.1f} M)"
        print(
            f"| {row['preset']} | {row['frame']}² | {row['batch_size']} | {trains} "
            f"| {statistics.median(row['step_s']):.1f} | {row['peak_steps_mib'] / 1024:.2f} "
            f"| {row['peak_run_mib'] / 1024:.2f} |"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "results": results}, handle, indent=2)


if __name__ == "__main__":
    main()
