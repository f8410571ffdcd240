"""Segment everything: official ``SamAutomaticMaskGenerator`` against samforge's
``AutomaticMaskGenerator`` on the same weights and image (issue 18, item 4).

``--arch samforge_nano`` (default) uses the shipped trained model, so masks follow the
anatomy and the filters keep a realistic number of them; ``vit_b``/``vit_l``/``vit_h``/
``vit_test`` use random official weights (loaded strictly into samforge), where the default
filters reject nearly everything and the time is mostly embedding and decoding. The image
is a CT phantom slice (non-square, so both resize), mapped to 8-bit RGB once. samforge's
embedding cache is off, so every call embeds again, as the official generator does. The two
run alternately after a warm-up call each; medians; ratio = official / samforge.

    python benchmarks/bench_automatic.py --points-per-side 32 --repeats 3
    python benchmarks/bench_automatic.py --arch vit_b --crop-n-layers 1 --repeats 1
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from samforge.data import IntensitySettings
from samforge.data.phantoms import make_phantom
from samforge.inference import Predictor
from samforge.inference.automatic import AutomaticMaskGenerator
from samforge.models import build_model, load_model
from samforge.testing.official import build_official_sam, import_segment_anything
from samforge.testing.timing import benchmark_architecture, machine_description, paired_medians

NANO_ARCH = dict(
    embed_dim=256, depth=8, num_heads=8, global_attn_indexes=(1, 3, 5, 7), window_size=8
)


def paired_models(arch: str):
    """(official Sam, samforge model) with the same weights."""
    if arch == "samforge_nano":
        ours = load_model("samforge_nano")
        official = build_official_sam(image_size=ours.config.image_size, **NANO_ARCH)
        official.load_state_dict(ours.state_dict(), strict=True)
        return official.eval(), ours
    config, official_arch = benchmark_architecture(arch)
    official = build_official_sam(image_size=config.image_size, **official_arch)
    ours = build_model(config)
    ours.load_state_dict(official.state_dict(), strict=True)
    return official.eval(), ours.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="samforge_nano")
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--crop-n-layers", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    official, ours = paired_models(args.arch)
    image = make_phantom("ct", shape=(args.height, args.width), seed=0)[0]
    rgb = np.round(IntensitySettings("ct").image_mapping(image)(image)).astype(np.uint8)
    settings = dict(points_per_side=args.points_per_side, crop_n_layers=args.crop_n_layers)
    reference = import_segment_anything().SamAutomaticMaskGenerator(official, **settings)
    generator = AutomaticMaskGenerator(Predictor(ours, cache_size=0), **settings)
    counts = len(reference.generate(rgb)), len(generator.generate(rgb))
    official_seconds, samforge_seconds = paired_medians(
        lambda: reference.generate(rgb), lambda: generator.generate(rgb), args.repeats
    )
    print(machine_description())
    print(
        f"{args.arch}, {args.height}×{args.width} CT phantom, points_per_side "
        f"{args.points_per_side}, crop_n_layers {args.crop_n_layers}, {args.repeats} repeats"
    )
    print(f"masks: official {counts[0]}, samforge {counts[1]}")
    print(
        f"official {official_seconds:.2f} s, samforge {samforge_seconds:.2f} s, "
        f"ratio {official_seconds / samforge_seconds:.2f}×"
    )


if __name__ == "__main__":
    main()
