"""Time samforge's image encoder against the official ``segment_anything`` one.

Same random weights (relative-position tables included) in both, one (B, 3, S, S) input.
Prints the median wall and CPU seconds of the official encoder in fp32, samforge's in
fp32 and samforge's under bf16 autocast, all timed alternately after one warm-up call
each so that load from other processes falls on all alike; the ratios official / samforge
(> 1: samforge faster); and the largest error of each embedding relative to the official
one's largest value.

    python benchmarks/bench_embedding.py --arch vit_b --repeats 3 --threads 1
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bench_vs_official import architecture  # this folder is on sys.path for a script

from helpers.official import OFFICIAL_ARCHITECTURES, build_official_sam
from samforge.models.sam.image_encoder import ImageEncoderViT


def alternating_medians(functions: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per function, after one warm-up call each, timed in turn.
    CPU seconds of this process leave out time spent waiting for a core that another
    process holds, which wall seconds include on a shared machine."""
    for function in functions.values():
        function()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            wall, cpu = time.perf_counter(), time.process_time()
            function()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {
        name: tuple(statistics.median(column) for column in zip(*values, strict=True))
        for name, values in times.items()
    }


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    ours, reference = ours.double(), reference.double()
    return ((ours - reference).abs().max() / reference.abs().max()).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="vit_b", choices=[*OFFICIAL_ARCHITECTURES, "vit_test"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config, arch = architecture(args.arch)
    official = build_official_sam(image_size=config.image_size, **arch).image_encoder
    ours = ImageEncoderViT.from_config(config).eval()
    ours.load_state_dict(official.state_dict(), strict=True)
    side = config.image_size
    images = torch.randn(args.batch, 3, side, side, generator=torch.Generator().manual_seed(0))

    def samforge_bf16() -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return ours(images)

    steps = {
        "official fp32": lambda: official(images),
        "samforge fp32": lambda: ours(images),
        "samforge bf16 autocast": samforge_bf16,
    }
    with torch.inference_mode():
        outputs = {name: step() for name, step in steps.items()}
        seconds = alternating_medians(steps, args.repeats)

    reference = outputs["official fp32"]
    print(
        f"# {args.arch} image encoder, input {args.batch}×3×{side}², {args.repeats} repeats, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"{platform.processor() or platform.machine()}"
    )
    official_wall, official_cpu = seconds["official fp32"]
    print(f"{'encoder':<24}{'wall s':>9}{'ratio':>7}{'CPU s':>9}{'ratio':>7}{'max rel. error':>16}")
    for name, (wall, cpu) in seconds.items():
        error = relative_error(outputs[name], reference)
        print(
            f"{name:<24}{wall:>9.3f}{official_wall / wall:>7.2f}"
            f"{cpu:>9.3f}{official_cpu / cpu:>7.2f}{error:>16.1e}"
        )


if __name__ == "__main__":
    main()
