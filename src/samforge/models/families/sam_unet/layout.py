"""SAM-UNet's checkpoint layout: SAM wrapped under three prefixes, and its own modules.

SAM-UNet's public code wraps SAM's modules (``image_encoder.sam_img_encoder.*``,
``prompt_encoder.sam_prompt_encoder.*``, ``mask_decoder.sam_mask_decoder.*``) beside its
own (``resnet.stage{0-4}.*``, ``adapters_in.*``, ``adapters_bridge.*``,
``embedding_encoder.*``, ``mask_decoder.{med_token,hf_mlp,embedding_maskfeature}.*``).
samforge's :class:`~.model.SamUNet` keeps SAM's modules under SAM's names, so shape
inference, position-table interpolation, PEFT and fusion checks treat them like any SAM
checkpoint's: :func:`to_samforge_names` renames a checkpoint once when it is read,
:func:`to_public_names` once when SAM-UNet's format is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ....errors import CheckpointError

# SAM-UNet's wrapped prefix -> SAM's prefix.
WRAPPED_PREFIXES = {
    "image_encoder.sam_img_encoder.": "image_encoder.",
    "prompt_encoder.sam_prompt_encoder.": "prompt_encoder.",
    "mask_decoder.sam_mask_decoder.": "mask_decoder.",
}
_PUBLIC_PREFIXES = {plain: wrapped for wrapped, plain in WRAPPED_PREFIXES.items()}
# What SAM-UNet adds to SAM, under the same names in both layouts.
OWN_MODULES = ("resnet", "adapters_in", "adapters_bridge", "embedding_encoder")
OWN_DECODER_MODULES = ("med_token", "hf_mlp", "embedding_maskfeature")
_STAGE_BLOCK = re.compile(r"^resnet\.stage([1-9])\.(\d+)\.")


def is_sam_unet_key(key: str) -> bool:
    """A key of a module SAM-UNet adds to SAM, or of SAM's modules under SAM-UNet's names."""
    root, _, rest = key.partition(".")
    if root == "mask_decoder" and rest.split(".", 1)[0] in OWN_DECODER_MODULES:
        return True
    return root in OWN_MODULES or key.startswith(tuple(WRAPPED_PREFIXES))


def to_samforge_names(state: Mapping[str, Any]) -> dict[str, Any]:
    """A SAM-UNet state dict with SAM's modules under SAM's names (nothing dropped)."""
    return _renamed(state, WRAPPED_PREFIXES)


def to_public_names(state: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`to_samforge_names`: SAM's modules wrapped as SAM-UNet's code names
    them; SAM-UNet's own modules as they are."""
    return _renamed(state, _PUBLIC_PREFIXES, keep=is_sam_unet_key)


def _renamed(
    state: Mapping[str, Any],
    prefixes: Mapping[str, str],
    keep: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """``state`` with each key's prefix replaced by its value in ``prefixes``, but for the
    keys ``keep`` accepts."""
    renamed = {}
    for key, value in state.items():
        old = next((prefix for prefix in prefixes if key.startswith(prefix)), None)
        if old is not None and not (keep is not None and keep(key)):
            key = prefixes[old] + key[len(old) :]
        renamed[key] = value
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
