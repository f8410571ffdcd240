"""SAM's image encoder: a plain ViT with windowed attention, a few global-attention blocks
and decomposed relative positions, followed by a convolutional neck to 256 channels.

Parameter names follow the official ``segment_anything`` code so its checkpoints load
strictly. Attention runs through ``scaled_dot_product_attention`` with the relative-position
terms passed as an additive mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .adapters import Adapter
from .common import LayerNorm2d, MLPBlock
from .config import SamConfig


class ImageEncoderViT(nn.Module):
    """(B, 3, S, S) normalised image -> (B, out_chans, S/16, S/16) embedding."""

    def __init__(
        self,
        img_size: int = 1024,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        out_chans: int = 256,
        window_size: int = 14,
        global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11),
        adapter: bool = False,
        adapter_mlp_ratio: float = 0.25,
    ) -> None:
        super().__init__()
        self.img_size = img_size
        self.global_attn_indexes = tuple(global_attn_indexes)
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, embed_dim))
        self.blocks = nn.ModuleList(
            Block(
                dim=embed_dim,
                num_heads=num_heads,
                mlp_ratio=mlp_ratio,
                window_size=0 if index in global_attn_indexes else window_size,
                input_size=(grid, grid),
                adapter=adapter,
                adapter_mlp_ratio=adapter_mlp_ratio,
            )
            for index in range(depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dim, out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    @classmethod
    def from_config(cls, config: SamConfig) -> ImageEncoderViT:
        return cls(
            img_size=config.image_size,
            patch_size=config.patch_size,
            embed_dim=config.encoder_embed_dim,
            depth=config.encoder_depth,
            num_heads=config.encoder_num_heads,
            mlp_ratio=config.mlp_ratio,
            out_chans=config.prompt_embed_dim,
            window_size=config.window_size,
            global_attn_indexes=tuple(config.encoder_global_attn_indexes),
            adapter=config.encoder_adapter,
            adapter_mlp_ratio=config.adapter_mlp_ratio,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_intermediates(x, ())[0]

    def forward_with_intermediates(
        self, x: torch.Tensor, indexes: tuple[int, ...]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The embedding and the token grids after the given blocks.

        Args:
            x: (B, 3, S, S) normalised image.
            indexes: blocks whose outputs to return, in increasing order.

        Returns:
            (B, out_chans, S/16, S/16) embedding and, per index, (B, S/16, S/16, D) tokens.
        """
        x = self.patch_embed(x) + self.pos_embed
        intermediates = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in indexes:
                intermediates.append(x)
        return self.neck(x.permute(0, 3, 1, 2)), intermediates


class PatchEmbed(nn.Module):
    """(B, C, H, W) -> (B, H/p, W/p, D) by a strided convolution."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class Block(nn.Module):
    """Pre-norm transformer block on a (B, H, W, D) token grid; window attention when
    ``window_size > 0``, global attention otherwise; optionally SAM-Med2D's adapter beside
    the MLP."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        window_size: int,
        input_size: tuple[int, int],
        adapter: bool = False,
        adapter_mlp_ratio: float = 0.25,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(
            dim,
            num_heads=num_heads,
            input_size=input_size if window_size == 0 else (window_size, window_size),
        )
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(embedding_dim=dim, mlp_dim=int(dim * mlp_ratio), act=nn.GELU)
        self.window_size = window_size
        # SAM-Med2D's adapter beside the MLP, under its checkpoints' capitalised name.
        self.Adapter = Adapter(dim, adapter_mlp_ratio) if adapter else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            height, width = x.shape[1], x.shape[2]
            x, padded_hw = window_partition(x, self.window_size)
            x = self.attn(x)
            x = window_unpartition(x, self.window_size, padded_hw, (height, width))
        else:
            x = self.attn(x)
        x = shortcut + x
        normed = self.norm2(x)
        if self.Adapter is not None:
            return x + self.mlp(normed) + self.Adapter(normed)
        return x + self.mlp(normed)


class Attention(nn.Module):
    """Multi-head self-attention over a (B, H, W, D) grid with decomposed relative
    positions (MViTv2): the bias of query (h, w) on key (h', w') is
    ``q · R_h[h - h'] + q · R_w[w - w']``."""

    def __init__(self, dim: int, num_heads: int, input_size: tuple[int, int]) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, _ = x.shape
        qkv = self.qkv(x).reshape(batch, height * width, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, head_dim)
        bias = relative_position_bias(q, self.rel_pos_h, self.rel_pos_w, (height, width))
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        x = x.permute(0, 2, 1, 3).reshape(batch, height, width, -1)
        return self.proj(x)


def relative_positions(size: int, table: torch.Tensor) -> torch.Tensor:
    """Rows of a (2·size − 1, C) table for every (query, key) pair: (size, size, C)."""
    if table.shape[0] != 2 * size - 1:
        raise ValueError(
            f"relative-position table has {table.shape[0]} rows, expected {2 * size - 1} for "
            f"a {size}-token axis; load weights through samforge.load_model, which "
            "interpolates tables trained at another input size."
        )
    coords = torch.arange(size, device=table.device)
    return table[coords[:, None] - coords[None, :] + (size - 1)]


def relative_position_bias(
    q: torch.Tensor,
    rel_pos_h: torch.Tensor,
    rel_pos_w: torch.Tensor,
    size: tuple[int, int],
) -> torch.Tensor:
    """Additive attention bias from decomposed relative positions.

    Args:
        q: (B, heads, H·W, C) unscaled queries.
        rel_pos_h, rel_pos_w: (2H − 1, C), (2W − 1, C) tables.
        size: (H, W) of the token grid (queries and keys share it).

    Returns:
        (B, heads, H·W, H·W) bias.
    """
    height, width = size
    table_h = relative_positions(height, rel_pos_h).to(q.dtype)
    table_w = relative_positions(width, rel_pos_w).to(q.dtype)
    grid_q = q.reshape(*q.shape[:2], height, width, q.shape[-1])
    bias_h = torch.einsum("bnhwc,hkc->bnhwk", grid_q, table_h)
    bias_w = torch.einsum("bnhwc,wkc->bnhwk", grid_q, table_w)
    bias = bias_h[..., :, None] + bias_w[..., None, :]  # (B, heads, H, W, H, W)
    return bias.reshape(*q.shape[:2], height * width, height * width)


def window_partition(x: torch.Tensor, window_size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(B, H, W, C) -> (B·nWindows, w, w, C), zero-padding H and W up to multiples of w."""
    batch, height, width, channels = x.shape
    pad_h = (window_size - height % window_size) % window_size
    pad_w = (window_size - width % window_size) % window_size
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    padded_h, padded_w = height + pad_h, width + pad_w
    x = x.view(
        batch, padded_h // window_size, window_size, padded_w // window_size, window_size, channels
    )
    windows = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size, window_size, channels)
    return windows, (padded_h, padded_w)


def window_unpartition(
    windows: torch.Tensor,
    window_size: int,
    padded_hw: tuple[int, int],
    hw: tuple[int, int],
) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B·nWindows, w, w, C) -> (B, H, W, C)."""
    padded_h, padded_w = padded_hw
    height, width = hw
    batch = windows.shape[0] // (padded_h * padded_w // window_size // window_size)
    x = windows.view(
        batch, padded_h // window_size, padded_w // window_size, window_size, window_size, -1
    )
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, padded_h, padded_w, -1)
    return x[:, :height, :width, :].contiguous()
