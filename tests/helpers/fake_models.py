"""Fake SAM models whose answers are known in closed form: the one set every test uses.

They subclass the real :class:`Sam` and replace only ``embed_images`` and ``decode``, so the
real Predictor path around them (intensity mapping, resize/pad, prompt transforms and
batching, mask upsampling, CLI plumbing) runs as in production. The "embedding" is channel
0 of the model-ready image (with SAM's preprocessing, back in 0–255 intensities), and a
double answers on the grid of the low-resolution logits, with the prompts scaled to it.
With ``VIT_TEST`` (model frame 256, low-resolution output 64) and 64×64 images a
low-resolution pixel is exactly one image pixel, so answers come back pixel-exact; on other
image shapes they come back as exactly as the resizing allows.

- :class:`ScriptedSam`: counts embedded images and keeps every decode call's prompts (model
  frame); a subclass says which mask each prompted object gets.
- :class:`ObjectOracleSam`: a perfect annotator, the whole object under the prompt.
- :class:`BoxSam`: the prompt itself, the box (or a disc around a lone point).
- :class:`EmptySam`: nothing, whatever the prompt.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from samforge.models import Sam, SamConfig
from samforge.models.config import VIT_TEST
from samforge.preprocessing import SAM_PIXEL_MEAN, SAM_PIXEL_STD

from .synthetic import OBJECT_VALUE

LOGIT = 20.0  # ± logits inside/outside the answer: survive any resizing as a clear sign


class ScriptedSam(Sam):
    """Records its calls; :meth:`segment` (in subclasses) says what each object gets.

    Attributes:
        embedded: how many images were embedded.
        calls: one dict per decode call with the prompts as given (model frame):
            ``points`` ((B, N, 2) coords, (B, N) labels) or None, ``boxes`` (B, 4) or None,
            ``mask_inputs`` (B, 1, 4h, 4w) or None, and ``multimask``.
    """

    def __init__(self, config: SamConfig = VIT_TEST) -> None:
        super().__init__(config)
        self.embedded = 0
        self.calls: list[dict] = []

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        self.embedded += images.shape[0]
        return images[:, :1] * SAM_PIXEL_STD[0] + SAM_PIXEL_MEAN[0]

    def decode(
        self, image_embeddings, points=None, boxes=None, mask_inputs=None, multimask_output=False
    ):
        self.calls.append(
            {
                "points": None if points is None else (points[0].clone(), points[1].clone()),
                "boxes": None if boxes is None else boxes.clone(),
                "mask_inputs": None if mask_inputs is None else mask_inputs.clone(),
                "multimask": multimask_output,
            }
        )
        # The low-resolution grid: block averages of the model-frame image.
        low = 4 * self.config.embedding_size
        scale = self.config.image_size / low
        grid = F.interpolate(image_embeddings[:1], size=(low, low), mode="area")[0, 0]
        batch = (boxes if boxes is not None else points[0]).shape[0]
        inside = torch.stack(
            [
                self.segment(
                    grid,
                    None if points is None else points[0][index] / scale,
                    None if points is None else points[1][index],
                    None if boxes is None else boxes[index] / scale,
                )
                for index in range(batch)
            ]
        )
        logits = torch.where(inside, LOGIT, -LOGIT)[:, None]
        count = 3 if multimask_output else 1
        return logits.repeat(1, count, 1, 1), torch.ones(batch, count)

    def segment(self, grid, coords, labels, box) -> torch.Tensor:
        """One object: (s, s) intensities, its prompts in grid pixels (coords (N, 2) x, y
        and labels (N,), or None; box (4,) or None) -> (s, s) bool mask."""
        raise NotImplementedError


class ObjectOracleSam(ScriptedSam):
    """A perfect annotator: the object the box overlaps most, together with every object
    holding a positive point. Negative points and mask prompts are recorded, not used.

    The objects are ``objects`` when given ((s, s) bool masks on the low-resolution grid,
    disjoint), else the 2D connected components of the slice's bright pixels (see
    :func:`helpers.synthetic.image_of`).
    """

    def __init__(self, objects: list[np.ndarray] | None = None, config=VIT_TEST) -> None:
        super().__init__(config)
        self.objects = None
        if objects:
            numbered = np.zeros(objects[0].shape, dtype=np.int64)
            for number, mask in enumerate(objects, start=1):
                numbered[mask] = number
            self.objects = torch.from_numpy(numbered)

    def numbered_objects(self, grid: torch.Tensor) -> torch.Tensor:
        """(s, s) int: 0 for the background, k on the k-th object."""
        if self.objects is not None:
            return self.objects
        # Half the object intensity separates an object pixel's block (≥ 130 even for a
        # one-pixel object on a background of 39) from its neighbours' (≤ 60). Square
        # slices only: the padding of a non-square slice would read as intensity 123.7.
        numbered, _ = ndimage.label(grid.numpy() > OBJECT_VALUE / 2)
        return torch.from_numpy(numbered)

    def segment(self, grid, coords, labels, box) -> torch.Tensor:
        objects = self.numbered_objects(grid)
        chosen = torch.zeros(grid.shape, dtype=torch.bool)
        if box is not None:
            x0, y0, x1, y1 = box.round().long().clamp_min(0).tolist()
            count = int(objects.max())
            overlap = torch.bincount(objects[y0:y1, x0:x1].flatten(), minlength=count + 1)[1:]
            if overlap.sum() > 0:
                chosen |= objects == int(overlap.argmax()) + 1
        if coords is not None:
            for (x, y), label in zip(coords.tolist(), labels.tolist(), strict=True):
                number = int(objects[int(y), int(x)])
                if label == 1 and number > 0:
                    chosen |= objects == number
        return chosen


class BoxSam(ScriptedSam):
    """Segments the prompt itself: the pixels whose centres lie in the box, whatever the
    image and the points; for points alone, a disc of :attr:`disc_radius` model-frame
    pixels around the first one."""

    disc_radius = 24.0

    def segment(self, grid, coords, labels, box) -> torch.Tensor:
        size = grid.shape[-1]
        centres = torch.arange(size, dtype=torch.float32) + 0.5
        yy, xx = torch.meshgrid(centres, centres, indexing="ij")
        if box is not None:
            x0, y0, x1, y1 = box.tolist()
            return (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
        x, y = coords[0].tolist()
        radius = self.disc_radius * size / self.config.image_size
        return (xx - x) ** 2 + (yy - y) ** 2 <= radius**2


class EmptySam(ScriptedSam):
    """Segments nothing."""

    def segment(self, grid, coords, labels, box) -> torch.Tensor:
        return torch.zeros(grid.shape, dtype=torch.bool)
