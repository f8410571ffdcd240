"""How far bf16 image embeddings move a model's masks from the fp32 ones: box prompts on
every object of labelled images, the masks of the two precisions compared by IoU."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from samforge.data import instances_from_labels
from samforge.inference import Predictor
from samforge.models import SamModel


def bf16_mask_ious(
    model: SamModel, images: Iterable[tuple[np.ndarray, np.ndarray, str]]
) -> list[float]:
    """IoU between the fp32 and the bf16 mask of every object (box prompt, one mask).

    Args:
        images: (image (H, W[, 3]), label map (H, W), intensity mode) triples.

    Returns:
        one IoU per object with a nonempty mask in either precision.
    """
    exact = Predictor(model, precision="fp32", cache_size=0)
    fast = Predictor(model, precision="bf16", cache_size=0)
    ious = []
    for image, label, intensity in images:
        objects = instances_from_labels(label)
        boxes = np.stack([instance.box for instance in objects])
        masks = []
        for predictor in (exact, fast):
            predictor.set_image(image, intensity=intensity)
            masks.append(predictor.predict(boxes=boxes).masks[:, 0])
        intersection = (masks[0] & masks[1]).sum(axis=(1, 2))
        union = (masks[0] | masks[1]).sum(axis=(1, 2))
        ious.extend((intersection[union > 0] / union[union > 0]).tolist())
    return ious


def pooled(ious: list[float]) -> str:
    """A one-line summary for assertion messages."""
    return f"{len(ious)} objects, mean IoU {np.mean(ious):.4f}, min {np.min(ious):.4f}"
