"""Seconds per training step and peak memory of the MedicoSAM objective, against the
encoder forward alone.

One step = ``iterative_prompting_loss`` (encoder forward, ``n_steps`` prompt/decode rounds
with correction points and mask feedback, Dice + IoU-MSE loss) + backward + AdamW step,
full fine-tuning of a randomly initialised model. The baseline, timed in the same run, is
the image encoder's forward pass alone under ``torch.no_grad()`` on the same input.

Every (configuration, measurement) pair runs in a fresh subprocess, so its peak memory is
the subprocess's peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``).
``tracemalloc`` does not see torch's allocations (they bypass Python's allocator), so RSS
is the honest figure on CPU; it includes the interpreter, torch itself and the model
(reported separately as "RSS after build").

Synthetic inputs: a random image and ``--n-obj`` object masks (disks and rectangles);
the time of a step does not depend on their content.

    python benchmarks/bench_training.py [--configs vit_test vit_b] [--threads N]
        [--steps-vit-b 2] [--steps-small 10] [--n-obj 5] [--n-steps 8]

The machine's 1-minute load average before and after each measurement is printed: on a
shared machine, a load above the thread count means other processes competed for the
cores and the figures are too slow. Prints one row per configuration: forward s, step s
(median and min), the median of the per-repeat ratio step/forward (the forward is timed
right before each step in the same process, so both see the same load), and the peak RSS
of the forward-only and of the training subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

CONFIGS = ("vit_test", "vit_b")


def _rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_batch(size: int, n_obj: int, batch: int = 1):
    """A random (B, 3, S, S) image and (B, n_obj, S, S) masks: alternating disks and
    rectangles on a grid."""
    import torch

    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=generator)
    masks = torch.zeros(batch, n_obj, size, size)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    grid = int(n_obj**0.5 + 0.999)
    cell = size / grid
    for b in range(batch):
        for j in range(n_obj):
            cy, cx = (j // grid + 0.5) * cell, (j % grid + 0.5) * cell
            half = 0.3 * cell
            if j % 2 == 0:
                masks[b, j] = ((yy - cy) ** 2 + (xx - cx) ** 2 <= half**2).float()
            else:
                masks[b, j] = ((yy - cy).abs() <= half * 0.6) & ((xx - cx).abs() <= half)
    return images, masks


def worker(args: argparse.Namespace) -> dict:
    """Runs in the subprocess: one measurement of one configuration."""
    import torch

    from samforge.models import build_model
    from samforge.models.config import VIT_B, VIT_TEST
    from samforge.training.objectives import PromptingSettings, iterative_prompting_loss

    if args.threads:
        torch.set_num_threads(args.threads)
    config = {"vit_b": VIT_B, "vit_test": VIT_TEST}[args.worker]
    torch.manual_seed(0)
    model = build_model(config)
    images, masks = synthetic_batch(config.image_size, args.n_obj)
    rss_build = _rss_mib()
    repeats = args.steps_vit_b if args.worker == "vit_b" else args.steps_small
    forward_times, step_times = [], []
    load_before = os.getloadavg()[0]

    def forward() -> float:
        start = time.perf_counter()
        with torch.no_grad():
            model.embed_images(images)
        return time.perf_counter() - start

    if args.mode == "forward":
        # Peak RSS of the forward pass alone (the "step" subprocess also runs forwards).
        model.eval()
        forward_times = [forward() for _ in range(1 + repeats)][1:]
    else:
        model.train()
        settings = PromptingSettings(n_steps=args.n_steps, p_box=0.5, p_mask=0.5)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
        for index in range(1 + repeats):  # index 0 is the warm-up
            # The baseline alternates with the steps, so both see the same machine load.
            seconds = forward()
            generator = torch.Generator().manual_seed(index)
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            out = iterative_prompting_loss(model, images, masks, settings, generator)
            out.loss.backward()
            optimizer.step()
            if index:
                forward_times.append(seconds)
                step_times.append(time.perf_counter() - start)
    return {
        "config": args.worker,
        "mode": args.mode,
        "image_size": config.image_size,
        "forward_s": forward_times,
        "step_s": step_times,
        "rss_build_mib": rss_build,
        "peak_rss_mib": _rss_mib(),
        "threads": torch.get_num_threads(),
        "load_1min": [load_before, os.getloadavg()[0]],
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def machine() -> dict:
    import torch

    model = platform.processor() or "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument("--steps-vit-b", type=int, default=2, help="measured steps, vit_b")
    parser.add_argument("--steps-small", type=int, default=10, help="measured steps, vit_test")
    parser.add_argument("--n-obj", type=int, default=5)
    parser.add_argument("--n-steps", type=int, default=8, help="predictions per step")
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default]")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--worker", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("forward", "step"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        from samforge.testing.timing import print_worker_result

        print_worker_result(worker(args))
        return

    from samforge.testing.timing import WorkerFailed, run_worker

    info = machine()
    if args.threads:
        info["threads"] = args.threads
    print(
        f"machine: {info['nproc']} cores, {info['cpu']}, torch {info['torch']}, "
        f"python {info['python']}, {info['threads']} torch threads, fp32"
    )
    print(
        f"settings: batch 1, n_obj {args.n_obj}, n_steps {args.n_steps}, p_box 0.5, "
        f"p_mask 0.5, AdamW, full fine-tuning; 1 warm-up + {args.steps_vit_b} (vit_b) / "
        f"{args.steps_small} (vit_test) measured; median"
    )
    results = []
    for name in args.configs:
        row = {"config": name}
        for mode in ("forward", "step"):
            command = [sys.executable, __file__, "--worker", name, "--mode", mode]
            command += ["--steps-vit-b", str(args.steps_vit_b)]
            command += ["--steps-small", str(args.steps_small)]
            command += ["--n-obj", str(args.n_obj), "--n-steps", str(args.n_steps)]
            if args.threads:
                command += ["--threads", str(args.threads)]
            try:
                row[mode] = run_worker(command)
            except WorkerFailed as failure:
                sys.stderr.write(failure.stderr)
                raise SystemExit(f"{name}/{mode} failed ({failure})") from None
            for key in ("forward_s", "step_s"):
                if row[mode][key]:
                    seconds = ", ".join(f"{x:.3f}" for x in row[mode][key])
                    print(f"  {name} [{mode} process] {key}: {seconds}", flush=True)
            load = row[mode]["load_1min"]
            print(f"  1-min load average {load[0]:.2f} -> {load[1]:.2f}", flush=True)
        results.append(row)

    header = (
        "| config | input | params | forward s (no grad) | step s | step / forward "
        "| RSS after build MiB | peak RSS forward MiB | peak RSS step MiB |"
    )
    print()
    print("median (min) over the measured repeats; forward and step alternate in one process")
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in results:
        fwd, step = row["forward"], row["step"]
        forward_s, step_s = step["forward_s"], step["step_s"]
        ratios = [b / a for a, b in zip(forward_s, step_s, strict=True)]
        print(
            f"| {row['config']} | {step['image_size']}² | {step['parameters'] / 1e6:.2f} M "
            f"| {statistics.median(forward_s):.3f} ({min(forward_s):.3f}) "
            f"| {statistics.median(step_s):.3f} ({min(step_s):.3f}) "
            f"| {statistics.median(ratios):.1f} | {step['rss_build_mib']:.0f} "
            f"| {fwd['peak_rss_mib']:.0f} | {step['peak_rss_mib']:.0f} |"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": info, "args": vars(args), "results": results}, handle, indent=2)


if __name__ == "__main__":
    main()
