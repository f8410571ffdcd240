"""Turning per-object predictions into one label map."""

from __future__ import annotations

import numpy as np

from ..prompts import Prompts, wants_multimask
from .predictor import Prediction, Predictor


def label_map_from_logits(logits: np.ndarray) -> np.ndarray:
    """(B, H, W) per-object logits -> (H, W) label map, object i as i + 1.

    Where objects overlap, the pixel goes to the object with the highest logit, so the
    result does not depend on the order of the prompts.
    """
    winner = logits.argmax(axis=0)
    foreground = logits.max(axis=0) > 0
    dtype = np.uint8 if logits.shape[0] < 256 else np.uint16
    return np.where(foreground, winner + 1, 0).astype(dtype)


def segment_objects(
    predictor: Predictor, prompts: Prompts, multimask: bool | None = None
) -> tuple[np.ndarray, Prediction[np.ndarray]]:
    """Segment the B objects of ``prompts`` in the current image; returns the (H, W) label
    map and the per-object best prediction (numpy). ``multimask`` defaults to
    :func:`~samforge.prompts.wants_multimask`."""
    if multimask is None:
        multimask = wants_multimask(prompts)
    prediction = predictor.decode(prompts, multimask).best().numpy()
    assert prediction.logits is not None  # decode returns them and numpy() keeps them
    return label_map_from_logits(prediction.logits[:, 0]), prediction
