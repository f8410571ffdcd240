"""Non-overlapping windows of a (B, H, W, C) token grid, for windowed attention (SAM's
ViT, MobileSAM's TinyViT)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
