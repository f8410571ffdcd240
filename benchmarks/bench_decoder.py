"""Prompt decoding: official ``SamPredictor`` against samforge's ``Predictor`` (issue 7).

Same random ViT-B weights in both, a 512×512 image (model input 1024²), the image
embedding precomputed and shared (a random (1, 256, 64, 64) tensor: decoding does not care
where it came from, and embedding it twice would only cost time). Each step goes from
prompts in original pixels to masks at the original resolution. The two implementations
run alternately after a warm-up call each; medians. Ratio = official / samforge.

    python benchmarks/bench_decode.py --threads 1 --repeats 20
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

# The goals for one box on a 512² image.
GOAL_SECONDS = 0.015
GOAL_RATIO = 10.0
GOAL_BATCH_FACTOR = 10.0  # 32 objects in one call at most this many times one object
OBJECTS = 32


def official_with_embedding(official, embedding: torch.Tensor, side: int):
    """An official SamPredictor holding ``embedding`` as if ``set_image`` had made it."""
    predictor = official_predictor(official)
    predictor.reset_image()
    predictor.features = embedding
    predictor.original_size = (side, side)
    predictor.input_size = predictor.transform.get_preprocess_shape(side, side, 1024)
    predictor.is_image_set = True
    return predictor


def official_boxes(predictor, boxes: np.ndarray):
    """Official batched boxes -> masks at the original size, as its README shows."""
    tensor = torch.as_tensor(boxes, dtype=torch.float32)
    tensor = predictor.transform.apply_boxes_torch(tensor, predictor.original_size)
    masks, _, _ = predictor.predict_torch(None, None, boxes=tensor, multimask_output=False)
    return masks.cpu().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch-repeats", type=int, default=3)
    parser.add_argument("--image-side", type=int, default=512)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    official = build_official_sam(**OFFICIAL_ARCHITECTURES["vit_b"])
    ours = build_model(get_config("vit_b"))
    ours.load_state_dict(official.state_dict(), strict=True)
    side = args.image_side
    embedding = torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(0))
    reference = official_with_embedding(official, embedding, side)
    predictor = Predictor(ours, precision="fp32")
    predictor.set_embedding(ImageEmbedding(embedding, (side, side)))

    box = np.array([side * 0.2, side * 0.3, side * 0.6, side * 0.7])
    point = np.array([[side * 0.4, side * 0.5]])
    shifts = np.linspace(-0.15, 0.15, OBJECTS)[:, None] * side
    boxes = np.clip(box[None] + shifts, 0, side - 1)
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
        f"{OBJECTS} boxes, one call": (
            lambda: official_boxes(reference, boxes),
            lambda: predictor.predict(boxes=boxes),
            args.batch_repeats,
        ),
    }
    with torch.inference_mode():
        rows = {
            name: paired_medians(official_step, our_step, repeats)
            for name, (official_step, our_step, repeats) in steps.items()
        }

    print(
        f"# vit_b decoder, input 1024², image {side}×{side}, embedding precomputed, fp32, "
        f"{machine_description()}"
    )
    print(f"{'step':<24}{'official s':>12}{'samforge s':>12}{'ratio':>8}")
    for name, (official_s, ours_s) in rows.items():
        print(f"{name:<24}{official_s:>12.4f}{ours_s:>12.4f}{official_s / ours_s:>8.2f}")
    one_official, one = rows["1 box -> mask"]
    batch = rows[f"{OBJECTS} boxes, one call"][1]
    print(
        f"goal: 1 box <= {GOAL_SECONDS * 1000:.0f} ms: {one * 1000:.1f} ms -> {one <= GOAL_SECONDS}"
    )
    print(
        f"goal: >= {GOAL_RATIO:.0f}x official: {one_official / one:.2f}x -> "
        f"{one_official / one >= GOAL_RATIO}"
    )
    print(
        f"goal: {OBJECTS} objects <= {GOAL_BATCH_FACTOR:.0f}x one: {batch / one:.1f}x -> "
        f"{batch / one <= GOAL_BATCH_FACTOR}"
    )


if __name__ == "__main__":
    main()
