"""CPU training with subnormal floats flushed to zero against training with them.

The demo's fine-tune (``samforge demo``: the medicosam preset on the built-in model, 2D
phantoms of four modalities at 128², lr 1e-4) for ``--steps`` steps through
``samforge.workflows.finetune`` (the Lightning engine, data, objective, checkpoint and
export), each run in a fresh process, the variants in turn, ``--repeats`` times:

- ``kept``: subnormals computed as they are (``subnormals_flushed`` replaced by a no-op);
- ``engine``: as ``samforge.training.train`` from Python after torch has started its
  threads: only the training thread flushes;
- ``command``: as the ``samforge`` command: the switch set before torch starts any thread,
  so every thread flushes.

Prints seconds per run, s/step, each variant against ``kept`` and each run's mean loss over
its first and last steps (equal in all: flushing changes values below 1.2e-38 only).

    python benchmarks/bench_subnormals.py [--model samforge_nano] [--steps 30]
        [--repeats 2] [--threads N]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch

from samforge.testing.timing import (
    WorkerFailed,
    machine_description,
    print_worker_result,
    run_worker,
)

VARIANTS = ("kept", "engine", "command")


def worker(args: argparse.Namespace) -> dict:
    """One fine-tune in this process, as ``args.worker`` says."""
    if args.worker == "command":
        torch.set_flush_denormal(True)  # what samforge.cli.main does first
    torch.set_num_threads(args.threads)
    torch.randn(512, 512) @ torch.randn(512, 512)  # torch's threads exist from here on

    from samforge.training import engine
    from samforge.workflows.demo_steps import FINETUNE_SEED
    from samforge.workflows.finetune import finetune, finetune_config
    from samforge.workflows.interactive import MODALITIES_2D

    phantoms = {"phantoms": list(MODALITIES_2D), "count": 16, "shape": [128, 128]}
    switch = contextlib.nullcontext if args.worker == "kept" else engine.subnormals_flushed
    with (
        tempfile.TemporaryDirectory() as folder,
        mock.patch.object(engine, "subnormals_flushed", switch),
    ):
        config = finetune_config(
            "medicosam",
            name=args.worker,
            model=args.model,
            train=[{**phantoms, "seed": FINETUNE_SEED}],
            output_dir=Path(folder),
            steps=args.steps,
            lr=1e-4,
            seed=0,
        )
        start = time.perf_counter()
        result = finetune(config, if_exists="replace")
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "losses": list(result.losses.window_means())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="samforge_nano")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print_worker_result(worker(args))
        return
    runs: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
    for _ in range(args.repeats):
        for variant in VARIANTS:
            command = [sys.executable, __file__, "--worker", variant, "--model", args.model]
            command += ["--steps", str(args.steps), "--threads", str(args.threads)]
            try:
                runs[variant].append(run_worker(command))
            except WorkerFailed as failure:
                sys.stderr.write(failure.stderr)
                raise SystemExit(f"{variant} failed ({failure})") from None
    torch.set_num_threads(args.threads)
    print(f"# {args.model}, demo fine-tune, {args.steps} steps, {machine_description()}")
    print(f"{'subnormals':<10}{'seconds per run':>20}{'s/step':>8}{'× kept':>8}  losses first/last")
    baseline = statistics.median(run["seconds"] for run in runs["kept"])
    for variant in VARIANTS:
        seconds = [run["seconds"] for run in runs[variant]]
        median = statistics.median(seconds)
        first, last = runs[variant][-1]["losses"]
        print(
            f"{variant:<10}{', '.join(f'{s:.1f}' for s in seconds):>20}"
            f"{median / args.steps:>8.2f}{baseline / median:>8.2f}  {first:.4f}/{last:.4f}"
        )


if __name__ == "__main__":
    main()
