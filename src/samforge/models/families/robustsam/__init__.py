"""RobustSAM (Chen et al., CVPR 2024): SAM's encoders with a mask decoder trained for
degraded images.

- :mod:`.model`: :class:`~.model.RobustSam`, whose embeddings add the first global block's
  tokens;
- :mod:`.decoder`: SAM's decoder plus robust output tokens, read on a robust or a clean path;
- :mod:`.blocks`: the anti-degradation modules the decoder adds.

Its checkpoints are bare state dicts under SAM's names plus the decoder's extra modules;
the ``robust_segment_anything`` package loads them strictly.
"""

from __future__ import annotations

from ..record import ModelFamily
from .model import RobustSam

# The modules RobustMaskDecoder adds to SAM's decoder (mask_decoder.<module>.*).
DECODER_MODULES = (
    "custom_robust_token",
    "robust_mlp",
    "custom_token_block",
    "fourier_mask_features",
    "fourier_first_layer_features",
    "fourier_last_layer_features",
)


def is_robust_key(key: str) -> bool:
    root, _, rest = key.partition(".")
    return root == "mask_decoder" and rest.split(".", 1)[0] in DECODER_MODULES


__all__ = ["DECODER_MODULES", "ROBUSTSAM", "is_robust_key"]

ROBUSTSAM = ModelFamily(
    name="RobustSAM",
    family="robust",
    model_class=RobustSam,
    owns_key=is_robust_key,
)
