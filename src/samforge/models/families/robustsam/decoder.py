"""RobustSAM's mask decoder: SAM's decoder plus robust output tokens (``custom_robust_token``)
with their own hypernetwork (``custom_token_block`` then ``robust_mlp``), and robust mask
features fused from three anti-degradation blocks (``fourier_*``) over the decoder's
upscaled features, the first global ViT block's tokens and the image embedding.

Two paths, as in the ``robust_segment_anything`` package:

- robust (``clean=False``, RobustSAM's inference path): the robust tokens run through the
  transformer and their masks are read from the robust mask features;
- clean (``clean=True``, used for the clean view in training): SAM's tokens and
  hypernetworks on SAM's upscaled features, i.e. exactly SAM's masks, while the robust
  features are still computed (clean variant) for the consistency loss.

Unlike the package, any number of prompts per call works (it handled one).
"""

from __future__ import annotations

from typing import Any, Self

import torch
from torch import nn

from ...config import SamConfig
from ...sam.common import MLP
from ...sam.mask_decoder import DecoderOutput, MaskDecoder, expand_to_batch, mask_slice, read_masks
from ...sam.transformer import TwoWayTransformer
from .blocks import (
    FirstLayerFeatureBlock,
    LastLayerFeatureBlock,
    MaskFeatureBlock,
    TokenBlock,
)


class RobustMaskDecoder(MaskDecoder):
    def __init__(
        self,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        vit_dim: int,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
    ) -> None:
        super().__init__(
            transformer_dim, transformer, num_multimask_outputs, iou_head_depth, iou_head_hidden_dim
        )
        tokens = self.num_mask_tokens
        self.custom_robust_token = nn.Embedding(tokens, transformer_dim)
        self.robust_mlp = MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)
        self.fourier_mask_features = MaskFeatureBlock(transformer_dim)
        self.fourier_first_layer_features = FirstLayerFeatureBlock(vit_dim, transformer_dim)
        self.fourier_last_layer_features = LastLayerFeatureBlock(transformer_dim)
        self.custom_token_block = TokenBlock(tokens, transformer_dim // tokens)

    @classmethod
    def from_config(cls, config: SamConfig, **extra_arguments: Any) -> Self:
        return super().from_config(config, vit_dim=config.encoder_embed_dim, **extra_arguments)

    def image_features(
        self, image_embeddings: torch.Tensor, early_features: torch.Tensor, clean: bool
    ) -> torch.Tensor:
        """Per-image robust features: (1 or B, C, h, w) embedding and (1 or B, D, h, w)
        first-global-block tokens -> (1 or B, C/8, 4h, 4w)."""
        first = self.fourier_first_layer_features(early_features, clean)
        last = self.fourier_last_layer_features(image_embeddings, clean)
        return first + last

    def forward(  # type: ignore[override]  # RobustSAM needs the early features too
        self,
        image_embeddings: torch.Tensor,
        early_features: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
        clean: bool = False,
    ) -> DecoderOutput:
        """Masks for B prompts on RobustSAM's robust (default) or clean path.

        Args:
            image_embeddings: (1 or B, C, h, w).
            early_features: (1 or B, D, h, w) tokens after the first global ViT block.
            image_pe: (1, C, h, w).
            sparse_prompt_embeddings: (B, N, C).
            dense_prompt_embeddings: (B, C, h, w).
            multimask_output: masks 1–3 instead of mask 0.
            clean: SAM's tokens and features (the clean view) instead of the robust ones.

        Returns:
            masks (B, M, 4h, 4w), IoUs (B, M), robust mask features (B, C/8, 4h, 4w) and
            all mask tokens after the transformer (B, 4, C).
        """
        batch = sparse_prompt_embeddings.shape[0]
        robust_image = self.image_features(image_embeddings, early_features, clean)
        learned = self.mask_tokens if clean else self.custom_robust_token
        tokens = torch.cat([self.iou_token.weight, learned.weight], dim=0)
        hs, upscaled = self.run_transformer(
            tokens, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings
        )
        mask_tokens_out = hs[:, 1 : 1 + self.num_mask_tokens, :]
        robust_features = self.fourier_mask_features(upscaled, clean) + expand_to_batch(
            robust_image, batch
        )
        if clean:
            masks = read_masks(self.hypernetwork_weights(mask_tokens_out), upscaled)
        else:
            hyper_in = self.robust_mlp(self.custom_token_block(mask_tokens_out))
            masks = read_masks(hyper_in, robust_features)
        iou_pred = self.iou_prediction_head(hs[:, 0, :])
        selected = mask_slice(multimask_output)
        return DecoderOutput(
            masks[:, selected], iou_pred[:, selected], robust_features, mask_tokens_out
        )

    def forward_with_features(self, *args, **kwargs) -> DecoderOutput:
        raise TypeError(
            "RobustSAM's decoder also needs the early ViT features: call it as "
            "decoder(image_embeddings, early_features, image_pe, sparse, dense, multimask, "
            "clean), or use model.decode_with_features."
        )
