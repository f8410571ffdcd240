"""Prompts: the one record (:class:`Prompts`), the one sampler for training and evaluation,
and the one rule for multimask output (:func:`wants_multimask`, :func:`best_mask`).

- :mod:`.record`: :class:`Prompts`, points/labels/boxes/mask logits of B objects.
- :mod:`.sampler`: boxes, centre points, random and correction points from masks.
- :mod:`.multimask`: when to ask for three masks per object, and which one to keep.
- :mod:`.user_input`: the checks behind :meth:`Prompts.from_user` and :meth:`Prompts.check_fits`.

It sits below inference, training and evaluation (DESIGN.md's layers): all three use it.
"""

from .multimask import best_mask, wants_multimask
from .record import Prompts
from .sampler import (
    BOX_JITTER_FRACTION,
    NEGATIVE_RING_PX,
    box_from_masks,
    box_masks,
    center_points,
    correction_points,
    correction_regions,
    jitter_boxes,
    positive_points,
    ring_around,
    sample_points,
)

__all__ = [
    "BOX_JITTER_FRACTION",
    "NEGATIVE_RING_PX",
    "Prompts",
    "best_mask",
    "box_from_masks",
    "box_masks",
    "center_points",
    "correction_points",
    "correction_regions",
    "jitter_boxes",
    "positive_points",
    "ring_around",
    "sample_points",
    "wants_multimask",
]
