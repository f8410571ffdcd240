"""Test doubles of SAM whose answers are known in closed form.

They subclass the real :class:`Sam` and replace only ``decode``, so everything around the
network (prompt validation, coordinate transforms, mask resizing, CLI plumbing) runs as in
production and can be checked against geometry computed independently in the test.
"""

from __future__ import annotations

import torch

from samforge.models import Sam

ORACLE_LOGIT = 20.0


class OracleSam(Sam):
    """Decodes a box into +logits inside it (in the model frame), a point into a disk."""

    disk_radius = 24.0  # model-frame pixels

    def decode(
        self, image_embeddings, points=None, boxes=None, mask_inputs=None, multimask_output=False
    ):
        size = self.config.image_size
        low = 4 * self.config.embedding_size
        batch = (boxes if boxes is not None else points[0]).shape[0]
        # Model-frame pixel centres of the low-res grid.
        centres = (torch.arange(low, dtype=torch.float32) + 0.5) * size / low
        yy, xx = torch.meshgrid(centres, centres, indexing="ij")
        inside = torch.zeros(batch, low, low, dtype=torch.bool)
        for index in range(batch):
            if boxes is not None:
                x0, y0, x1, y1 = boxes[index].tolist()
                inside[index] = (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
            else:
                x, y = points[0][index, 0].tolist()
                inside[index] = (xx - x) ** 2 + (yy - y) ** 2 <= self.disk_radius**2
        logits = torch.where(inside, ORACLE_LOGIT, -ORACLE_LOGIT)[:, None]
        count = 3 if multimask_output else 1
        return logits.repeat(1, count, 1, 1), torch.ones(batch, count)
