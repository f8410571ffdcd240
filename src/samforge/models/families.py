"""Checkpoints of architectures samforge does not build yet, recognised by their keys.

Their extra tensors are never dropped silently: loading them as plain SAM would change
what the model computes.
"""

from __future__ import annotations

import re

from .checkpoint_io import RawCheckpoint

# (family, what the tensors are, a test on a key) — a key matching makes a checkpoint
# belong to a family whose extra modules would be lost by loading it into plain SAM.
_FAMILIES: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    (
        "SAM-Med2D",
        "encoder adapters (image_encoder.blocks.*.Adapter.*)",
        re.compile(r"^image_encoder\.blocks\.\d+\.Adapter\."),
    ),
    (
        "RobustSAM",
        "robust output token, token block, robust MLP and Fourier feature blocks",
        re.compile(
            r"^mask_decoder\.(custom_robust_token|robust_mlp|custom_token_block|fourier_\w+)\."
        ),
    ),
    (
        "SAM-UNet",
        "convolutional branch and fusion layers (resnet, adapters_in/bridge, wrapped SAM)",
        re.compile(
            r"^(resnet|adapters_in|adapters_bridge|embedding_encoder)\.|"
            r"^(image_encoder\.sam_img_encoder|prompt_encoder\.sam_prompt_encoder|"
            r"mask_decoder\.sam_mask_decoder|mask_decoder\.(med_token|hf_mlp|embedding_maskfeature))\."
        ),
    ),
)


def detect_unsupported(raw: RawCheckpoint) -> list[tuple[str, str, list[str]]]:
    """Families of not-yet-supported architectures found in a checkpoint.

    Returns:
        ``(family, description, keys)`` for each family present.
    """
    found = []
    for family, description, pattern in _FAMILIES:
        keys = [key for key in raw.state_dict if pattern.search(key)]
        if keys:
            found.append((family, description, keys))
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
