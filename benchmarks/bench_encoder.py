"""Time samforge's ViT image encoder against the official ``segment_anything`` one, in
inference and in training, fp32, bf16 and (``--compile``) under ``torch.compile``.

Same random weights (relative-position tables included) in both, one (B, 3, S, S) input.
Inference: the official encoder in fp32; samforge's in fp32 (exact) and on a bf16 copy of
its weights (what ``precision="auto"`` runs on CPUs with native bf16, see
samforge.inference.precision), each also without oneDNN's fused kernels
(samforge.models.sam.onednn) to show what they give; with ``--compile`` also both under
``torch.compile`` (inductor), their compile time (first call) printed apart. Training:
forward + backward of a loss on the embedding with every parameter trainable, official
and samforge in fp32 and samforge under bf16 autocast (training's
``precision="bf16-mixed"``), with ``--compile`` samforge compiled too. Each group is
timed alternately after one warm-up call each, so that load from other processes falls
on all alike; medians of wall and CPU seconds of this process, ratio = official / it
(> 1: samforge faster), and the largest error of the output (inference: embedding;
training: the input's gradient) relative to the official one's largest value.

    python benchmarks/bench_encoder.py --arch vit_b --repeats 3 --threads 2
    python benchmarks/bench_encoder.py --arch vit_b --depth 4 --image-size 512 --compile
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable

import torch

from samforge.models.onnx.checks import relative_error
from samforge.models.sam import onednn
from samforge.models.sam.image_encoder import ImageEncoderViT
from samforge.testing.official import build_official_sam
from samforge.testing.timing import (
    BENCHMARK_ARCHITECTURES,
    alternating_medians,
    benchmark_architecture,
    machine_description,
)


def compiled(module: torch.nn.Module, images: torch.Tensor, name: str, log: list[str]):
    """``torch.compile(module)`` after its first call (the compilation, under the mode
    the timed calls run in, so they do not recompile), timed into log."""
    function = torch.compile(module)
    start = time.perf_counter()
    function(images)
    log.append(f"# compile {name}: {time.perf_counter() - start:.1f} s (first call)")
    return function


def without_fused_kernels(encoder: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The encoder with its plain modules instead of oneDNN's fused CPU kernels."""
    onednn.ENABLED = False
    try:
        return encoder(images.to(encoder.pos_embed.dtype))
    finally:
        onednn.ENABLED = True


def training_step(encoder: Callable, images: torch.Tensor, weights: torch.Tensor, bf16: bool):
    """Forward + backward of a weighted sum of the embedding; returns the input's gradient."""

    def step() -> torch.Tensor:
        pixels = images.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = (encoder(pixels).float() * weights).sum()
        loss.backward()
        assert pixels.grad is not None
        return pixels.grad

    return step


def report(title: str, steps: dict[str, Callable], repeats: int) -> None:
    outputs = {name: step() for name, step in steps.items()}
    seconds = alternating_medians(steps, repeats)
    reference_name = next(iter(steps))
    official_wall, official_cpu = seconds[reference_name]
    print(f"{title:<34}{'wall s':>9}{'ratio':>7}{'CPU s':>9}{'ratio':>7}{'max rel. error':>16}")
    for name, (wall, cpu) in seconds.items():
        error = relative_error(outputs[name], outputs[reference_name])
        print(
            f"{name:<34}{wall:>9.3f}{official_wall / wall:>7.2f}"
            f"{cpu:>9.3f}{official_cpu / cpu:>7.2f}{error:>16.1e}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="vit_b", choices=BENCHMARK_ARCHITECTURES)
    parser.add_argument("--depth", type=int, help="fewer blocks (every third one global)")
    parser.add_argument("--image-size", type=int, help="model input side (default: arch's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--training-repeats", type=int, default=2, help="0: no training")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="add torch.compile variants")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config, arch = benchmark_architecture(args.arch)
    if args.depth:
        arch = {**arch, "depth": args.depth, "global_attn_indexes": tuple(range(2, args.depth, 3))}
    side = args.image_size or config.image_size
    official = build_official_sam(image_size=side, **arch).image_encoder
    ours = ImageEncoderViT(img_size=side, **arch).eval()
    ours.load_state_dict(official.state_dict(), strict=True)
    with torch.no_grad():
        ours_bf16 = copy.deepcopy(ours).bfloat16()
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch, 3, side, side, generator=generator)
    print(
        f"# {args.arch} image encoder ({arch['depth']} blocks, global "
        f"{arch['global_attn_indexes']}), input {args.batch}×3×{side}², {args.repeats} "
        f"repeats, {machine_description()}"
    )

    compile_log: list[str] = []
    inference = {
        "official fp32": lambda: official(images),
        "samforge fp32": lambda: ours(images),
        "samforge fp32, plain kernels": lambda: without_fused_kernels(ours, images),
        "samforge bf16 weights": lambda: ours_bf16(images.bfloat16()),
        "samforge bf16, plain kernels": lambda: without_fused_kernels(ours_bf16, images),
    }
    with torch.inference_mode():
        if args.compile:
            fp32 = compiled(ours, images, "fp32", compile_log)
            bf16 = compiled(ours_bf16, images.bfloat16(), "bf16", compile_log)
            inference["samforge fp32 compiled"] = lambda: fp32(images)
            inference["samforge bf16 compiled"] = lambda: bf16(images.bfloat16())
            print("\n".join(compile_log))
        report("inference", inference, args.repeats)
    if not args.training_repeats:
        return

    ours.train()
    weights = torch.randn(args.batch, config.prompt_embed_dim, side // 16, side // 16)
    training = {
        "official fp32": training_step(official, images, weights, bf16=False),
        "samforge fp32": training_step(ours, images, weights, bf16=False),
        "samforge bf16 autocast": training_step(ours, images, weights, bf16=True),
    }
    if args.compile:
        start = time.perf_counter()
        trained = training_step(torch.compile(ours), images, weights, bf16=False)
        trained()
        print(f"# compile fp32 training: {time.perf_counter() - start:.1f} s (first step)")
        training["samforge fp32 compiled"] = trained
    report("training forward + backward", training, args.training_repeats)


if __name__ == "__main__":
    main()
