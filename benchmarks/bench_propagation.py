"""Throughput of 3D prompt propagation on precomputed embeddings: slices per second.

Slice embeddings are computed (here: drawn at random, with SAM's shape) and held in the
Predictor's cache before timing, as in an annotation session or the evaluation's grid
search, so the figure measures what propagation adds per slice: the cache lookup (content
hash of the slice), deriving the prompt from the previous mask (box, mask logits,
distance-transform peaks), SAM's real prompt encoder and mask decoder at full size
(64×64 embedding, 256×256 low-res output, untrained weights: same cost as trained ones),
upsampling the logits to the slice size and the IoU stop.

The decoder's answer is replaced by the true cross-section of a synthetic tube, so every
mode follows the object through every slice, as a good model would (an untrained model's
masks stop propagation after a slice or two, which would time nothing).

    python benchmarks/bench_propagation.py [--depth 48] [--size 256] [--repeats 3]
        [--modes box mask points points_and_mask single_point] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from samforge.data import volume_normalizer
from samforge.inference import Predictor, PropagationSettings, propagate
from samforge.models import Sam
from samforge.models.config import VIT_TEST
from samforge.prompts import Prompts
from samforge.prompts.volume_prompts import PROMPT_MODES, mask_logits
from samforge.testing.timing import machine_description

# SAM's prompt encoder and mask decoder (identical in ViT-B/L/H) at SAM's 1024 input; the
# encoder is never run (embeddings are drawn), so its size does not matter.
CONFIG = VIT_TEST.with_changes(image_size=1024)


class FollowTruthSam(Sam):
    """Runs the real decoder on every call, then answers with the true cross-section."""

    def __init__(self) -> None:
        super().__init__(CONFIG)
        self.truth: dict[int, torch.Tensor] = {}  # embedding data_ptr -> (s, s) logits
        self.embedded: list[torch.Tensor] = []

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        size = self.config.embedding_size
        embedding = torch.randn(images.shape[0], 256, size, size)
        self.embedded.append(embedding)
        return embedding

    def decode(self, image_embeddings, *args, **kwargs):
        low_res, scores = super().decode(image_embeddings, *args, **kwargs)
        truth = self.truth[image_embeddings.data_ptr()]
        return truth.expand_as(low_res).clone(), scores


def tube(depth: int, size: int) -> np.ndarray:
    """(D, size, size) bool tube drifting in x whose radius swells and shrinks."""
    yy, xx = np.mgrid[:size, :size]
    slices = []
    for z in range(depth):
        t = z / max(depth - 1, 1)
        cx, cy = size * (0.35 + 0.3 * t), size * 0.5
        radius = size * (0.12 + 0.05 * np.sin(np.pi * t))
        slices.append((xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2)
    return np.stack(slices)


def prepare(depth: int, size: int):
    """A predictor whose cache holds every slice's embedding, the volume, its label and
    the volume's intensity mapping (part of the cache key)."""
    label = tube(depth, size)
    rng = np.random.default_rng(0)
    volume = (label * 120 + rng.normal(60, 15, label.shape)).clip(0, 255).astype(np.uint8)
    model = FollowTruthSam().eval()
    predictor = Predictor(model, cache_size=depth)
    mapping = volume_normalizer(volume)
    for index in range(depth):
        predictor.set_image(volume[index], mapping=mapping)
        pointer = predictor.image_embedding.embedding.data_ptr()
        logits = mask_logits(label[index], predictor.transform, predictor.low_res_size)
        model.truth[pointer] = torch.from_numpy(logits)[None]
    return predictor, volume, label, mapping


def time_mode(predictor, volume, label, mapping, mode: str, repeats: int) -> tuple[float, int]:
    """Median seconds of one full propagation from the middle slice, and slices decoded."""
    start = volume.shape[0] // 2
    rows, cols = np.nonzero(label[start])
    box = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=np.float32)
    prompts = {start: Prompts.from_user(boxes=box)}
    settings = PropagationSettings(mode, iou_threshold=0.5, box_extension=0.0)
    times, decoded = [], 0
    for _ in range(repeats):
        began = time.perf_counter()
        result = propagate(predictor, volume, prompts, settings, mapping=mapping)
        times.append(time.perf_counter() - began)
        decoded = result.decoded
        assert result.segmented.all(), f"{mode}: propagation stopped early"
    return statistics.median(times), decoded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depth", type=int, default=48)
    parser.add_argument("--size", type=int, default=256, help="slice height and width")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=list(PROMPT_MODES))
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    predictor, volume, label, mapping = prepare(args.depth, args.size)
    embedded = len(predictor.model.embedded)
    print(f"propagation on cached embeddings | {machine_description()}")
    print(
        f"volume {args.depth}×{args.size}×{args.size}, SAM decoder at 1024 (embedding 64², "
        f"low-res 256²), IoU stop 0.5, box extension 0, prompt on slice {args.depth // 2}, "
        f"median of {args.repeats}"
    )
    for mode in args.modes:
        seconds, decoded = time_mode(predictor, volume, label, mapping, mode, args.repeats)
        print(
            f"  {mode:<16} {decoded / seconds:7.1f} slices/s  "
            f"({1000 * seconds / decoded:6.1f} ms/slice, {decoded} slices)"
        )
    extra = len(predictor.model.embedded) - embedded
    print(f"slices embedded during timing: {extra} (all served from the cache)")


if __name__ == "__main__":
    main()
