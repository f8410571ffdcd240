"""Time MobileSAM (TinyViT ``vit_t``) against SAM ViT-B and samforge_nano on this machine.

For each model, through the same ``Predictor`` a user makes (fp32, no embedding cache):
embedding a 1024×1024 uint8 RGB image (preprocessing into the model's input included) and
one click (a positive point, three masks at the full 1024² resolution, as an annotation
tool asks per click). MobileSAM and ViT-B get random weights (timings do not depend on
them; their files need a download), samforge_nano its packaged ones. The models are timed
in turn, after one warm-up call each, so load from other processes falls on all alike;
medians of the repeats. Prints the machine, the CPU flags that decide the kernels, and the
load average before and after.

    python benchmarks/bench_mobilesam.py --repeats 3 --threads 2
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch

from samforge.inference import Predictor
from samforge.models import build_model, get_model_spec, load_model
from samforge.testing.timing import alternating_medians, machine_description

MODELS = ("mobilesam_vit_t", "sam_vit_b", "samforge_nano")
# Flags that decide which matrix kernels oneDNN and torch use (bf16 is native only with
# AVX-512-BF16 or AMX).
FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return " ".join(f"{flag}{'+' if flag in present else '-'}" for flag in FLAGS)
    except OSError:
        pass
    return "unknown (no /proc/cpuinfo)"


def make_model(name: str):
    spec = get_model_spec(name)
    if spec.is_built_in:
        return load_model(name)
    torch.manual_seed(0)
    return build_model(spec.config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    click = dict(points=[[400.0, 600.0]], labels=[1], multimask=True)
    predictors = {name: Predictor(make_model(name), cache_size=0) for name in args.models}
    embed = {name: (lambda p=p: p.set_image(image)) for name, p in predictors.items()}
    decode = {name: (lambda p=p: p.predict(**click)) for name, p in predictors.items()}

    load_before = os.getloadavg()
    with torch.inference_mode():
        embed_seconds = alternating_medians(embed, args.repeats)
        click_seconds = alternating_medians(decode, max(args.repeats, 10))
    load_after = os.getloadavg()

    print(f"# {machine_description()}")
    print(f"# CPU flags: {cpu_flags()}")
    print(
        f"# load average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f}; "
        f"{args.repeats} repeats per embedding, {max(args.repeats, 10)} per click, fp32"
    )
    header = f"{'model':<18}{'input':>7}{'encoder M':>11}{'embed s':>9}{'CPU s':>8}{'click ms':>10}"
    print(header)
    for name, predictor in predictors.items():
        model = predictor.model
        parameters = sum(p.numel() for p in model.image_encoder.parameters()) / 1e6
        wall, cpu = embed_seconds[name]
        print(
            f"{name:<18}{model.config.image_size:>6}²{parameters:>11.2f}{wall:>9.2f}{cpu:>8.2f}"
            f"{click_seconds[name][0] * 1000:>10.1f}"
        )


if __name__ == "__main__":
    main()
