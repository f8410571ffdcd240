"""TinyViT's building blocks, under MobileSAM's parameter names (``tiny_vit_sam.py``).

Feature maps between stages are (B, C, H, W); the attention stages work on (B, H, W, C)
token grids. Every convolution is followed by batch norm (``Conv2dBN``: ``c`` and ``bn``),
which MobileSAM's checkpoints hold with their running statistics.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...sam.windows import window_partition, window_unpartition


class Conv2dBN(nn.Module):
    """Convolution without bias, then batch norm: (B, in, H, W) -> (B, out, H/s, W/s)."""

    def __init__(
        self, in_chans: int, out_chans: int, kernel_size: int = 1, stride: int = 1, groups: int = 1
    ) -> None:
        super().__init__()
        self.c = nn.Conv2d(
            in_chans, out_chans, kernel_size, stride, kernel_size // 2, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.c(x))


class PatchEmbed(nn.Module):
    """Two stride-2 3×3 convolutions: (B, 3, H, W) -> (B, D, H/4, W/4)."""

    def __init__(self, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(
            Conv2dBN(in_chans, embed_dim // 2, 3, 2),
            nn.GELU(),
            Conv2dBN(embed_dim // 2, embed_dim, 3, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted residual (MobileNetV2): 1×1 expansion, 3×3 depthwise, 1×1 projection, added
    to the input: (B, D, H, W) -> (B, D, H, W)."""

    def __init__(self, dim: int, expand_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = Conv2dBN(dim, hidden)
        self.conv2 = Conv2dBN(hidden, hidden, 3, groups=hidden)
        self.conv3 = Conv2dBN(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.gelu(self.conv2(F.gelu(self.conv1(x))))
        return F.gelu(x + self.conv3(y))


class PatchMerging(nn.Module):
    """1×1 convolution to the next stage's width, 3×3 depthwise with ``stride``, 1×1
    convolution: (B, D, H, W) -> (B, D', H/stride, W/stride)."""

    def __init__(self, dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.conv1 = Conv2dBN(dim, out_dim)
        self.conv2 = Conv2dBN(out_dim, out_dim, 3, stride, groups=out_dim)
        self.conv3 = Conv2dBN(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(F.gelu(self.conv2(F.gelu(self.conv1(x)))))


class Attention(nn.Module):
    """Multi-head attention inside w×w windows with a learned bias per head and per
    (|Δrow|, |Δcolumn|) offset (LeViT's attention bias); the input is normalised first."""

    bias_index: torch.Tensor  # (w², w²): the offset of each (query, key) pair

    def __init__(self, dim: int, num_heads: int, window_size: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = dim // num_heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window_size * window_size))
        # MobileSAM numbers the offsets in the order they first occur over (query, key)
        # pairs in row-major order, which for a square window is |Δrow|·w + |Δcolumn|.
        rows, columns = torch.meshgrid(
            torch.arange(window_size), torch.arange(window_size), indexing="ij"
        )
        rows, columns = rows.flatten(), columns.flatten()
        offsets = (rows[:, None] - rows[None, :]).abs() * window_size
        offsets = offsets + (columns[:, None] - columns[None, :]).abs()
        self.register_buffer("bias_index", offsets, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, w, w, D) windows -> (B, w, w, D)."""
        batch, height, width, dim = x.shape
        qkv = self.qkv(self.norm(x)).view(batch, height * width, self.num_heads, 3 * self.key_dim)
        # Per head, MobileSAM lays out [q | k | v] (not q, k, v for all heads in turn).
        q, k, v = qkv.transpose(1, 2).split(self.key_dim, dim=-1)  # each (B, heads, N, d)
        bias = self.attention_biases[:, self.bias_index].to(q.dtype)  # (heads, N, N)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(x.transpose(1, 2).reshape(batch, height, width, dim))


class Mlp(nn.Module):
    """LayerNorm, then two linear layers with GELU: (..., D) -> (..., D)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    """Window attention (zero-padded to whole windows) with a residual, a 3×3 depthwise
    convolution over the grid (no residual), then the MLP with a residual:
    (B, H, W, D) -> (B, H, W, D)."""

    def __init__(self, dim: int, num_heads: int, window_size: int, mlp_ratio: float) -> None:
        super().__init__()
        self.window_size = window_size
        self.attn = Attention(dim, num_heads, window_size)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.local_conv = Conv2dBN(dim, dim, 3, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[1:3]
        windows, padded_hw = window_partition(x, self.window_size)
        attended = self.attn(windows)
        x = x + window_unpartition(attended, self.window_size, padded_hw, (height, width))
        x = self.local_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + self.mlp(x)


class ConvStage(nn.Module):
    """TinyViT's first stage: MBConv blocks, then the merge into the next stage:
    (B, D, H, W) -> (B, D', H/2, W/2)."""

    def __init__(self, dim: int, depth: int, downsample: PatchMerging) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MBConv(dim) for _ in range(depth))
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x)


class AttentionStage(nn.Module):
    """A stage of TinyViT blocks, then (but for the last stage) the merge into the next:
    (B, D, H, W) -> (B, D', H', W')."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        downsample: PatchMerging | None,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TinyViTBlock(dim, num_heads, window_size, mlp_ratio) for _ in range(depth)
        )
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        for block in self.blocks:
            x = block(x)
        x = x.permute(0, 3, 1, 2)
        return x if self.downsample is None else self.downsample(x)
