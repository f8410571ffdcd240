"""RobustSAM's anti-degradation modules (Chen et al., CVPR 2024).

Attribute names follow the ``robust_segment_anything`` package (1.0.0) so its checkpoints
load strictly; the computation matches it tensor for tensor. The paper's terms:

- AMFG (anti-degradation mask feature generation): the three :class:`FeatureBlock`
  subclasses — on the robust path a degradation-suppression block
  (:class:`DegradationBlock`: a selective-kernel convolution, concatenation with its
  input, channel attention) and a 3×3 convolution, then an up- or downsampling head; on the
  clean path only the head.
- AOTG (anti-degradation output token generation): :class:`TokenBlock`.

Two quirks of the package are kept because its weights were trained with them:

- its Fourier block (``fgm_block``) computes a filtered spectrum and then returns its
  input unchanged, so :class:`FourierBlock` is the identity (the FFT is skipped; the
  1×1 convolution is kept so checkpoints load). The authors' GitHub version of the same
  file applies the filter instead; samforge follows the released package.
- its token block normalises one token, splits it into ``num_mask_tokens`` chunks and maps
  each chunk to a full hypernetwork input; the masks read only the first chunk's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...sam.common import LayerNorm2d, upscaling_head

# RobustSAM's attention maps are predicted on a 4×4 grid and repeated over the image.
SELECTOR_GRID = 4
REDUCTION = 16


class Selector(nn.Module):
    """Soft choice between two feature maps per channel and region.

    (B, C, H, W) -> two (B, C, H, W) weights summing to one, constant on a 4×4 grid of
    regions (H and W multiples of 4).
    """

    def __init__(self, channels: int, reduction: int = REDUCTION) -> None:
        super().__init__()
        features = channels * SELECTOR_GRID**2
        self.fc = nn.Sequential(nn.Linear(features, features // reduction, bias=False), nn.ReLU())
        self.att_conv1 = nn.Linear(features // reduction, features)
        self.att_conv2 = nn.Linear(features // reduction, features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, channels, height, width = x.shape
        pooled = F.adaptive_avg_pool2d(x, SELECTOR_GRID).reshape(batch, -1)
        hidden = self.fc(pooled)
        grid = (batch, channels, SELECTOR_GRID, SELECTOR_GRID)
        logits = torch.stack([self.att_conv1(hidden).view(grid), self.att_conv2(hidden).view(grid)])
        weights = F.interpolate(
            logits.softmax(dim=0).flatten(0, 1), size=(height, width), mode="nearest"
        )
        first, second = weights.view(2, batch, channels, height, width)
        return first, second


class SelectiveConv(nn.Module):
    """Two 3×3 convolutions, one on batch-normalised and one on instance-normalised input
    (LeakyReLU after each norm), blended by a :class:`Selector`: (B, C, H, W) -> (B, C', H, W).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.selector = Selector(out_channels)
        self.BN = nn.BatchNorm2d(in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch_branch = self.conv1(F.leaky_relu(self.BN(x)))
        instance_branch = self.conv2(F.leaky_relu(F.instance_norm(x)))
        first, second = self.selector(batch_branch + instance_branch)
        return batch_branch * first + instance_branch * second


class SelectiveKernel(nn.Module):
    """Holds the :class:`SelectiveConv` under the package's name (``maxpool_conv.0``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.maxpool_conv = nn.Sequential(SelectiveConv(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool_conv(x)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: (B, C, H, W) scaled by sigmoid gates from its channel means."""

    def __init__(self, channels: int, reduction: int = REDUCTION) -> None:
        super().__init__()
        self.excitation = nn.Sequential(
            nn.Linear(channels, channels // reduction),
            nn.ReLU(),
            nn.Linear(channels // reduction, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gates = self.excitation(x.mean(dim=(2, 3)))
        return x * gates[:, :, None, None]


class DegradationBlock(nn.Module):
    """Degradation suppression: (B, C, H, W) -> (B, 2C, H, W), the input concatenated with
    its selective-kernel features and reweighted per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channel_attention = ChannelAttention(2 * channels)
        self.SEMBlock = SelectiveKernel(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.channel_attention(torch.cat([x, self.SEMBlock(x)], dim=1))


class FourierBlock(nn.Module):
    """The package's Fourier block: the identity on (B, C, H, W) (see the module docstring);
    ``conv_layer`` is held only so that checkpoints load."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_layer = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class FeatureBlock(nn.Module):
    """AMFG's shared part: on the robust path a degradation block, the Fourier block and a
    3×3 convolution (2C -> C) precede the block's head; the clean path skips them."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.dnc_block_combined = DegradationBlock(channels)
        self.fgm_block = FourierBlock(2 * channels)
        self.conv_layer = nn.Conv2d(2 * channels, channels, kernel_size=3, padding=1)

    def suppress_degradation(self, x: torch.Tensor, clean: bool) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W); the input itself on the clean path."""
        if clean:
            return x
        return self.conv_layer(self.fgm_block(self.dnc_block_combined(x)))


class MaskFeatureBlock(FeatureBlock):
    """On the decoder's upscaled features: (B, C/8, 4h, 4w) -> (B, C/8, 4h, 4w)."""

    def __init__(self, transformer_dim: int) -> None:
        channels = transformer_dim // 8
        super().__init__(channels)
        self.downsample_layer = nn.Sequential(
            nn.Conv2d(channels, 2 * channels, 3, 1, 1),
            LayerNorm2d(2 * channels),
            nn.GELU(),
            nn.Conv2d(2 * channels, channels, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor, clean: bool) -> torch.Tensor:
        return self.downsample_layer(self.suppress_degradation(x, clean))


class FirstLayerFeatureBlock(FeatureBlock):
    """On the first global block's tokens: (B, D, h, w) -> (B, C/8, 4h, 4w)."""

    def __init__(self, vit_dim: int, transformer_dim: int) -> None:
        super().__init__(vit_dim)
        self.upsample_layer = upscaling_head(vit_dim, transformer_dim, transformer_dim // 8)

    def forward(self, x: torch.Tensor, clean: bool) -> torch.Tensor:
        return self.upsample_layer(self.suppress_degradation(x, clean))


class LastLayerFeatureBlock(FeatureBlock):
    """On the image embedding: (B, C, h, w) -> (B, C/8, 4h, 4w)."""

    def __init__(self, transformer_dim: int) -> None:
        super().__init__(transformer_dim)
        self.upsample_layer = upscaling_head(transformer_dim, transformer_dim, transformer_dim // 8)

    def forward(self, x: torch.Tensor, clean: bool) -> torch.Tensor:
        return self.upsample_layer(self.suppress_degradation(x, clean))


class TokenBlock(nn.Module):
    """AOTG on robust output tokens: (..., C) -> (..., C).

    Each token is normalised over its channels (twice: the package stacks two instance
    norms, which on one token reduce to a layer norm without affine), split into
    ``num_chunks`` chunks of C / num_chunks, and each chunk is mapped by an MLP to C values;
    the first chunk's output is the token's (see the module docstring).
    """

    def __init__(self, num_chunks: int, chunk_dim: int) -> None:
        super().__init__()
        self.num_chunks = num_chunks
        self.mlp = nn.Sequential(
            nn.Linear(chunk_dim, chunk_dim),
            nn.ReLU(),
            nn.Linear(chunk_dim, chunk_dim * num_chunks),
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        channels = tokens.shape[-1]
        normed = F.layer_norm(F.layer_norm(tokens, (channels,)), (channels,))
        chunks = normed.reshape(*tokens.shape[:-1], self.num_chunks, -1)
        return self.mlp(chunks)[..., 0, :]
