"""Model families recognised by their checkpoint keys.

Supported families change the architecture that is built (:func:`family_fields`):

- SAM-Med2D: ``image_encoder.blocks.{i}.Adapter.*`` (encoder adapters);
- RobustSAM: ``mask_decoder.custom_robust_token`` and its other decoder modules;
- SAM-UNet: SAM wrapped as ``image_encoder.sam_img_encoder.*`` etc. beside ``resnet.*``,
  ``adapters_in.*``, ``adapters_bridge.*`` and ``embedding_encoder.*``.

What samforge does not build is reported, never dropped silently
(:func:`detect_unsupported`): loading it as plain SAM would change what the model computes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from .checkpoint_io import RawCheckpoint

ADAPTER_KEY = re.compile(r"^image_encoder\.blocks\.\d+\.Adapter\.")
ROBUST_TOKEN_KEY = "mask_decoder.custom_robust_token.weight"
SAM_UNET_KEY = re.compile(r"^(image_encoder\.sam_img_encoder|resnet|adapters_in)\.")
_ADAPTER_GATE = re.compile(r"^image_encoder\.blocks\.\d+\.Adapter\.channel\.0\.weight$")


def is_sam_unet(state: Mapping[str, Any]) -> bool:
    return any(SAM_UNET_KEY.match(key) for key in state)


def is_robust(state: Mapping[str, Any]) -> bool:
    return ROBUST_TOKEN_KEY in state


def has_adapters(state: Mapping[str, Any]) -> bool:
    return any(ADAPTER_KEY.match(key) for key in state)


def family_fields(state: Mapping[str, torch.Tensor], embed_dim: int) -> dict[str, Any]:
    """The SamConfig fields of the family of a state dict under SAM names (SAM-UNet's
    fields come from :mod:`sam_unet`): decoder kind, adapters and their width."""
    fields: dict[str, Any] = {"decoder": "robust" if is_robust(state) else "sam"}
    gates = [tensor for key, tensor in state.items() if _ADAPTER_GATE.match(key)]
    fields["encoder_adapter"] = bool(gates) or has_adapters(state)
    if gates and gates[0].ndim == 2:
        fields["adapter_mlp_ratio"] = gates[0].shape[0] / embed_dim
    return fields


def detect_unsupported(raw: RawCheckpoint) -> list[tuple[str, str, list[str]]]:
    """Modules of architectures samforge does not build, found in a checkpoint.

    Returns:
        ``(family, description, keys)`` for each one present.
    """
    found = []
    decoder_state = raw.extras.get("decoder_state")
    if decoder_state:
        found.append(
            (
                "UNETR semantic decoder (micro-sam / MedicoSAM)",
                "a `decoder_state` beside the SAM weights",
                [f"decoder_state.{key}" for key in decoder_state],
            )
        )
    return found
