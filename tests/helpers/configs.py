"""Small configs of every model family, for tests (see ``VIT_TEST``)."""

from __future__ import annotations

from samforge.models.config import VIT_TEST

ROBUST_TEST = VIT_TEST.with_changes(family="robust")
SAMMED2D_TEST = VIT_TEST.with_changes(encoder_adapter=True, preprocessing="sammed2d")
# Four global blocks for four ResNet stages; a tiny ResNet (one basic block per stage, 8
# channels in the stem) keeps every structural feature of SAM-UNet at little cost.
SAMUNET_TEST = VIT_TEST.with_changes(
    family="sam_unet",
    encoder_depth=8,
    encoder_global_attn_indexes=(1, 3, 5, 7),
    resnet_block="basic",
    resnet_layers=(1, 1, 1, 1),
    resnet_width=8,
)
