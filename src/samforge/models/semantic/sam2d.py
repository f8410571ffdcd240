"""MedicoSAM's 2D semantic model: a SAM-family image encoder and a UNETR decoder.

The SAM model's three modules sit at the top level under SAM's official names
(``image_encoder``, ``prompt_encoder``, ``mask_decoder``), so freeze policies and PEFT apply
by name as for SAM itself and the interactive part exports as an official checkpoint; only
the image encoder runs here. The decoder sits under ``head`` with torch_em's names, so its
state is micro-sam's ``decoder_state``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..config import SamConfig
from ..sam.embeddings import image_embeddings
from ..sam.model import PromptableModel
from .base import SamFrame, SemanticModel
from .info import SemanticInfo
from .unetr import UNETRDecoder, UNETRLayout

SAM_MODULES = ("image_encoder", "prompt_encoder", "mask_decoder")


class SamSemanticModel2d(SemanticModel):
    """(B, in_channels, H, W) [0, 1] intensities -> (B, classes, H, W) logits.

    Args:
        sam: the SAM-family model whose encoder labels (its other modules are kept for
            export, never run).
        info: classes, patch size and intensity rule.
        layout: the decoder's shapes; by default samforge's with 64 features
            (:meth:`UNETRLayout.with_features`) for ``info``'s classes.
    """

    architecture = "sam_unetr2d"

    def __init__(
        self, sam: PromptableModel, info: SemanticInfo, layout: UNETRLayout | None = None
    ) -> None:
        super().__init__()
        self.info = info
        self.sam_config: SamConfig = sam.config
        self.image_encoder = sam.image_encoder
        self.prompt_encoder = sam.prompt_encoder
        self.mask_decoder = sam.mask_decoder
        for module in (self.prompt_encoder, self.mask_decoder):
            module.requires_grad_(False)  # semantic training never runs them
        config = sam.config
        self.frame = SamFrame(
            config.image_size, config.preprocessing, config.pixel_mean, config.pixel_std
        )
        layout = layout or UNETRLayout.with_features(64, config.prompt_embed_dim, info.num_classes)
        self.head = UNETRDecoder(layout)
        self.provenance = dict(getattr(sam, "provenance", {}))

    def network_settings(self) -> dict[str, Any]:
        return {"sam_config": self.sam_config.to_dict(), "decoder": self.head.layout.to_dict()}

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) model-frame images -> (N, 256, S/16, S/16)."""
        return image_embeddings(self.image_encoder(frames))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (x.shape[-2], x.shape[-1])
        logits = self.head(self.embed(self.frame.to_frame(x)))
        return self.frame.from_frame(logits, size)

    def sam_state_dict(self) -> dict[str, torch.Tensor]:
        """The SAM modules' tensors under their official names."""
        return {
            key: value
            for key, value in self.state_dict().items()
            if key.split(".", 1)[0] in SAM_MODULES
        }
