"""Test doubles and synthetic volumes shared by the 3D propagation and evaluation tests.

The doubles subclass :class:`samforge.models.Sam` and replace only ``embed_images`` and
``decode``, so the real Predictor path (intensity mapping, resize/pad, prompt transforms,
mask upsampling) runs unchanged. With 64×64 slices and ``VIT_TEST`` (model frame 256,
low-resolution output 64) a low-resolution pixel is exactly one slice pixel, so what a
double "segments" comes back pixel-exact and every expected result has a closed form.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from samforge.models import Sam
from samforge.models.config import VIT_TEST
from samforge.preprocessing import SAM_PIXEL_MEAN, SAM_PIXEL_STD

LOGIT = 20.0
OBJECT_VALUE = 200  # uint8 intensity of every object voxel; the background is 0


class RecordingSam(Sam):
    """Counts embedded images and keeps every decode call's prompts (model frame)."""

    def __init__(self, config=VIT_TEST) -> None:
        super().__init__(config)
        self.embedded = 0
        self.calls: list[dict] = []

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        # The "embedding" is channel 0 of the model-ready image, back in 0–255 intensities.
        self.embedded += images.shape[0]
        return images[:, :1] * SAM_PIXEL_STD[0] + SAM_PIXEL_MEAN[0]

    def decode(
        self, image_embeddings, points=None, boxes=None, mask_inputs=None, multimask_output=False
    ):
        self.calls.append({"points": points, "boxes": boxes, "mask_inputs": mask_inputs})
        # Work on the low-resolution grid (one slice pixel each for 64×64 slices): the
        # block averages of the enlarged image, prompts scaled down alike.
        low = 4 * self.config.embedding_size
        scale = self.config.image_size / low
        grid = F.interpolate(image_embeddings[:1], size=(low, low), mode="area")[0, 0]
        if points is not None:
            points = (points[0] / scale, points[1])
        inside = self.segment(grid, points, None if boxes is None else boxes / scale)
        logits = torch.where(inside, LOGIT, -LOGIT)[None, None]
        count = 3 if multimask_output else 1
        return logits.repeat(1, count, 1, 1), torch.ones(1, count)

    def segment(self, grid, points, boxes) -> torch.Tensor:
        """(s, s) intensities, prompts in grid pixels -> (s, s) bool mask."""
        raise NotImplementedError


class ObjectOracleSam(RecordingSam):
    """A perfect annotator: returns the whole object (2D connected component of bright
    pixels in the slice) under the prompt: the one overlapping the box most, or every one
    holding a positive point. Negative points and mask prompts are recorded, not used."""

    def segment(self, grid, points, boxes) -> torch.Tensor:
        # Half the object intensity separates an object pixel's block (≥ 130 even for a
        # one-pixel object on a background of 39) from its neighbours' (≤ 60). Square
        # slices only: the padding of a non-square slice would read as intensity 123.7.
        components, count = ndimage.label(grid.numpy() > OBJECT_VALUE / 2)
        components = torch.from_numpy(components)
        chosen = torch.zeros(grid.shape, dtype=torch.bool)
        if boxes is not None:
            x0, y0, x1, y1 = boxes[0].round().long().clamp_min(0).tolist()
            window = components[y0:y1, x0:x1]
            overlap = torch.bincount(window.flatten(), minlength=count + 1)[1:]
            if overlap.sum() > 0:
                chosen |= components == int(overlap.argmax()) + 1
        if points is not None:
            coords, labels = points
            for (x, y), label in zip(coords[0].tolist(), labels[0].tolist(), strict=True):
                component = int(components[int(y), int(x)])
                if label == 1 and component > 0:
                    chosen |= components == component
        return chosen


class BoxOracleSam(RecordingSam):
    """Returns exactly the prompt box (pixel centres inside it), whatever the image."""

    def segment(self, grid, points, boxes) -> torch.Tensor:
        size = grid.shape[-1]
        centres = torch.arange(size, dtype=torch.float32) + 0.5
        yy, xx = torch.meshgrid(centres, centres, indexing="ij")
        x0, y0, x1, y1 = boxes[0].tolist()
        return (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)


def disc(shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    """(H, W) bool disc; ``centre`` is (x, y) in pixels."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius**2


def sphere(depth: int = 32, size: int = 64, radius: float = 10.0) -> np.ndarray:
    """(D, size, size) bool ball centred in the volume."""
    zz, yy, xx = np.mgrid[:depth, :size, :size]
    centre = (depth // 2, size // 2, size // 2)
    return (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= radius**2


def bent_tube(depth: int = 30, size: int = 64, radius: float = 6.0) -> np.ndarray:
    """A tube through every slice whose centre drifts along x on a parabola (≤ 2 px/slice)."""
    shape = (size, size)
    centres = 14 + 0.04 * np.arange(depth) ** 2  # x from 14 to ~48; the step grows to 2.3
    return np.stack([disc(shape, (x, size / 2), radius) for x in centres])


def ending_object(depth: int = 30, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A thick cylinder (radius 8) on slices 5–19, then a thin one (radius 3) in the same
    place on slices 20–29: where the first ends, the next slice shows another structure.

    Returns (label map with 1 = thick, 2 = thin, the thick cylinder alone as bool).
    """
    shape = (size, size)
    label = np.zeros((depth, size, size), dtype=np.uint8)
    label[5:20][:, disc(shape, (32, 32), 8)] = 1
    label[20:][:, disc(shape, (32, 32), 3)] = 2
    return label, label == 1


def image_of(mask: np.ndarray) -> np.ndarray:
    """The uint8 volume the oracles see: objects bright, background dark, a different
    background value per slice (0–39) so that no two slices share an embedding."""
    background = (np.arange(mask.shape[0]) % 40)[:, None, None]
    return np.where(mask > 0, OBJECT_VALUE, background).astype(np.uint8)


def expected_run(mask: np.ndarray, start: int, iou_threshold: float) -> np.ndarray:
    """What an ideal propagation from slice ``start`` of ``mask`` (D, H, W) keeps: the
    slices reached before the first consecutive pair with IoU below the threshold (or an
    empty slice), in both directions."""
    keep = np.zeros(mask.shape[0], dtype=bool)
    keep[start] = True
    for step in (-1, 1):
        index = start
        while 0 <= index + step < mask.shape[0]:
            a, b = mask[index], mask[index + step]
            union = (a | b).sum()
            if not b.any() or (a & b).sum() / union < iou_threshold:
                break
            index += step
            keep[index] = True
    return mask & keep[:, None, None]
