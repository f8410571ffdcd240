"""Time the ONNX Runtime engine against the torch engine (fp32) on one model.

Both run through the same ``Predictor`` a user makes (no embedding cache), on the same
weights, in one process, timed in turn after one warm-up call each, so that load from
other processes falls on both alike; medians of the repeats. Steps: embedding a 768×1024
uint8 RGB image (preprocessing included), one box, one point with three masks, and
``--objects`` boxes in one call. The graphs are exported into a temporary folder first
(the export time, checks included, is printed too). ONNX Runtime gets as many threads as
torch.

    python benchmarks/bench_onnx.py                               # samforge_nano
    python benchmarks/bench_onnx.py --model vit_b                 # ViT-B by config, random
    python benchmarks/bench_onnx.py --model mobilesam_vit_t --random
    python benchmarks/bench_onnx.py --model vit_b --onnx vit_b_onnx/

``--onnx FOLDER`` keeps the graphs there and reuses them in the next run of the same
model (ViT-B's export takes minutes; random weights are seeded, so they are the same).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from samforge.inference import Predictor
from samforge.inference.engines.onnx_runtime import OnnxRuntimeEngine
from samforge.models import (
    ARCHITECTURES,
    OnnxExport,
    build_model,
    export_onnx,
    get_model_spec,
    load_model,
)
from samforge.models.onnx.export import MANIFEST
from samforge.testing.timing import alternating_medians, machine_description


def make_model(name: str, random: bool):
    """A registry model (its weights, or random ones with ``random``) or an architecture
    name of :data:`ARCHITECTURES` (random weights: timings do not depend on them)."""
    torch.manual_seed(0)
    if name in ARCHITECTURES:
        return build_model(ARCHITECTURES[name])
    spec = get_model_spec(name)
    if random and not spec.is_built_in:
        return build_model(spec.config)
    return load_model(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="samforge_nano", help="registry or architecture name")
    parser.add_argument("--random", action="store_true", help="random weights, no download")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--objects", type=int, default=16)
    parser.add_argument("--onnx", help="keep the graphs in this folder; reuse them if there")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = make_model(args.model, args.random)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8)
    corners = np.sort(rng.uniform(0, 768, (args.objects, 2, 2)), axis=1)
    boxes = corners.transpose(0, 2, 1).reshape(-1, 4)[:, [0, 2, 1, 3]].astype(np.float32)
    steps = {
        "1 box": dict(boxes=boxes[:1]),
        "1 point, 3 masks": dict(points=[[400.0, 300.0]], labels=[1], multimask=True),
        f"{args.objects} boxes, one call": dict(boxes=boxes),
    }

    with tempfile.TemporaryDirectory(prefix="bench_onnx_") as folder:
        started = time.perf_counter()
        reuse = args.onnx and (Path(args.onnx) / MANIFEST).is_file()
        export = OnnxExport.read(args.onnx) if reuse else export_onnx(model, args.onnx or folder)
        export_seconds = time.perf_counter() - started
        predictors = {
            "torch": Predictor(model, cache_size=0),
            "onnxruntime": Predictor(model, cache_size=0, engine=OnnxRuntimeEngine(export)),
        }
        load_before = os.getloadavg()
        with torch.inference_mode():
            embed = {name: (lambda p=p: p.set_image(image)) for name, p in predictors.items()}
            results = {"embed 768×1024": alternating_medians(embed, args.repeats)}
            for step, prompt in steps.items():
                decode = {
                    name: (lambda p=p, q=prompt: p.predict(**q)) for name, p in predictors.items()
                }
                results[step] = alternating_medians(decode, max(args.repeats, 10))
        load_after = os.getloadavg()

    print(f"# {machine_description()}")
    weights = "random" if args.random or args.model in ARCHITECTURES else "its own"
    errors = ", ".join(f"{graph} {error:.1e}" for graph, error in export.errors.items())
    print(
        f"# model {args.model} ({weights} weights), input {model.config.image_size}², fp32; "
        f"onnxruntime {onnxruntime.__version__} with {args.threads} threads; "
        f"{'read' if reuse else 'export + checks'} {export_seconds:.1f} s "
        f"(relative errors {errors})"
    )
    print(
        f"# load average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f}; "
        f"medians of {args.repeats} (embedding) and {max(args.repeats, 10)} (decoding) runs"
    )
    print(f"{'step':<24}{'torch ms':>10}{'onnxruntime ms':>16}{'torch / ort':>13}")
    for step, seconds in results.items():
        torch_ms, ort_ms = 1e3 * seconds["torch"][0], 1e3 * seconds["onnxruntime"][0]
        print(f"{step:<24}{torch_ms:>10.1f}{ort_ms:>16.1f}{torch_ms / ort_ms:>12.2f}×")


if __name__ == "__main__":
    main()
