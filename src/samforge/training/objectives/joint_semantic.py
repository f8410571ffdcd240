"""MedicoSAM's joint semantic pretraining (``e_sem`` in Alg. 1): a UNETR decoder on the
shared image encoder labels the union of a step's objects (background / foreground),
trained with a softmax Dice loss beside the interactive loss.

Enabled by ``objective.e_sem: true`` of the iterative objective; the decoder is a part of
the objective (an ``nn.Module``), so the same optimiser updates it and the encoder in one
step. The reference's quirks are not copied: one optimiser step per training step (not one
for each loss), skips as wide as the stages that take them (no channel cropping), softmax
over two-class logits (not sigmoid outputs fed to a softmax Dice), and position tables
interpolated when the input size changes (``load_model(image_size=...)``), never zeroed.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ...models.sam.embeddings import image_embeddings
from ...models.semantic import UNETRDecoder, UNETRLayout

FOREGROUND_CLASSES = ("background", "foreground")


class JointSemanticLoss(nn.Module):
    """(embeddings as ``embed_images`` returns them, (B, S, S) bool union of the objects)
    -> the softmax Dice loss of the decoder's two-class logits.

    Args:
        embed_dim: channels of the image embedding (SAM's 256).
        features: the decoder's full-resolution width (64 as MedicoSAM's).
    """

    def __init__(self, embed_dim: int = 256, features: int = 64) -> None:
        super().__init__()
        from monai.losses import DiceLoss

        layout = UNETRLayout.with_features(features, embed_dim, len(FOREGROUND_CLASSES))
        self.decoder = UNETRDecoder(layout)
        self.dice = DiceLoss(softmax=True, to_onehot_y=True)

    def forward(self, embeddings: Any, union: torch.Tensor) -> torch.Tensor:
        embedding = image_embeddings(embeddings)
        expected = self.decoder.layout.embed_dim
        if embedding.shape[1] != expected:
            raise ConfigError(
                f"e_sem's decoder takes {expected}-channel embeddings; this model's have "
                f"{embedding.shape[1]}."
            )
        logits = self.decoder(embedding).float()  # (B, 2, 16h, 16w): the model frame
        if logits.shape[-2:] != union.shape[-2:]:
            logits = F.interpolate(logits, union.shape[-2:], mode="bilinear", align_corners=False)
        return self.dice(logits, union[:, None].long())
