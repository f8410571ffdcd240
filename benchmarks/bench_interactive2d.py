"""Throughput of the interactive 2D protocol on precomputed embeddings: objects×rounds/s.

The image is embedded once before timing (as the protocol does: one embedding, then only
the prompt encoder and mask decoder per round), so the figure measures what the protocol
adds: batched prompt sampling (correction points from FN/FP regions), decoding, upsampling
the logits to the image size and the Dice bookkeeping. Synthetic label maps with B disks;
box start; ``--rounds`` predictions per object.

    python benchmarks/bench_interactive2d.py [--model samforge_random_tiny] [--size 512]
        [--objects 1 4 16] [--rounds 8] [--repeats 3] [--threads N]

Prints one line per object count: seconds per image (all rounds), objects×rounds per
second, and the share of time spent sampling correction points.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from samforge import prompts
from samforge.evaluation import InteractiveSettings, evaluate_image
from samforge.inference import Predictor
from samforge.models import load_model
from samforge.testing.timing import machine_description


def disks(size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size) label map with ``count`` non-overlapping-ish disks, classes 1..3."""
    yy, xx = np.mgrid[:size, :size]
    label = np.zeros((size, size), dtype=np.uint8)
    grid = int(np.ceil(np.sqrt(count)))
    cell = size / grid
    for index in range(count):
        cy, cx = (index // grid + 0.5) * cell, (index % grid + 0.5) * cell
        radius = rng.uniform(0.2, 0.4) * cell
        label[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = 1 + index % 3
    return label


class SamplingTimer:
    """Wraps ``prompts.correction_points`` to add up the time spent in it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.original = prompts.correction_points

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        result = self.original(*args, **kwargs)
        self.seconds += time.perf_counter() - start
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="samforge_random_tiny")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default]")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = load_model(args.model)
    predictor = Predictor(model)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (args.size, args.size), dtype=np.uint8)
    predictor.set_image(image)  # embedded once, outside the timing; served from cache below
    settings = InteractiveSettings(start="box", rounds=args.rounds)

    import samforge.evaluation.interactive2d as protocol

    timer = SamplingTimer()
    protocol.correction_points = timer
    print(
        f"model {args.model} ({model.config.image_size}² input) | image {args.size}² | "
        f"rounds {args.rounds} | {machine_description()}"
    )
    print(f"{'objects':>8} {'s/image':>9} {'obj×rounds/s':>13} {'sampling':>9}")
    for count in args.objects:
        label = disks(args.size, count, rng)
        evaluate_image(predictor, image, label, settings, name="warm-up")
        times, sampling = [], []
        for repeat in range(args.repeats):
            timer.seconds = 0.0
            start = time.perf_counter()
            evaluate_image(predictor, image, label, settings, name=f"r{repeat}")
            times.append(time.perf_counter() - start)
            sampling.append(timer.seconds)
        seconds = statistics.median(times)
        share = statistics.median(sampling) / seconds
        print(f"{count:>8} {seconds:>9.3f} {count * args.rounds / seconds:>13.1f} {share:>8.0%}")


if __name__ == "__main__":
    main()
