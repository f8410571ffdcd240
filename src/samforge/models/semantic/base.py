"""The semantic-model interface and the map from a patch to SAM's input frame.

Every semantic model takes float32 ``(B, in_channels, *patch_size)`` intensities in [0, 1]
(the intensity rule of :mod:`samforge.data.intensity`, divided by 255) and returns logits
``(B, len(class_names), *patch_size)``. Whatever a network needs beyond that happens in its
``forward``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...preprocessing import resized_shape
from .info import SemanticInfo


class SemanticModel(nn.Module):
    """A network that labels every pixel or voxel of its input with one of its classes.

    Attributes:
        info: what it labels and the input it takes (:class:`SemanticInfo`).
        architecture: the name its checkpoint stores (``sam_unetr2d``, ``monai:unet``...).
    """

    architecture: str
    info: SemanticInfo
    provenance: dict[str, Any]

    def network_settings(self) -> dict[str, Any]:
        """What, besides ``info`` and the weights, rebuilds this network (JSON-like)."""
        return {}


class SamFrame(nn.Module):
    """[0, 1] intensities (N, 1 or 3, H, W) -> SAM's normalised (N, 3, S, S) input, and the
    frame's logits back to (H, W), following the model's preprocessing convention: "sam"
    resizes the longest side to S and pads (aspect kept), "medsam" and "sammed2d" stretch
    to S×S; "medsam" feeds [0, 1] without mean/std."""

    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def __init__(self, image_size: int, preprocessing: str, pixel_mean, pixel_std) -> None:
        super().__init__()
        self.image_size, self.preprocessing = image_size, preprocessing
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(1, -1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(1, -1, 1, 1), False)

    def content_size(self, size: tuple[int, int]) -> tuple[int, int]:
        if self.preprocessing == "sam":
            return resized_shape(*size, self.image_size)
        return self.image_size, self.image_size

    def to_frame(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [0, 1] -> (N, 3, S, S)."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        size = self.content_size((x.shape[-2], x.shape[-1]))
        if size != tuple(x.shape[-2:]):
            shrinking = size[0] < x.shape[-2]
            x = F.interpolate(x, size, mode="bilinear", align_corners=False, antialias=shrinking)
        if self.preprocessing == "medsam":
            return x
        x = (x * 255.0 - self.pixel_mean) / self.pixel_std
        return F.pad(x, (0, self.image_size - size[1], 0, self.image_size - size[0]))

    def from_frame(self, logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(N, C, S, S) frame logits -> (N, C, H, W): the content cropped, resized back."""
        content = self.content_size(size)
        logits = logits[..., : content[0], : content[1]]
        if content == size:
            return logits
        return F.interpolate(logits, size, mode="bilinear", align_corners=False)
