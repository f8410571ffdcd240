"""Resizing the position tables of SAM's image encoder to another input size.

A ViT trained at one input size carries two kinds of tables whose shapes depend on it:

- the absolute position embedding ``image_encoder.pos_embed`` of shape (1, G, G, C), one
  vector per token of the G×G grid (G = image size / patch size);
- the decomposed relative-position tables ``attn.rel_pos_h``/``rel_pos_w`` of shape
  (2G − 1, head_dim) in the GLOBAL-attention blocks. Window blocks see a fixed
  window × window grid at any input size, so their tables never change.

Loading weights at another size (SAM-Med2D and SAM-UNet run SAM-B at 256², 16×16 tokens)
resamples both: the embedding bicubically over the token grid, as ``F.interpolate`` on a
(1, C, G, G) tensor does; the relative tables linearly along their length, exactly as the
official ``segment_anything`` ``get_rel_pos`` does when a table does not fit its grid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from ..config import SamConfig

POS_EMBED_KEY = "image_encoder.pos_embed"
_REL_POS_KEY = re.compile(r"^image_encoder\.blocks\.(\d+)\.attn\.rel_pos_[hw]$")


def resize_pos_embed(
    pos_embed: torch.Tensor, size: int | tuple[int, int], mode: str = "bicubic"
) -> torch.Tensor:
    """Resample an absolute position embedding to another token grid.

    Args:
        pos_embed: (1, H, W, C) embedding.
        size: target grid (h, w), or one side of a square grid.
        mode: ``F.interpolate`` mode; ``"bicubic"`` by default, ``"bilinear"`` reproduces
            checkpoints that were converted that way (e.g. SAM-Med2D's own loader).

    Returns:
        (1, h, w, C) embedding in the input's dtype; the input itself when the size is
        unchanged.
    """
    height, width = (size, size) if isinstance(size, int) else size
    if pos_embed.ndim != 4 or pos_embed.shape[0] != 1:
        raise ValueError(f"pos_embed must have shape (1, H, W, C), got {tuple(pos_embed.shape)}")
    if tuple(pos_embed.shape[1:3]) == (height, width):
        return pos_embed
    grid = _working_precision(pos_embed).permute(0, 3, 1, 2)
    resized = F.interpolate(grid, size=(height, width), mode=mode, align_corners=False)
    return resized.permute(0, 2, 3, 1).to(pos_embed.dtype).contiguous()


def resize_rel_pos(table: torch.Tensor, length: int) -> torch.Tensor:
    """Resample a relative-position table along its length, as the official code does.

    Args:
        table: (L, C) table, row ``i`` holding relative offset ``i − (L − 1) / 2``.
        length: target number of rows (2·G − 1 for a G-token axis).

    Returns:
        (length, C) table in the input's dtype; the input itself when the length is
        unchanged.
    """
    if table.ndim != 2:
        raise ValueError(f"a relative-position table must be 2-D, got {tuple(table.shape)}")
    if table.shape[0] == length:
        return table
    # Same call as segment_anything.modeling.image_encoder.get_rel_pos: linear, corners not
    # aligned, over a (1, C, L) signal.
    signal = _working_precision(table).reshape(1, table.shape[0], -1).permute(0, 2, 1)
    resized = F.interpolate(signal, size=length, mode="linear")
    return resized.reshape(-1, length).permute(1, 0).to(table.dtype).contiguous()


def _working_precision(tensor: torch.Tensor) -> torch.Tensor:
    # Half precisions go through fp32: interpolation is not implemented for them everywhere.
    return tensor if tensor.dtype in (torch.float32, torch.float64) else tensor.float()


def checkpoint_grid(state_dict: Mapping[str, torch.Tensor]) -> int | None:
    """Side of the token grid a checkpoint was trained with, from its ``pos_embed``."""
    pos_embed = state_dict.get(POS_EMBED_KEY)
    if pos_embed is None or pos_embed.ndim != 4:
        return None
    return int(pos_embed.shape[1])


def adapt_position_tables(
    state_dict: Mapping[str, torch.Tensor], config: SamConfig
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Resize ``pos_embed`` and the global blocks' relative tables to ``config``'s grid.

    Only tensors that are unambiguously position tables at the checkpoint's own grid are
    touched: ``pos_embed`` with the config's channel count, and relative tables of blocks
    that are global in ``config`` whose length is 2·G_checkpoint − 1. Anything else that
    does not fit (another width, a window table where the config expects a global one) is
    left alone, so the caller reports it as a shape mismatch instead of silently
    resampling the wrong tensor.

    Args:
        state_dict: SAM state dict with official key names.
        config: the architecture the weights are loaded into.

    Returns:
        A new dict (unchanged tensors shared, not copied) and the names of resized tensors.
    """
    adapted = dict(state_dict)
    source_grid = checkpoint_grid(state_dict)
    target_grid = config.embedding_size
    if source_grid is None or source_grid == target_grid:
        return adapted, []

    resized: list[str] = []
    pos_embed = adapted[POS_EMBED_KEY]
    if pos_embed.shape[-1] == config.encoder_embed_dim and pos_embed.shape[1] == pos_embed.shape[2]:
        adapted[POS_EMBED_KEY] = resize_pos_embed(pos_embed, target_grid)
        resized.append(POS_EMBED_KEY)

    global_blocks = set(config.encoder_global_attn_indexes)
    for key, table in state_dict.items():
        match = _REL_POS_KEY.match(key)
        if match is None or int(match.group(1)) not in global_blocks:
            continue
        if table.ndim == 2 and table.shape[0] == 2 * source_grid - 1:
            adapted[key] = resize_rel_pos(table, 2 * target_grid - 1)
            resized.append(key)
    return adapted, resized


__all__ = [
    "POS_EMBED_KEY",
    "adapt_position_tables",
    "checkpoint_grid",
    "resize_pos_embed",
    "resize_rel_pos",
]
