"""MobileSAM: SAM with TinyViT as its image encoder; prompt encoder and decoder are SAM's."""

from __future__ import annotations

from torch import nn

from ...config import SamConfig
from ...sam.model import Sam
from .encoder import TinyViT


class MobileSam(Sam):
    """SAM whose ``image_encoder`` is a :class:`~.encoder.TinyViT`: (B, 3, S, S) model-ready
    images -> (B, 256, S/16, S/16) embeddings, decoded as SAM's."""

    def build_image_encoder(self, config: SamConfig) -> nn.Module:
        return TinyViT.from_config(config)
