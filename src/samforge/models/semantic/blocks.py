"""The UNETR decoder's building blocks, under torch_em's parameter names.

MedicoSAM and micro-sam build their semantic decoders with ``torch_em.model.UNETR``; its
state dict is what their checkpoints store as ``decoder_state``. Keeping the module tree
(``block.1`` is a block's first convolution, ``conv`` an upsampler's 1×1 convolution,
``block`` a transposed convolution) lets those files load strictly.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

# "interpolate": bilinear 2× then a 1×1 convolution (torch_em's Upsampler2d);
# "transposed": a 2×2 stride-2 transposed convolution (its SingleDeconv2DBlock).
Upsampling = Literal["interpolate", "transposed"]


class ConvBlock(nn.Module):
    """InstanceNorm, 3×3 conv, ReLU, twice: (B, in, *S) -> (B, out, *S); 2D or 3D."""

    def __init__(self, in_channels: int, out_channels: int, spatial_dims: int = 2) -> None:
        super().__init__()
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        norm = nn.InstanceNorm2d if spatial_dims == 2 else nn.InstanceNorm3d
        self.block = nn.Sequential(
            norm(in_channels),
            conv(in_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            norm(out_channels),
            conv(out_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class InterpolatingUpsampler(nn.Module):
    """Bilinear 2× upsampling, then a 1×1 convolution: (B, in, h, w) -> (B, out, 2h, 2w)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))


class TransposedUpsampler(nn.Module):
    """A 2×2 stride-2 transposed convolution: (B, in, h, w) -> (B, out, 2h, 2w)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


def upsampler(kind: Upsampling, in_channels: int, out_channels: int) -> nn.Module:
    if kind == "transposed":
        return TransposedUpsampler(in_channels, out_channels)
    return InterpolatingUpsampler(in_channels, out_channels)


class SingleConv(nn.Module):
    """A 3×3 convolution under torch_em's ``SingleConv2DBlock`` name (``block``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class DeconvBlock(nn.Module):
    """2× upsampling, 3×3 conv, BatchNorm, ReLU: (B, in, h, w) -> (B, out, 2h, 2w)."""

    def __init__(self, in_channels: int, out_channels: int, kind: Upsampling) -> None:
        super().__init__()
        self.block = nn.Sequential(
            upsampler(kind, in_channels, out_channels),
            SingleConv(out_channels),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


def upsampling_of(state: dict[str, torch.Tensor], prefix: str) -> Upsampling:
    """Which upsampler the module at ``prefix`` of a torch_em state dict uses."""
    return "transposed" if f"{prefix}.block.weight" in state else "interpolate"
