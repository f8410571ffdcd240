"""SAM's mask decoder: output tokens and prompt tokens run through the two-way
transformer; each mask token becomes a hypernetwork that weights the upscaled image
features into one mask, and the IoU token predicts each mask's quality."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .common import MLP, LayerNorm2d
from .config import SamConfig
from .transformer import TwoWayTransformer


class DecoderOutput(NamedTuple):
    """What a mask decoder computes for B prompts, beyond the masks themselves.

    Attributes:
        low_res_logits: (B, M, 4h, 4w) mask logits, M = 3 with multimask output, else 1.
        iou_predictions: (B, M) predicted IoUs, or None for decoders without an IoU head.
        mask_features: (B, C', 4h, 4w) the upscaled features the masks are read from
            (RobustSAM: its robust mask features, as its consistency loss compares them).
        output_tokens: (B, T, C) the mask tokens after the transformer (plain SAM: the
            selected ones, T = M; RobustSAM: all of its robust or clean tokens, as its token
            loss compares them).
    """

    low_res_logits: torch.Tensor
    iou_predictions: torch.Tensor | None
    mask_features: torch.Tensor
    output_tokens: torch.Tensor


def mask_slice(multimask_output: bool) -> slice:
    """Which of the decoder's masks are returned: 1–3 (multimask) or the single mask 0."""
    return slice(1, None) if multimask_output else slice(0, 1)


def read_masks(hyper_in: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Masks as hypernetwork weights applied to features.

    Args:
        hyper_in: (B, T, C') one weight vector per mask.
        features: (B, C', H, W) upscaled image features.

    Returns:
        (B, T, H, W) mask logits.
    """
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width)
    return (hyper_in @ flat).reshape(batch, -1, height, width)


def expand_to_batch(image_embeddings: torch.Tensor, batch: int) -> torch.Tensor:
    """(1 or B, C, h, w) -> (B, C, h, w): one image shared by all prompts, or one each."""
    if image_embeddings.shape[0] not in (1, batch):
        raise ValueError(
            f"image embeddings have batch {image_embeddings.shape[0]} but there are {batch} "
            "prompts; pass one embedding shared by all prompts or one per prompt."
        )
    return image_embeddings.expand(batch, -1, -1, -1)


class MaskDecoder(nn.Module):
    def __init__(
        self,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)
            for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth
        )

    @classmethod
    def from_config(cls, config: SamConfig) -> MaskDecoder:
        return cls(
            transformer_dim=config.prompt_embed_dim,
            transformer=TwoWayTransformer.from_config(config),
            num_multimask_outputs=config.num_multimask_outputs,
            iou_head_depth=config.iou_head_depth,
            iou_head_hidden_dim=config.iou_head_hidden_dim,
        )

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict masks for B prompts.

        Args:
            image_embeddings: (1 or B, C, h, w); one image shared by all prompts, or one
                image per prompt.
            image_pe: (1, C, h, w).
            sparse_prompt_embeddings: (B, N, C).
            dense_prompt_embeddings: (B, C, h, w).
            multimask_output: three disambiguating masks instead of one.

        Returns:
            low-resolution mask logits (B, M, 4h, 4w) and predicted IoUs (B, M), M = 3 or 1.
        """
        output = self.forward_with_features(
            image_embeddings,
            image_pe,
            sparse_prompt_embeddings,
            dense_prompt_embeddings,
            multimask_output,
        )
        return output.low_res_logits, output.iou_predictions

    def forward_with_features(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
    ) -> DecoderOutput:
        """As :meth:`forward`, also returning the upscaled features (B, C/8, 4h, 4w) and the
        selected mask tokens (B, M, C) after the transformer."""
        tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        hs, upscaled = self.run_transformer(
            tokens, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings
        )
        mask_tokens_out = hs[:, 1 : 1 + self.num_mask_tokens, :]
        masks = read_masks(self.hypernetwork_weights(mask_tokens_out), upscaled)
        iou_pred = self.iou_prediction_head(hs[:, 0, :])
        selected = mask_slice(multimask_output)
        return DecoderOutput(
            masks[:, selected], iou_pred[:, selected], upscaled, mask_tokens_out[:, selected]
        )

    def hypernetwork_weights(self, mask_tokens_out: torch.Tensor) -> torch.Tensor:
        """(B, T, C) mask tokens -> (B, T, C/8) weights, one hypernetwork MLP per token."""
        return torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
            dim=1,
        )

    def run_transformer(
        self,
        output_tokens: torch.Tensor,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Output tokens and prompts through the two-way transformer, image features upscaled.

        Args:
            output_tokens: (T, C) learned output tokens, placed before the prompt tokens.
            image_embeddings: (1 or B, C, h, w).
            image_pe: (1, C, h, w).
            sparse_prompt_embeddings: (B, N, C).
            dense_prompt_embeddings: (B, C, h, w).

        Returns:
            tokens after the transformer (B, T + N, C) and the upscaled image features
            (B, C/8, 4h, 4w).
        """
        batch = sparse_prompt_embeddings.shape[0]
        output_tokens = output_tokens.unsqueeze(0).expand(batch, -1, -1)
        tokens = torch.cat(
            [output_tokens.to(sparse_prompt_embeddings.dtype), sparse_prompt_embeddings], dim=1
        )
        src = expand_to_batch(image_embeddings, batch) + dense_prompt_embeddings
        _, channels, height, width = src.shape
        hs, src = self.transformer(src, image_pe, tokens)
        src = src.transpose(1, 2).reshape(batch, channels, height, width)
        return hs, self.output_upscaling(src)
