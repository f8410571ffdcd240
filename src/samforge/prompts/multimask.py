"""When to ask SAM for three masks per object, and which one to keep.

Shared by the Predictor, training and evaluation, so that all of them decide alike.
"""

from __future__ import annotations

from typing import TypeVar, overload

import numpy as np
import torch

from .record import Prompts

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def wants_multimask(prompts: Prompts) -> bool:
    """SAM's own advice: a single point is ambiguous (a part or the whole?), so predict
    three masks and keep the best-scored; with a box, several points or a mask prompt, one
    mask is better. True when every object has exactly one point and nothing else."""
    return (
        prompts.points is not None
        and prompts.points.shape[1] == 1
        and prompts.boxes is None
        and prompts.mask_input is None
    )


@overload
def best_mask(scores: Array | None, *outputs: Array) -> tuple[Array, ...]: ...
@overload
def best_mask(scores: Array | None, *outputs: Array | None) -> tuple[Array | None, ...]: ...
def best_mask(scores: Array | None, *outputs: Array | None) -> tuple[Array | None, ...]:
    """Per object, the mask with the highest predicted IoU.

    Args:
        scores: (B, M) predicted IoU; None (a model without an IoU head) keeps mask 0, as
            does M = 1 (whatever the score, NaN included).
        outputs: (B, M, ...) arrays or tensors indexed alike (masks, logits, scores, ...);
            None entries stay None.

    Returns:
        each output reduced to (B, 1, ...), in the order given.
    """
    first = next(output for output in outputs if output is not None)
    batch, count = first.shape[:2]
    chosen = scores if count > 1 else None
    if isinstance(first, torch.Tensor):
        rows = torch.arange(batch, device=first.device)
        index = torch.zeros(batch, dtype=torch.long, device=first.device)
        if chosen is not None:
            index = chosen.detach().argmax(dim=1).to(first.device)
    else:
        rows, index = np.arange(batch), np.zeros(batch, dtype=np.int64)
        if chosen is not None:
            index = np.asarray(chosen).argmax(axis=1)
    return tuple(None if output is None else output[rows, index][:, None] for output in outputs)
