"""Prompt decoding: official ``SamPredictor`` against samforge's ``Predictor`` (issues 7, 18).

Same random ViT-B weights in both, a 768×1024 image (model input 1024², resized), the
image embedding precomputed and shared (a random (1, 256, 64, 64) tensor: decoding does
not care where it came from). Each step goes from prompts in original pixels to masks at
the original resolution: 1 box, 1 point with three masks, and N boxes in one call. The
two implementations run alternately after a warm-up call each; medians. Ratio = official
/ samforge; "× one box" = N boxes in one call over one box, samforge's.

    python benchmarks/bench_decoder.py --threads 2 --repeats 20 --batch-repeats 3
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from samforge.inference import ImageEmbedding, Predictor
from samforge.models import build_model, get_config
from samforge.testing.official import (
    OFFICIAL_ARCHITECTURES,
    build_official_sam,
    official_predictor,
)
from samforge.testing.timing import machine_description, paired_medians

# Issue 18's goals.
GOAL_SECONDS = 0.015  # one box
GOAL_RATIO = 10.0  # against the official predictor
GOAL_BATCH_FACTOR = 10.0  # 32 objects in one call at most this many times one object
OBJECT_COUNTS = (1, 8, 32, 64)


def official_with_embedding(official, embedding: torch.Tensor, size: tuple[int, int]):
    """An official SamPredictor holding ``embedding`` as if ``set_image`` had made it."""
    predictor = official_predictor(official)
    predictor.reset_image()
    predictor.features = embedding
    predictor.original_size = size
    predictor.input_size = predictor.transform.get_preprocess_shape(*size, 1024)
    predictor.is_image_set = True
    return predictor


def official_boxes(predictor, boxes: np.ndarray):
    """Official batched boxes -> masks at the original size, as its README shows."""
    tensor = torch.as_tensor(boxes, dtype=torch.float32)
    tensor = predictor.transform.apply_boxes_torch(tensor, predictor.original_size)
    masks, _, _ = predictor.predict_torch(None, None, boxes=tensor, multimask_output=False)
    return masks.cpu().numpy()


def spread_boxes(count: int, height: int, width: int) -> np.ndarray:
    """``count`` boxes of a fifth of the image, spread over it (x0, y0, x1, y1)."""
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 0.8, size=(count, 2)) * [width, height]
    return np.concatenate([corners, corners + np.array([width * 0.2, height * 0.2])], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch-repeats", type=int, default=3)
    parser.add_argument("--image-shape", type=int, nargs=2, default=(768, 1024))
    parser.add_argument("--objects", type=int, nargs="+", default=OBJECT_COUNTS)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    official = build_official_sam(**OFFICIAL_ARCHITECTURES["vit_b"])
    ours = build_model(get_config("vit_b"))
    ours.load_state_dict(official.state_dict(), strict=True)
    height, width = args.image_shape
    embedding = torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(0))
    reference = official_with_embedding(official, embedding, (height, width))
    predictor = Predictor(ours, precision="fp32")  # decoding is fp32 in every precision
    predictor.set_embedding(ImageEmbedding(embedding, (height, width)))

    box = np.array([width * 0.2, height * 0.3, width * 0.6, height * 0.7])
    point = np.array([[width * 0.4, height * 0.5]])
    steps = {
        "1 box -> mask": (
            lambda: reference.predict(box=box, multimask_output=False),
            lambda: predictor.predict(boxes=box),
            args.repeats,
        ),
        "1 point, multimask": (
            lambda: reference.predict(
                point_coords=point, point_labels=np.array([1]), multimask_output=True
            ),
            lambda: predictor.predict(points=point, labels=[1], multimask=True),
            args.repeats,
        ),
    }
    for count in args.objects:
        boxes = spread_boxes(count, height, width)
        steps[f"{count} boxes, one call"] = (
            lambda boxes=boxes: official_boxes(reference, boxes),
            lambda boxes=boxes: predictor.predict(boxes=boxes),
            args.batch_repeats if count > 1 else args.repeats,
        )
    with torch.inference_mode():
        rows = {
            name: paired_medians(official_step, our_step, repeats)
            for name, (official_step, our_step, repeats) in steps.items()
        }

    print(
        f"# vit_b decoder, random weights, input 1024², image {height}×{width}, embedding "
        f"precomputed, fp32, "
        f"{machine_description()}"
    )
    one_official, one = rows["1 box -> mask"]
    print(f"{'step':<24}{'official ms':>12}{'samforge ms':>12}{'ratio':>8}{'× one box':>10}")
    for name, (official_s, ours_s) in rows.items():
        print(
            f"{name:<24}{official_s * 1000:>12.1f}{ours_s * 1000:>12.1f}"
            f"{official_s / ours_s:>8.2f}{ours_s / one:>10.1f}"
        )
    print(
        f"goal: 1 box <= {GOAL_SECONDS * 1000:.0f} ms: {one * 1000:.1f} ms -> {one <= GOAL_SECONDS}"
    )
    print(
        f"goal: >= {GOAL_RATIO:.0f}x official: {one_official / one:.2f}x -> "
        f"{one_official / one >= GOAL_RATIO}"
    )
    if "32 boxes, one call" in rows:
        batch = rows["32 boxes, one call"][1]
        print(
            f"goal: 32 objects <= {GOAL_BATCH_FACTOR:.0f}x one: {batch / one:.1f}x -> "
            f"{batch / one <= GOAL_BATCH_FACTOR}"
        )


if __name__ == "__main__":
    main()
