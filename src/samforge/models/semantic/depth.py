"""The 3D semantic model (MA-SAM style): depth adapters in every ViT block, the 2D decoder
per slice, 3D convolutions fusing the slices.

Every block gets two adapters, one before its attention and one before its MLP: LayerNorm,
Linear(dim → width), a (3, 1, 1) convolution across the slices of the patch, GELU,
Linear(width → dim), added to the residual stream. The last Linear starts at zero, so a
loaded SAM starts out computing exactly its own per-slice embeddings. The adapters, the
decoder and the fusion belong to the semantic part (``decoder_state``); the SAM modules stay
SAM's, so the interactive model still exports as an official checkpoint.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from ...errors import ConfigError
from ..sam.image_encoder import Block, ImageEncoderViT
from ..sam.model import PromptableModel
from .blocks import ConvBlock
from .info import SemanticInfo
from .sam2d import SamSemanticModel2d
from .unetr import UNETRLayout

# MA-SAM's adapter width for ViT-B and larger; small encoders get half their width.
ADAPTER_WIDTH = 384


class DepthAdapter(nn.Module):
    """Tokens (N·D, ..., dim) of N patches of D slices -> the same plus a residual that
    mixes each token with the same token of the neighbouring slices."""

    def __init__(self, dim: int, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.down = nn.Linear(dim, width)
        self.conv = nn.Conv3d(width, width, kernel_size=(3, 1, 1), padding=(1, 0, 0))
        self.act = nn.GELU()
        self.up = nn.Linear(width, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor, depth: int) -> torch.Tensor:
        hidden = self.down(self.norm(x))
        shape = hidden.shape
        # (N·D, *grid, W) -> (N, W, D, tokens, 1): the convolution runs along D only.
        volume = hidden.reshape(shape[0] // depth, depth, -1, shape[-1]).permute(0, 3, 1, 2)
        volume = self.act(self.conv(volume[..., None]))[..., 0]
        hidden = volume.permute(0, 2, 3, 1).reshape(shape)
        return x + self.up(hidden)


class AdaptedBlock(nn.Module):
    """The two adapters of one ViT block; :meth:`forward` runs the block with them."""

    def __init__(self, dim: int, width: int) -> None:
        super().__init__()
        self.before_attention = DepthAdapter(dim, width)
        self.before_mlp = DepthAdapter(dim, width)

    def forward(self, block: Block, x: torch.Tensor, depth: int) -> torch.Tensor:
        x = block.attention_residual(self.before_attention(x, depth))
        return block.mlp_residual(self.before_mlp(x, depth))


class SamSemanticModel3d(SamSemanticModel2d):
    """(B, in_channels, D, H, W) [0, 1] intensities -> (B, classes, D, H, W) logits.

    Args:
        sam: a SAM-family model with a ViT image encoder (TinyViT has no such blocks).
        info: classes, (D, H, W) patch size and intensity rule.
        layout: the per-slice decoder's shapes (no ``num_classes``: the fusion labels).
        adapter_width: the adapters' inner width; by default 384, or half the encoder's
            width for encoders narrower than 768.
    """

    architecture = "sam_unetr3d"

    def __init__(
        self,
        sam: PromptableModel,
        info: SemanticInfo,
        layout: UNETRLayout | None = None,
        adapter_width: int | None = None,
    ) -> None:
        encoder = sam.image_encoder
        if not isinstance(encoder, ImageEncoderViT):
            raise ConfigError(
                f"the 3D semantic model adds depth adapters to ViT blocks; "
                f"{type(encoder).__name__} has none. Use a SAM ViT model (vit_b, "
                "samforge_nano...) or the 2D model per slice."
            )
        layout = layout or UNETRLayout.with_features(64, sam.config.prompt_embed_dim)
        super().__init__(sam, info, layout)
        dim = sam.config.encoder_embed_dim
        width = adapter_width or (ADAPTER_WIDTH if dim >= 768 else dim // 2)
        self.adapter_width = width
        self.depth_adapters = nn.ModuleList(AdaptedBlock(dim, width) for _ in encoder.blocks)
        features = layout.widths[-1]
        self.fusion = ConvBlock(features, features // 2, spatial_dims=3)
        self.out_conv3d = nn.Conv3d(features // 2, info.num_classes, kernel_size=1)

    def network_settings(self) -> dict[str, Any]:
        return super().network_settings() | {"adapter_width": self.adapter_width}

    def embed_volume(self, frames: torch.Tensor, depth: int) -> torch.Tensor:
        """(N·D, 3, S, S) slices of N patches -> (N·D, 256, S/16, S/16)."""
        encoder = cast(ImageEncoderViT, self.image_encoder)
        x = encoder.patch_embed(frames) + encoder.pos_embed
        for block, adapters in zip(encoder.blocks, self.depth_adapters, strict=True):
            x = cast(AdaptedBlock, adapters)(cast(Block, block), x, depth)
        return encoder.neck(x.permute(0, 3, 1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, depth, height, width = x.shape
        slices = x.transpose(1, 2).reshape(batch * depth, channels, height, width)
        features = self.head(self.embed_volume(self.frame.to_frame(slices), depth))
        features = self.frame.from_frame(features, (height, width))
        volume = features.reshape(batch, depth, *features.shape[1:]).transpose(1, 2)
        return self.out_conv3d(self.fusion(volume))
