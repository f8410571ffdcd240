"""The one mapping between original images/prompts and a model's input frame.

Used by the Predictor, training and evaluation alike, so every number means the same
thing everywhere. Two conventions exist in the wild (see ``SamConfig.preprocessing``):

- ``"sam"`` (SAM, MedicoSAM, micro-sam): resize the longest side to S (bilinear,
  antialiased), normalise 0–255 RGB with the pixel mean/std, zero-pad bottom and right.
  Masks come back by upsampling to S², cropping the padding and resizing to the original.
- ``"medsam"`` (MedSAM): resize straight to S×S (bicubic, antialiased; the aspect ratio
  is not kept), scale min–max to [0, 1]. Masks come back by one resize to the original.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import SamConfig


def resized_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) after scaling the longest side to ``long_side``, rounded as SAM does."""
    scale = long_side / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


class ModelInputTransform:
    """Maps images, prompts and masks between an (H, W) original and a model's frame."""

    def __init__(self, config: SamConfig) -> None:
        self.image_size = config.image_size
        self.preprocessing = config.preprocessing
        self.pixel_mean = torch.tensor(config.pixel_mean).view(-1, 1, 1)
        self.pixel_std = torch.tensor(config.pixel_std).view(-1, 1, 1)

    def resized_shape(self, original_size: tuple[int, int]) -> tuple[int, int]:
        """Size of the image content inside the model frame (before padding)."""
        if self.preprocessing == "medsam":
            return self.image_size, self.image_size
        return resized_shape(*original_size, self.image_size)

    def image(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float images in [0, 255] -> (B, 3, S, S) model input."""
        height, width = images.shape[-2:]
        new_h, new_w = self.resized_shape((height, width))
        images = images.float()
        if self.preprocessing == "medsam":
            images = F.interpolate(
                images, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=True
            )
            low = images.amin(dim=(1, 2, 3), keepdim=True)
            high = images.amax(dim=(1, 2, 3), keepdim=True)
            return (images - low) / (high - low).clamp_min(1e-8)
        if (new_h, new_w) != (height, width):
            images = F.interpolate(
                images, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True
            )
        images = (images - self.pixel_mean.to(images)) / self.pixel_std.to(images)
        return F.pad(images, (0, self.image_size - new_w, 0, self.image_size - new_h))

    def coords(self, coords: torch.Tensor, original_size: tuple[int, int]) -> torch.Tensor:
        """(..., 2) pixel coordinates (x, y) in the original -> model frame."""
        height, width = original_size
        new_h, new_w = self.resized_shape(original_size)
        scale = coords.new_tensor([new_w / width, new_h / height])
        return coords * scale

    def boxes(self, boxes: torch.Tensor, original_size: tuple[int, int]) -> torch.Tensor:
        """(..., 4) boxes x0, y0, x1, y1 in the original -> model frame."""
        return self.coords(boxes.reshape(*boxes.shape[:-1], 2, 2), original_size).reshape(
            boxes.shape
        )

    def masks(self, low_res: torch.Tensor, original_size: tuple[int, int]) -> torch.Tensor:
        """(B, M, h, w) low-resolution logits -> (B, M, H, W) logits at the original size."""
        if self.preprocessing == "medsam":
            return F.interpolate(low_res, size=original_size, mode="bilinear", align_corners=False)
        new_h, new_w = self.resized_shape(original_size)
        masks = F.interpolate(
            low_res, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
        )
        masks = masks[..., :new_h, :new_w]
        return F.interpolate(masks, size=original_size, mode="bilinear", align_corners=False)
