"""MobileSAM's image encoder: TinyViT (Wu et al., ECCV 2022) distilled from SAM's ViT-H.

Four stages at 1/4, 1/8, 1/16 and 1/16 of the input: a convolutional stage (MBConv blocks),
then three stages of window-attention blocks, each but the last ending in a patch merge to
the next stage's width; SAM's neck maps the last stage to the 256-channel embedding.
Parameter names follow MobileSAM's ``tiny_vit_sam.py``, so its checkpoints (and micro-sam's
``vit_t`` models) load strictly; its ImageNet classifier (``norm_head``, ``head``) is kept
for that reason and never used.
"""

from __future__ import annotations

import torch
from torch import nn

from ...config import SamConfig
from ...sam.common import encoder_neck
from .blocks import AttentionStage, ConvStage, PatchEmbed, PatchMerging

# TinyViT's ImageNet-1k classifier, which MobileSAM's checkpoints carry.
IMAGENET_CLASSES = 1000


class TinyViT(nn.Module):
    """(B, 3, S, S) normalised image -> (B, out_chans, S/16, S/16) embedding."""

    def __init__(
        self,
        embed_dims: tuple[int, ...] = (64, 128, 160, 320),
        depths: tuple[int, ...] = (2, 2, 6, 2),
        num_heads: tuple[int, ...] = (2, 4, 5, 10),
        window_sizes: tuple[int, ...] = (7, 7, 14, 7),
        mlp_ratio: float = 4.0,
        out_chans: int = 256,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(in_chans, embed_dims[0])
        last = len(embed_dims) - 1
        self.layers = nn.ModuleList()
        for index, (dim, depth) in enumerate(zip(embed_dims, depths, strict=True)):
            downsample = None
            if index < last:
                # The merge into the last stage keeps the resolution, so the output grid is
                # S/16 (MobileSAM's code: stride 1 when the next width is 320, 448 or 576).
                stride = 1 if index + 1 == last else 2
                downsample = PatchMerging(dim, embed_dims[index + 1], stride)
            if index == 0:
                assert downsample is not None  # a TinyViT has at least two stages
                self.layers.append(ConvStage(dim, depth, downsample))
            else:
                self.layers.append(
                    AttentionStage(
                        dim, depth, num_heads[index], window_sizes[index], mlp_ratio, downsample
                    )
                )
        self.norm_head = nn.LayerNorm(embed_dims[-1])
        self.head = nn.Linear(embed_dims[-1], IMAGENET_CLASSES)
        self.neck = encoder_neck(embed_dims[-1], out_chans)

    @classmethod
    def from_config(cls, config: SamConfig) -> TinyViT:
        return cls(
            embed_dims=config.tiny_vit_embed_dims,
            depths=config.tiny_vit_depths,
            num_heads=config.tiny_vit_num_heads,
            window_sizes=config.tiny_vit_window_sizes,
            out_chans=config.prompt_embed_dim,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.neck(x)
