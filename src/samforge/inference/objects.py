"""Turning per-object predictions into one label map."""

from __future__ import annotations

import numpy as np

from ..prompts import Prompts, wants_multimask
from .predictor import Predictor
from .tiled import TiledPredictor


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
    predictor: Predictor | TiledPredictor, prompts: Prompts, multimask: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Segment the B objects of ``prompts`` in the current image.

    The label map is :func:`label_map_from_logits` of the objects' best masks, built chunk
    by chunk (:meth:`Predictor.decode_chunks`): memory stays a few bytes per pixel however
    many objects there are.

    Returns:
        the (H, W) label map (object i as i + 1) and the (B,) predicted IoU of each
        object's best mask. ``multimask`` defaults to :func:`~samforge.prompts.wants_multimask`.
    """
    if multimask is None:
        multimask = wants_multimask(prompts)
    dtype = np.uint8 if prompts.num_objects < 256 else np.uint16
    top: np.ndarray | None = None
    winner: np.ndarray | None = None
    scores = []
    done = 0
    for chunk in predictor.decode_chunks(prompts, multimask):
        best = chunk.best()
        assert best.logits is not None  # decode_chunks returns them
        scores.append(best.scores[:, 0].float().cpu().numpy())
        for logits in best.logits[:, 0]:
            done += 1
            plane = logits.float().cpu().numpy()
            if top is None or winner is None:
                top, winner = plane.copy(), np.full(plane.shape, done, dtype)
                continue
            higher = plane > top  # strictly: ties keep the earlier object, as argmax does
            np.copyto(top, plane, where=higher)
            winner[higher] = done
    assert top is not None and winner is not None  # decode_chunks checked for objects
    winner[top <= 0] = 0
    return winner, np.concatenate(scores)
