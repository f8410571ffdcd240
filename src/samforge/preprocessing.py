"""The one mapping between original images, prompts and masks and a model's input frame.

Used by the Predictor, the training Dataset and evaluation alike, so every number means
the same thing everywhere. It sits below ``models/`` and ``data/`` (it knows tensors, not
files or architectures). Three conventions exist in the wild (``SamConfig.preprocessing``),
each reproduced as its reference code runs it, bit for bit on 8-bit input:

- ``"sam"`` (SAM, MedicoSAM, micro-sam): the official ``SamPredictor`` path. The 8-bit RGB
  image is resized with its longest side to S through Pillow (bilinear, antialiased,
  rounded to 8 bits: what ``ResizeLongestSide.apply_image`` does through torchvision's
  PIL backend), normalised with the pixel mean/std and zero-padded bottom and right.
  Masks come back by upsampling to S², cropping the padding and resizing to the original.
- ``"medsam"`` (MedSAM): ``MedSAM_Inference.py``'s path. ``skimage.transform.resize`` to
  S×S (order 3, antialiased, ``preserve_range``; the aspect ratio is not kept), cast to
  8 bits, scaled min–max to [0, 1]. Masks: the sigmoid of the low-resolution logits is
  resized bilinearly to the original and thresholded at 0.5; the logits returned are those
  of the resized probabilities, so ``logits > 0`` is exactly MedSAM's mask.
- ``"sammed2d"`` (SAM-Med2D): its ``SammedPredictor``'s path. Normalised with the pixel
  mean/std, resized straight to S×S with nearest neighbour (``cv2.INTER_NEAREST``, which
  PyTorch's ``"nearest"`` reproduces), no padding. Masks come back by upsampling to S² and
  then resizing to the original, as its ``postprocess_masks`` does.

Images that are not 8-bit enter as 0–255 values from the intensity rule
(:mod:`samforge.data.intensity`); they are rounded to the nearest grey level first and
then take the same path as 8-bit input (micro-sam, too, converts every image to 8 bits
before the official predictor sees it).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)
PREPROCESSING_CONVENTIONS = ("sam", "medsam", "sammed2d")
# Changes whenever the image path changes what a model sees, so that embeddings cached on
# disk by an earlier path are not served (the Predictor puts it in its cache keys).
IMAGE_PATH_VERSION = 2
# MedSAM's resized probabilities, turned back into logits, are clipped to this distance
# from 0 and 1 (logits within about ±16), so that a saturated sigmoid gives no infinities.
PROBABILITY_EPS = 1e-7
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
        """(B, 1 or 3, H, W) images with values in [0, 255] -> (B, 3, S, S) float32 model
        input on the images' device.

        Values are clipped to [0, 255] and rounded to the nearest grey level, then each
        image takes its convention's reference path (module docstring).
        """
        pixels = to_uint8_rgb(images)
        path = {"sam": self._sam_image, "medsam": self._medsam_image}.get(
            self.preprocessing, self._sammed2d_image
        )
        return torch.stack([path(rgb) for rgb in pixels]).to(images.device)

    def _sam_image(self, rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (3, S, S): Pillow resize, mean/std, zero padding."""
        size = self.resized_shape(rgb.shape[:2])
        if size != rgb.shape[:2]:
            resized = Image.fromarray(rgb).resize(size[::-1], Image.Resampling.BILINEAR)
            rgb = np.array(resized)
        image = (_channels_first(rgb) - self.pixel_mean) / self.pixel_std
        return F.pad(image, (0, self.image_size - size[1], 0, self.image_size - size[0]))

    def _medsam_image(self, rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (3, S, S): skimage resize, 8 bits, min–max to [0, 1]."""
        from skimage.transform import resize  # scikit-image is slow to import

        size = (self.image_size, self.image_size)
        # Always resized, even at S×S: MedSAM's order-3 resize moves values by ~1e-13,
        # and the cast to uint8 truncates, so skipping it would change some grey levels.
        resized = resize(rgb, size, order=3, preserve_range=True, anti_aliasing=True)
        pixels = resized.astype(np.uint8)
        low, high = float(pixels.min()), float(pixels.max())
        return _channels_first((pixels - low) / max(high - low, 1e-8))

    def _sammed2d_image(self, rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (3, S, S): mean/std, then nearest-neighbour resize."""
        image = (_channels_first(rgb) - self.pixel_mean) / self.pixel_std
        size = (self.image_size, self.image_size)
        if size == tuple(image.shape[-2:]):
            return image
        return F.interpolate(image[None], size=size, mode="nearest")[0]

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

        ``"sam"`` and ``"sammed2d"`` resize the logits; ``"medsam"`` resizes their sigmoid,
        as MedSAM does, and returns the logits of the result (clipped to about ±16), so that
        ``> 0`` is MedSAM's ``> 0.5``.
        """
        if self.preprocessing == "medsam":
            probabilities = self._resized_masks(torch.sigmoid(low_res), original_size)
            return torch.logit(probabilities, eps=PROBABILITY_EPS)
        return self._resized_masks(low_res, original_size)

    def original_logits(
        self, low_res: torch.Tensor, original_size: tuple[int, int]
    ) -> torch.Tensor:
        """(B, M, h, w) low-resolution logits -> (B, M, H, W) logits, resized as
        :meth:`masks` resizes ``"sam"`` logits (upsample to S², crop the padding, resize)
        for every convention, ``"medsam"`` straight to the original: the logits themselves,
        differentiable, where training takes its loss (micro-sam's ``SamTrainer`` scores
        ``postprocess_masks``; MedSAM's training resizes logits too)."""
        return self._resized_masks(low_res, original_size)

    def _resized_masks(self, low_res: torch.Tensor, original_size: tuple[int, int]) -> torch.Tensor:
        """(B, M, h, w) -> (B, M, H, W) by the resizes of the convention's reference code.

        The same values within float rounding (~1e-6): both bilinear resizes are linear and
        act on rows and columns separately, so their composite, crop included, is
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
        """The reference resizes of :meth:`_resized_masks`, one ``F.interpolate`` per step."""
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


def to_uint8_rgb(images: torch.Tensor) -> np.ndarray:
    """(B, 1 or 3, H, W) values in [0, 255] -> (B, H, W, 3) uint8: clipped, rounded to the
    nearest grey level (halves to even), grey replicated to three channels."""
    pixels = images.detach().float().clamp(0, 255).round().to(torch.uint8).cpu()
    return pixels.expand(-1, 3, -1, -1).permute(0, 2, 3, 1).contiguous().numpy()


def _channels_first(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) array -> (3, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()


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
    # Cached for inference and training alike: a matrix first made under inference_mode
    # would be an inference tensor, which autograd refuses to save for the backward pass.
    with torch.inference_mode(False):
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
