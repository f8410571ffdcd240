"""SAM-Med2D's encoder adapter, added beside the MLP of every ViT block.

It is a part of SAM's image encoder (``SamConfig.encoder_adapter``), which the encoder of
any family can carry, so it lives with the encoder; what SAM-Med2D adds beyond it (its
checkpoint keys, export layout, preprocessing) is its record,
:mod:`samforge.models.families.sammed2d`.

Parameter names follow SAM-Med2D's ``Adapter_Layer`` (``image_encoder.blocks.{i}.Adapter.*``)
so its checkpoints load strictly: a channel gate (``channel``: linear dim → dim/4, ReLU,
linear back, sigmoid; no biases) reweights the tokens, a spatial branch (``spatial``: 3×3
convolution with stride 2, ReLU, 4×4 transposed convolution with stride 2, ReLU; no biases)
adds a residual, and a LayerNorm (``norm``, PyTorch's default eps 1e-5 as in SAM-Med2D)
closes it. The block computes ``x + mlp(norm2(x)) + Adapter(norm2(x))``.

The adapter's output is a LayerNorm, so it is not zero at initialisation: a plain SAM
block is recovered only by zeroing ``norm.weight`` and ``norm.bias``.
"""

from __future__ import annotations

import torch
from torch import nn


class Adapter(nn.Module):
    """(B, H, W, D) tokens -> (B, H, W, D) adapter output; H and W must be even."""

    def __init__(self, dim: int, mlp_ratio: float = 0.25) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm = nn.LayerNorm(dim)
        self.channel = nn.Sequential(
            nn.Linear(dim, hidden, bias=False),
            nn.ReLU(),
            nn.Linear(hidden, dim, bias=False),
            nn.Sigmoid(),
        )
        self.spatial = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=3, stride=2, padding=1, bias=False),
            nn.ReLU(),
            nn.ConvTranspose2d(dim, dim, kernel_size=4, stride=2, padding=1, bias=False),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2)  # (B, D, H, W)
        gate = self.channel(x.mean(dim=(2, 3)))  # (B, D), from the global average
        gated = x * gate[:, :, None, None]
        x = x + self.spatial(gated)
        return self.norm(x.permute(0, 2, 3, 1))
