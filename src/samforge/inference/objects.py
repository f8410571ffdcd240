"""Turning per-object predictions into one label map."""

from __future__ import annotations

import numpy as np

from .predictor import Prediction, Predictor


def wants_multimask(num_points: int, num_boxes: int) -> bool:
    """SAM's own advice: one point alone is ambiguous, so predict three masks and keep the
    best-scored; with a box or several points one mask is better."""
    return num_points == 1 and num_boxes == 0


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
    predictor: Predictor,
    points: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    boxes: np.ndarray | None = None,
    multimask: bool | None = None,
) -> tuple[np.ndarray, Prediction]:
    """Segment the objects given by ``boxes`` (B, 4) and/or ``points`` (B, N, 2) in the
    current image; returns the (H, W) label map and the per-object best prediction."""
    num_points = 0 if points is None else np.asarray(points).reshape(-1, 2).shape[0]
    num_boxes = 0 if boxes is None else np.asarray(boxes).reshape(-1, 4).shape[0]
    if multimask is None:
        multimask = wants_multimask(num_points, num_boxes)
    prediction = predictor.predict(
        points=points, labels=labels, boxes=boxes, multimask=multimask, return_logits=True
    ).best()
    return label_map_from_logits(prediction.logits[:, 0]), prediction
