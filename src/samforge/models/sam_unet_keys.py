"""SAM-UNet's checkpoint layout: SAM wrapped under three prefixes, and its ResNet branch.

SAM-UNet's public code wraps SAM's modules (``image_encoder.sam_img_encoder.*``,
``prompt_encoder.sam_prompt_encoder.*``, ``mask_decoder.sam_mask_decoder.*``) beside its
own (``resnet.stage{0-4}.*``, ``adapters_in.*``, ``adapters_bridge.*``,
``embedding_encoder.*``, ``mask_decoder.{med_token,hf_mlp,embedding_maskfeature}.*``).
Renaming the wrapped keys to SAM's names lets shape inference and position-table
interpolation treat the SAM part like any SAM checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import CheckpointError

# SAM-UNet's wrapped prefix -> SAM's prefix.
WRAPPED_PREFIXES = {
    "image_encoder.sam_img_encoder.": "image_encoder.",
    "prompt_encoder.sam_prompt_encoder.": "prompt_encoder.",
    "mask_decoder.sam_mask_decoder.": "mask_decoder.",
}
_STAGE_BLOCK = re.compile(r"^resnet\.stage([1-9])\.(\d+)\.")


def to_sam_names(state: Mapping[str, Any]) -> dict[str, Any]:
    """The wrapped SAM part of a SAM-UNet state dict under SAM's names (the rest dropped)."""
    renamed = {}
    for key, value in state.items():
        for wrapped, plain in WRAPPED_PREFIXES.items():
            if key.startswith(wrapped):
                renamed[plain + key[len(wrapped) :]] = value
    return renamed


def from_sam_names(state: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`to_sam_names` for SAM keys."""
    renamed = {}
    for key, value in state.items():
        for wrapped, plain in WRAPPED_PREFIXES.items():
            if key.startswith(plain):
                renamed[wrapped + key[len(plain) :]] = value
    return renamed


def resnet_layout(state: Mapping[str, Any]) -> dict[str, Any]:
    """``resnet_block``, ``resnet_layers`` and ``resnet_width`` read from ``resnet.*`` shapes.

    Raises:
        CheckpointError: no ResNet stem or stages in the state dict.
    """
    stem = state.get("resnet.stage0.0.weight")
    counts: dict[int, int] = {}
    for key in state:
        if match := _STAGE_BLOCK.match(key):
            stage, block = int(match.group(1)), int(match.group(2))
            counts[stage] = max(counts.get(stage, 0), block + 1)
    if stem is None or not counts:
        raise CheckpointError(
            "the SAM-UNet checkpoint has no ResNet branch (resnet.stage0.0.weight and "
            "resnet.stage{1-4}.*); it is incomplete."
        )
    bottleneck = "resnet.stage1.0.conv3.weight" in state
    return {
        "resnet_block": "bottleneck" if bottleneck else "basic",
        "resnet_layers": tuple(counts[stage] for stage in sorted(counts)),
        "resnet_width": int(stem.shape[0]),
    }
