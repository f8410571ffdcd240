"""Time and compare samforge against the official ``segment_anything`` on the same random
weights.

Prints, for image embedding (samforge in exact fp32 and in bf16) and for one prompt decoded
to a full-resolution mask, the median seconds of each implementation and the ratio
official / samforge (> 1: samforge is faster); then the parity of the outputs: the largest
difference relative to the largest reference value, for the embedding, the low-resolution
and the full-resolution logits (fp32), and the bf16 embedding's error and box-mask IoU
against fp32. All run in this process, on the same image and weights, the official and
samforge's two precisions timed in turn. The default image (384×512) needs resizing to the
model frame, where implementations drift apart. The first line says which encoder path
``precision="auto"`` takes on this machine and why.

    python benchmarks/bench_vs_official.py --arch vit_b --repeats 3 --image-shape 384 512
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from samforge.inference import Predictor
from samforge.inference.precision import precision_choice
from samforge.models import build_model
from samforge.testing.official import build_official_sam, official_predictor
from samforge.testing.timing import (
    BENCHMARK_ARCHITECTURES,
    alternating_medians,
    benchmark_architecture,
    machine_description,
    paired_medians,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="vit_b", choices=BENCHMARK_ARCHITECTURES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--decode-repeats", type=int, default=20)
    parser.add_argument(
        "--image-shape",
        type=int,
        nargs=2,
        default=(384, 512),
        metavar=("H", "W"),
        help="shape of the test image (one that needs resizing tests the resize path)",
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config, arch = benchmark_architecture(args.arch)
    official = build_official_sam(image_size=config.image_size, **arch)
    ours = build_model(config)
    ours.load_state_dict(official.state_dict(), strict=True)

    rng = np.random.default_rng(0)
    height, width = args.image_shape
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    box = np.array([width * 0.2, height * 0.3, width * 0.6, height * 0.7])
    point = np.array([[width * 0.4, height * 0.5]])

    reference = official_predictor(official)
    # No cache: every call embeds.
    predictor = Predictor(ours, cache_size=0, precision="fp32")
    fast = Predictor(ours, cache_size=0, precision="bf16")
    with torch.inference_mode():
        embedding = alternating_medians(
            {
                "official": lambda: reference.set_image(image),
                "fp32": lambda: predictor.set_image(image),
                "bf16": lambda: fast.set_image(image),
            },
            args.repeats,
        )
    steps = {
        "decode 1 box -> mask": (
            lambda: reference.predict(box=box, multimask_output=False),
            lambda: predictor.predict(boxes=box),
            args.decode_repeats,
        ),
        "decode 1 point, multimask": (
            lambda: reference.predict(
                point_coords=point, point_labels=np.array([1]), multimask_output=True
            ),
            lambda: predictor.predict(points=point, labels=[1], multimask=True),
            args.decode_repeats,
        ),
    }
    with torch.inference_mode():
        rows = [
            ("embed image, fp32", embedding["official"][0], embedding["fp32"][0]),
            ("embed image, bf16", embedding["official"][0], embedding["bf16"][0]),
            *(
                (name, *paired_medians(official_step, our_step, repeats))
                for name, (official_step, our_step, repeats) in steps.items()
            ),
        ]

    auto = precision_choice("auto", predictor.device)
    print(
        f"# {args.arch}, input {config.image_size}², image {height}×{width}, decoding fp32, "
        f"{machine_description()}\n# precision='auto' here: {auto.precision} ({auto.reason})"
    )
    print(f"{'step':<28}{'official s':>12}{'samforge s':>12}{'ratio':>8}")
    for name, official_s, ours_s in rows:
        print(f"{name:<28}{official_s:>12.4f}{ours_s:>12.4f}{official_s / ours_s:>8.2f}")
    print(f"\n{'parity (box prompt)':<28}{'max |diff| / max |ref|':>24}")
    for name, error in parity(reference, predictor, image, box):
        print(f"{name:<28}{error:>24.2e}")
    error, iou = bf16_agreement(predictor, fast, image, box)
    print(f"{'bf16 embedding vs fp32':<28}{error:>24.2e}")
    print(f"{'bf16 box mask IoU vs fp32':<28}{iou:>24.4f}")


def bf16_agreement(
    exact: Predictor, fast: Predictor, image: np.ndarray, box: np.ndarray
) -> tuple[float, float]:
    """(bf16 embedding's largest error relative to fp32's largest value, IoU of the two
    precisions' box masks). With random weights the mask is an arbitrary shape, but one
    that both precisions should draw alike."""
    masks, embeddings = [], []
    for predictor in (exact, fast):
        predictor.set_image(image)
        embeddings.append(predictor.image_embedding.embedding.double())
        masks.append(predictor.predict(boxes=box).masks)
    error = (embeddings[1] - embeddings[0]).abs().max() / embeddings[0].abs().max()
    union = (masks[0] | masks[1]).sum()
    return error.item(), float((masks[0] & masks[1]).sum() / max(union, 1))


def parity(reference, predictor: Predictor, image: np.ndarray, box: np.ndarray):
    """(name, relative error) of the embedding, low-res logits and logits on ``image``."""
    reference.set_image(image)
    predictor.set_image(image)
    logits, _, low_res = reference.predict(box=box, multimask_output=False, return_logits=True)
    ours = predictor.predict(boxes=box, return_logits=True)
    pairs = {
        "embedding": (predictor.image_embedding.embedding, reference.features),
        "low-res logits": (ours.low_res_logits[0], low_res),
        "logits": (ours.logits[0], logits),
    }
    for name, (ours_value, reference_value) in pairs.items():
        ours_t = torch.as_tensor(np.asarray(ours_value), dtype=torch.float64)
        reference_t = torch.as_tensor(np.asarray(reference_value), dtype=torch.float64)
        scale = reference_t.abs().max().clamp_min(1e-12)
        yield name, ((ours_t - reference_t).abs().max() / scale).item()


if __name__ == "__main__":
    main()
