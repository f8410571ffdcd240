"""Semantic models whose labels are known in closed form, for tests of the plumbing
around them (sliding windows, the segment command)."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from samforge.models.semantic import SemanticInfo, SemanticModel

CENTRES = (0.2, 0.5, 0.8)


class PointwiseNet(SemanticModel):
    """One 1×1(×1) convolution: each voxel's logits depend on that voxel alone, so the
    network is exactly translation-equivariant and blind to the padding of a window. A
    sliding window that puts every patch's logits back in the right place therefore gives
    one pass's labels, whatever the window layout; a misplaced or mis-weighted patch does
    not. The logits 2·c·x − c² pick the nearest of the centres c = 0.2, 0.5, 0.8, so the
    three classes split the intensity range and labels vary across the volume."""

    architecture = "test:pointwise"

    def __init__(self, info: SemanticInfo) -> None:
        super().__init__()
        self.info = info
        conv = nn.Conv3d if info.spatial_dims == 3 else nn.Conv2d
        self.net = conv(1, 3, 1)
        centres = torch.tensor(CENTRES)
        with torch.no_grad():
            self.net.weight.copy_((2 * centres).view(3, 1, *[1] * info.spatial_dims))
            self.net.bias.copy_(-(centres**2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert tuple(x.shape[2:]) == self.info.patch_size  # MONAI feeds whole patches
        return self.net(x)


def expected_labels(values_0_255: np.ndarray) -> np.ndarray:
    """PointwiseNet's labels of intensities already in [0, 255] (intensity mode "none"):
    the nearest centre, i.e. the boundaries halfway between them."""
    boundaries = [(a + b) / 2 * 255 for a, b in itertools.pairwise(CENTRES)]
    return np.digitize(values_0_255, boundaries).astype(np.uint8)
