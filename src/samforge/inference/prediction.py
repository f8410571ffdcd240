"""What the Predictor returns: masks for a batch of objects, and an image's embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic

import numpy as np
import torch

from ..models.sam.embeddings import Embeddings
from ..prompts import best_mask
from ..prompts.multimask import Array


@dataclass(frozen=True)
class Prediction(Generic[Array]):
    """Masks for B objects, M masks each (M = 3 with multimask output, else 1; always 1
    for SAM-UNet): numpy arrays from :meth:`Predictor.predict`, tensors on the predictor's
    device from :meth:`Predictor.decode`.

    masks: (B, M, H, W) bool at the original resolution; scores: (B, M) predicted IoU (NaN
    for models without an IoU head, e.g. SAM-UNet); low_res_logits: (B, M, s, s) logits in
    the model frame, to feed back as ``mask_input``; logits: (B, M, H, W) float logits
    (``predict`` returns them when asked with ``return_logits``).
    """

    masks: Array
    scores: Array
    low_res_logits: Array
    logits: Array | None = None

    def best(self) -> Prediction[Array]:
        """Keep, per object, the mask with the highest predicted IoU (M becomes 1)."""
        if self.logits is None:
            masks, scores, low_res = best_mask(
                self.scores, self.masks, self.scores, self.low_res_logits
            )
            return Prediction(masks, scores, low_res)
        return Prediction(
            *best_mask(self.scores, self.masks, self.scores, self.low_res_logits, self.logits)
        )

    def numpy(self: Prediction[torch.Tensor], logits: bool = True) -> Prediction[np.ndarray]:
        """The same prediction as float32 (masks: bool) numpy arrays; ``logits=False``
        drops the full-resolution logits."""

        def convert(tensor: torch.Tensor) -> np.ndarray:
            return (
                tensor.cpu().numpy() if tensor.dtype == torch.bool else tensor.float().cpu().numpy()
            )

        return Prediction(
            convert(self.masks),
            convert(self.scores),
            convert(self.low_res_logits),
            convert(self.logits) if logits and self.logits is not None else None,
        )


@dataclass(frozen=True)
class ImageEmbedding:
    """An image's embeddings and the original (H, W) it came from.

    ``embedding`` is what the model's ``embed_images`` returns for one image: a (1, C, h, w)
    tensor, or for RobustSAM and SAM-UNet a dict of batch-first tensors
    (:mod:`samforge.models.sam.embeddings`).
    """

    embedding: Embeddings
    original_size: tuple[int, int]
