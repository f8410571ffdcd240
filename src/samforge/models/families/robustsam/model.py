"""RobustSAM: SAM's encoders with RobustSAM's mask decoder (:mod:`.decoder`).

Its embeddings are a dict (see :mod:`samforge.models.sam.embeddings`): the image embedding
and the tokens after the first global-attention block, which the decoder's
anti-degradation blocks read.
"""

from __future__ import annotations

import torch

from ...sam.embeddings import IMAGE_EMBEDDINGS, Embeddings, require
from ...sam.image_encoder import ImageEncoderViT
from ...sam.mask_decoder import DecoderOutput
from ...sam.model import Sam
from .decoder import RobustMaskDecoder

EARLY_FEATURES = "early_features"


class RobustSam(Sam):
    mask_decoder_class = RobustMaskDecoder
    image_encoder: ImageEncoderViT  # reads the tokens after the first global block

    def embed_images(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, S, S) model-ready images -> ``{"image_embeddings": (B, 256, S/16, S/16),
        "early_features": (B, D, S/16, S/16)}``."""
        first_global = self.config.encoder_global_attn_indexes[0]
        embedding, (early,) = self.image_encoder.forward_with_intermediates(images, (first_global,))
        return {IMAGE_EMBEDDINGS: embedding, EARLY_FEATURES: early.permute(0, 3, 1, 2)}

    def decode_with_features(
        self,
        image_embeddings: Embeddings,
        points: tuple[torch.Tensor, torch.Tensor] | None = None,
        boxes: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
        multimask_output: bool = False,
        clean: bool = False,
    ) -> DecoderOutput:
        """Decode B prompts (see :meth:`Sam.decode`) on RobustSAM's robust path, or its clean
        path with ``clean=True`` (SAM's masks).

        Returns:
            masks (B, M, 4h, 4w), IoUs (B, M), the robust mask features (B, 32, 4h, 4w) and
            all four mask tokens after the transformer (B, 4, 256) — robust tokens, or SAM's
            on the clean path — as RobustSAM's consistency losses compare them.
        """
        embeddings = require(image_embeddings, (IMAGE_EMBEDDINGS, EARLY_FEATURES), "RobustSAM")
        sparse, dense, image_pe = self.embed_prompts(points, boxes, mask_inputs)
        return self.mask_decoder(
            embeddings[IMAGE_EMBEDDINGS],
            embeddings[EARLY_FEATURES],
            image_pe,
            sparse,
            dense,
            multimask_output,
            clean,
        )
