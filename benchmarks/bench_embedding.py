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

import torch

from samforge.models import build_model
from samforge.testing.official import build_official_sam
from samforge.testing.timing import (
    BENCHMARK_ARCHITECTURES,
    alternating_medians,
    benchmark_architecture,
    machine_description,
)


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    ours, reference = ours.double(), reference.double()
    return ((ours - reference).abs().max() / reference.abs().max()).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="vit_b", choices=BENCHMARK_ARCHITECTURES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config, arch = benchmark_architecture(args.arch)
    official = build_official_sam(image_size=config.image_size, **arch).image_encoder
    ours = build_model(config).image_encoder.eval()
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
        f"{machine_description()}"
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
