"""Test doubles of SAM whose answers are known, so the protocol's bookkeeping can be checked
without a network. They replace ``Sam.decode`` only: the real Predictor (transforms, prompt
batching) runs around them.

Images are 64×64 and the model is VIT_TEST (input 256, low-resolution logits 64×64), so a
low-resolution pixel is exactly one image pixel and ±20 logits survive the resizing intact.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from samforge.models import Sam
from samforge.models.config import VIT_TEST

SIZE = 64
LOGIT = 20.0


def synthetic_label() -> np.ndarray:
    """(64, 64) label map: class 1 = two rectangles and a disk, class 2 = a diagonal band."""
    label = np.zeros((SIZE, SIZE), dtype=np.uint8)
    label[4:14, 5:25] = 1
    label[40:60, 44:52] = 1
    yy, xx = np.mgrid[:SIZE, :SIZE]
    label[(yy - 24) ** 2 + (xx - 46) ** 2 <= 7**2] = 1
    band = (np.abs(yy - xx - 10) <= 2) & (yy >= 20) & (yy < 55)
    label[band] = 2
    return label


def components(label: np.ndarray) -> list[np.ndarray]:
    """The label map's objects, found independently of samforge: face-connected components
    of each class with at least 20 pixels."""
    objects = []
    for class_id in np.unique(label[label > 0]):
        parts, count = ndimage.label(label == class_id)
        objects += [parts == i for i in range(1, count + 1) if (parts == i).sum() >= 20]
    return objects


class ScriptedSam(Sam):
    """Records its calls; subclasses say which low-res mask each prompt gets."""

    def __init__(self, objects: list[np.ndarray] | None = None) -> None:
        super().__init__(VIT_TEST)
        self.objects = torch.from_numpy(np.stack(objects)) if objects else None
        self.calls: list[dict] = []
        self.embed_calls = 0

    def embed_images(self, images):
        self.embed_calls += 1
        return super().embed_images(images)

    def decode(
        self, image_embeddings, points=None, boxes=None, mask_inputs=None, multimask_output=False
    ):
        # Prompts arrive in the 256-pixel model frame; the low-res frame is 4× smaller.
        scale = 4 * self.config.embedding_size / self.config.image_size
        points_low = None if points is None else (points[0] * scale, points[1])
        boxes_low = None if boxes is None else boxes * scale
        self.calls.append(
            {
                "points": None if points is None else points[0].shape,
                "coords": None if points is None else points[0].clone(),
                "boxes": boxes is not None,
                "mask_inputs": None if mask_inputs is None else mask_inputs.clone(),
                "multimask": multimask_output,
            }
        )
        inside = self.masks(points_low, boxes_low)
        logits = torch.where(inside, LOGIT, -LOGIT)[:, None]
        count = 3 if multimask_output else 1
        return logits.repeat(1, count, 1, 1), torch.ones(inside.shape[0], count)

    def masks(self, points, boxes) -> torch.Tensor:
        raise NotImplementedError


class OracleSam(ScriptedSam):
    """The true object: the one under the box (best box overlap) or the first positive point."""

    def masks(self, points, boxes):
        chosen = []
        batch = (boxes if boxes is not None else points[0]).shape[0]
        for b in range(batch):
            if boxes is not None:
                chosen.append(self._by_box(boxes[b]))
            else:
                x, y = points[0][b][points[1][b] == 1][0].long().tolist()
                chosen.append(int(torch.nonzero(self.objects[:, y, x])[0]))
        return self.objects[chosen]

    def _by_box(self, box):
        x0, y0, x1, y1 = box.round().long().tolist()
        inside = self.objects[:, y0:y1, x0:x1].flatten(1).sum(1)
        return int(inside.argmax())


class EmptySam(ScriptedSam):
    def masks(self, points, boxes):
        batch = (boxes if boxes is not None else points[0]).shape[0]
        return torch.zeros(batch, SIZE, SIZE, dtype=torch.bool)


class BoxSam(ScriptedSam):
    """Segments exactly the box it is given, whatever the points say."""

    def masks(self, points, boxes):
        yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
        out = []
        for x0, y0, x1, y1 in boxes.round().long().tolist():
            out.append((xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1))
        return torch.stack(out)
