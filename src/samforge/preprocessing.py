"""The one mapping between original images, prompts and masks and a model's input frame.

Used by the Predictor, the training Dataset and evaluation alike, so every number means
the same thing everywhere. It sits below ``models/`` and ``data/`` (it knows tensors, not
files or architectures). Three conventions exist in the wild (``SamConfig.preprocessing``):

- ``"sam"`` (SAM, MedicoSAM, micro-sam): resize the longest side to S (bilinear,
  antialiased when shrinking), normalise 0–255 RGB with the pixel mean/std, zero-pad bottom
  and right (after normalisation, as the official code does). Masks come back by
  upsampling to S², cropping the padding and resizing to the original.
- ``"medsam"`` (MedSAM): resize straight to S×S (bicubic, antialiased when shrinking; the
  aspect ratio is not kept), scale min–max to [0, 1]. Masks come back by one resize.
- ``"sammed2d"`` (SAM-Med2D): resize straight to S×S with nearest neighbour (its predictor's
  ``cv2.INTER_NEAREST``, which PyTorch's ``"nearest"`` reproduces), normalise with the
  pixel mean/std, no padding. Masks come back by upsampling to S² and then resizing to the
  original, as SAM-Med2D's ``postprocess_masks`` does.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)
PREPROCESSING_CONVENTIONS = ("sam", "medsam", "sammed2d")
# Conventions that stretch the image to S×S (aspect ratio not kept, no padding).
_STRETCHING = ("medsam", "sammed2d")


def resized_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) after scaling the longest side to ``long_side``, rounded as SAM does."""
    scale = long_side / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


