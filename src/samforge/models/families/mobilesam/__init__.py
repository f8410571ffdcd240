"""MobileSAM (Zhang et al. 2023): SAM's prompt encoder and mask decoder behind TinyViT, an
image encoder distilled from SAM's ViT-H; micro-sam's ``vit_t`` models share it.

- :mod:`.encoder`: :class:`~.encoder.TinyViT`, the image encoder;
- :mod:`.blocks`: its convolutional and window-attention blocks;
- :mod:`.model`: :class:`~.model.MobileSam`.

Its checkpoints are bare state dicts under SAM's three module names; the TinyViT keys
(``image_encoder.layers.*``, ``image_encoder.patch_embed.seq.*``) mark the family, and the
stage layout is read from their shapes. The ``mobile_sam`` package loads them strictly.
"""

from __future__ import annotations

import re
from typing import Any

from ...config import SamConfig
from ..record import ModelFamily, StateDict
from .model import MobileSam

_MOBILESAM = SamConfig(family="mobilesam")
_TINY_VIT_KEY = re.compile(r"^image_encoder\.(layers|patch_embed\.seq|norm_head|head)\.")
_STAGE_WIDTH = "image_encoder.layers.{}.blocks.0.{}"
_BLOCK_KEY = re.compile(r"^image_encoder\.layers\.(\d+)\.blocks\.(\d+)\.")


def is_tiny_vit_key(key: str) -> bool:
    return _TINY_VIT_KEY.match(key) is not None


def tiny_vit_layout(state: StateDict) -> dict[str, Any]:
    """The ``tiny_vit_*`` fields of a state dict: per stage the width (from the first
    block's first weight), the number of blocks, the heads and the window (the attention
    bias table is (heads, window²))."""
    depths: dict[int, int] = {}
    for key in state:
        if match := _BLOCK_KEY.match(key):
            stage, block = int(match.group(1)), int(match.group(2))
            depths[stage] = max(depths.get(stage, 0), block + 1)
    if not depths or sorted(depths) != list(range(len(depths))):
        return {}  # not a whole TinyViT: the shape check reports what is missing
    dims, heads, windows = [], [], []
    for stage in range(len(depths)):
        first_conv = state.get(_STAGE_WIDTH.format(stage, "conv1.c.weight"))
        biases = state.get(_STAGE_WIDTH.format(stage, "attn.attention_biases"))
        norm = state.get(_STAGE_WIDTH.format(stage, "attn.norm.weight"))
        if first_conv is not None:
            # The convolutional first stage: its heads and window are unused placeholders,
            # given MobileSAM's values so a MobileSAM checkpoint gives the vit_t config.
            dims.append(int(first_conv.shape[1]))
            heads.append(_MOBILESAM.tiny_vit_num_heads[0])
            windows.append(_MOBILESAM.tiny_vit_window_sizes[0])
        elif biases is not None and norm is not None:
            dims.append(int(norm.shape[0]))
            heads.append(int(biases.shape[0]))
            windows.append(round(int(biases.shape[1]) ** 0.5))
        else:
            return {}
    return {
        "tiny_vit_embed_dims": tuple(dims),
        "tiny_vit_depths": tuple(depths[stage] for stage in range(len(depths))),
        "tiny_vit_num_heads": tuple(heads),
        "tiny_vit_window_sizes": tuple(windows),
    }


MOBILESAM = ModelFamily(
    name="MobileSAM",
    family="mobilesam",
    model_class=MobileSam,
    owns_key=is_tiny_vit_key,
    config_fields=tiny_vit_layout,
    sam_layout=False,
    own_encoder=True,
)

__all__ = ["MOBILESAM", "is_tiny_vit_key", "tiny_vit_layout"]