class ModelInputTransform:
    """Maps images, prompts and masks between an (H, W) original and the S×S model frame."""

    def __init__(
        self,
        image_size: int,
        preprocessing: str = "sam",
        pixel_mean: Sequence[float] = SAM_PIXEL_MEAN,
        pixel_std: Sequence[float] = SAM_PIXEL_STD,
    ) -> None:
        if preprocessing not in PREPROCESSING_CONVENTIONS:
            raise ValueError(
                f"preprocessing must be one of {PREPROCESSING_CONVENTIONS}, not {preprocessing!r}."
            )
        self.image_size = image_size
        self.preprocessing = preprocessing
        self.pixel_mean = torch.tensor(pixel_mean, dtype=torch.float32).view(-1, 1, 1)
        self.pixel_std = torch.tensor(pixel_std, dtype=torch.float32).view(-1, 1, 1)

    def resized_shape(self, original_size: tuple[int, int]) -> tuple[int, int]:
        """Size of the image content inside the model frame (before padding)."""
        if self.preprocessing in _STRETCHING:
            return self.image_size, self.image_size
        return resized_shape(*original_size, self.image_size)

    def image(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1 or 3, H, W) images in [0, 255] -> (B, 3, S, S) model input."""
        size = self.resized_shape((images.shape[-2], images.shape[-1]))
        images = self._resize(images.float().expand(-1, 3, -1, -1), size)
        if self.preprocessing == "medsam":
            low = images.amin(dim=(1, 2, 3), keepdim=True)
            high = images.amax(dim=(1, 2, 3), keepdim=True)
            return (images - low) / (high - low).clamp_min(1e-8)
        images = (images - self.pixel_mean.to(images)) / self.pixel_std.to(images)
        return F.pad(images, (0, self.image_size - size[1], 0, self.image_size - size[0]))

    def _resize(self, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        height, width = images.shape[-2:]
        if size == (height, width):
            return images
        if self.preprocessing == "sammed2d":
            return F.interpolate(images, size=size, mode="nearest")
        # Antialiasing only matters when shrinking; enlarging it changes < 1e-3 grey levels.
        shrinking = size[0] < height or size[1] < width
        mode = "bicubic" if self.preprocessing == "medsam" else "bilinear"
        return F.interpolate(images, size=size, mode=mode, align_corners=False, antialias=shrinking)

    def label_masks(self, masks: torch.Tensor) -> torch.Tensor:
        """(B, N, H, W) binary masks -> (B, N, S, S) in the model frame (nearest, padded)."""
        size = self.resized_shape((masks.shape[-2], masks.shape[-1]))
        if size != tuple(masks.shape[-2:]):
            # nearest-exact samples pixel centres: the alignment of bilinear/align_corners=False
            masks = F.interpolate(masks.float(), size=size, mode="nearest-exact").to(masks.dtype)
        return F.pad(masks, (0, self.image_size - size[1], 0, self.image_size - size[0]))

    def coords(self, coords: torch.Tensor, original_size: tuple[int, int]) -> torch.Tensor:
        """(..., 2) pixel coordinates (x, y) in the original -> model frame."""
        height, width = original_size
        new_h, new_w = self.resized_shape(original_size)
        return coords * coords.new_tensor([new_w / width, new_h / height])

    def boxes(self, boxes: torch.Tensor, original_size: tuple[int, int]) -> torch.Tensor:
        """(..., 4) boxes x0, y0, x1, y1 in the original -> model frame."""
        corners = boxes.reshape(*boxes.shape[:-1], 2, 2)
        return self.coords(corners, original_size).reshape(boxes.shape)

    def masks(self, low_res: torch.Tensor, original_size: tuple[int, int]) -> torch.Tensor:
        """(B, M, h, w) low-resolution logits -> (B, M, H, W) logits at the original size.

        The same values as the resizes of the convention's reference code (see the module
        docstring), within float rounding (~1e-6): both bilinear resizes are linear and act
        on rows and columns separately, so their composite, crop included, is
        ``rows @ low_res @ columns.T`` with one small matrix per axis. Two matmuls cost less
        than upsampling to S² and then discarding the padding, as long as the original is
        not much larger than the model frame; beyond that the resizes are cheaper.
        """
        height, width = original_size
        low_h, low_w = low_res.shape[-2:]
        new_h, new_w = self.resized_shape(original_size)
        if not _matrices_are_cheaper(low_h, low_w, height, width, self.image_size):
            return self._resize_masks(low_res, original_size)
        frame = None if self.preprocessing == "medsam" else self.image_size
        rows = resize_matrix(low_h, frame, new_h, height).to(low_res)
        columns = resize_matrix(low_w, frame, new_w, width).to(low_res)
        if width <= height:  # the cheaper order: the first product runs on the smaller side
            return rows @ (low_res @ columns.T)
        return (rows @ low_res) @ columns.T

    def _resize_masks(self, low_res: torch.Tensor, original_size: tuple[int, int]) -> torch.Tensor:
        """The reference resizes of :meth:`masks`, one ``F.interpolate`` per step."""
        if self.preprocessing == "medsam":
            return F.interpolate(low_res, size=original_size, mode="bilinear", align_corners=False)
        if self.preprocessing == "sammed2d":
            full = (self.image_size, self.image_size)
            masks = F.interpolate(low_res, size=full, mode="bilinear", align_corners=False)
            return F.interpolate(masks, size=original_size, mode="bilinear", align_corners=False)
        new_h, new_w = self.resized_shape(original_size)
        masks = F.interpolate(
            low_res, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
        )
        masks = masks[..., :new_h, :new_w]
        return F.interpolate(masks, size=original_size, mode="bilinear", align_corners=False)


def _matrices_are_cheaper(low_h: int, low_w: int, height: int, width: int, frame: int) -> bool:
    # Measured on CPU (one thread): a multiply-add of the matmuls costs about 1/150 of an
    # output element of the resizes, which touch S² and H·W elements.
    multiply_adds = low_h * low_w * min(height, width) + max(low_h, low_w) * height * width
    return multiply_adds < 150 * (frame * frame + height * width)


@functools.lru_cache(maxsize=32)
def resize_matrix(low: int, frame: int | None, content: int, original: int) -> torch.Tensor:
    """(original, low) matrix of one axis of :meth:`ModelInputTransform.masks`: bilinear
    ``low`` -> ``frame`` (skipped when None), keep the first ``content`` samples, bilinear
    -> ``original``.

    Built by resizing an identity with ``F.interpolate`` itself, so the weights (source
    positions, border clamping) are torch's own, not a re-derivation of them.
    """
    matrix = _linear_resize_matrix(low, original if frame is None else frame)
    if frame is not None:
        matrix = _linear_resize_matrix(content, original) @ matrix[:content]
    return matrix.float()


def _linear_resize_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """(size_out, size_in) float64: bilinear (align_corners=False) resize along one axis."""
    if size_in == size_out:
        return torch.eye(size_in, dtype=torch.float64)
    # float32 impulses: torch derives the source positions in the input's precision, and
    # the weights must be those it uses for float32 logits.
    impulses = torch.eye(size_in).unsqueeze(1)  # (size_in, 1, size_in)
    responses = F.interpolate(impulses, size=size_out, mode="linear", align_corners=False)
    return responses[:, 0, :].T.double()
