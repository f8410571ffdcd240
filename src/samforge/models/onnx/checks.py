"""The checks every exported graph passes before it is kept: ONNX Runtime against the
PyTorch model's own code paths (``embed_images``, ``decode``, the input transform's
``masks``), not against the traced modules, so a graph that traced a wrong branch fails.

The prompts exercise every path: foreground and background points, boxes (corners 2/3),
the padding point, mask prompts and their absence, a mask prompt alone, several objects,
and original sizes that need resizing and cropping.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..sam.embeddings import require_tensor
from ..sam.model import Sam
from .graphs import select_mask
from .runtime import decoder_prompts


def relative_error(ours: np.ndarray | torch.Tensor, reference: torch.Tensor) -> float:
    """max |ours − reference| / max |reference| (inf when the shapes differ)."""
    ours = torch.as_tensor(np.asarray(ours), dtype=torch.float64)
    reference = reference.detach().double().cpu()
    if ours.shape != reference.shape:
        return float("inf")
    scale = reference.abs().max().clamp_min(1e-12)
    return float((ours - reference).abs().max() / scale)


@torch.no_grad()
def check_image_encoder(
    model: Sam, session: Any, image: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """(the torch embedding (1, C, h, w), the graph's relative error) on ``image``."""
    reference = require_tensor(model.embed_images(image), "ONNX export")
    (output,) = session.run(None, {"image": image.numpy()})
    return reference, relative_error(output, reference)


@torch.no_grad()
def all_masks(
    model: Sam,
    embedding: torch.Tensor,
    points: tuple[torch.Tensor, torch.Tensor] | None,
    boxes: torch.Tensor | None,
    masks: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's four masks per object as the graphs return them: IoU predictions
    (B, 4) and low-resolution logits (B, 4, s, s), single-mask output first."""
    single = model.decode(embedding, points, boxes, masks, multimask_output=False)
    multiple = model.decode(embedding, points, boxes, masks, multimask_output=True)
    low_res = torch.cat([single[0], multiple[0]], dim=1)
    scores = torch.cat([single[1], multiple[1]], dim=1)  # type: ignore[list-item]
    return scores, low_res


def example_prompts(model: Sam, objects: int, seed: int = 1):
    """Points (2 per object: one foreground, one background), boxes and mask prompts of
    ``objects`` objects in the model frame."""
    generator = torch.Generator().manual_seed(seed)
    frame = model.config.image_size
    corners = torch.rand(objects, 2, 2, generator=generator).sort(dim=1).values * frame
    coords = torch.rand(objects, 2, 2, generator=generator) * frame
    labels = torch.tensor([[1, 0]]).expand(objects, 2)
    size = 4 * model.config.embedding_size
    masks = 4 * torch.randn(objects, 1, size, size, generator=generator)
    return (coords, labels), corners.reshape(objects, 4), masks


def _feed(points, boxes, masks: torch.Tensor | None, batch: int, mask_size: int) -> dict:
    coords, labels = decoder_prompts(points, boxes, batch)
    has_mask = masks is not None
    mask_input = masks if masks is not None else torch.zeros(1, 1, mask_size, mask_size)
    return {
        "point_coords": coords.numpy(),
        "point_labels": labels.numpy(),
        "mask_input": mask_input.float().numpy(),
        "has_mask_input": np.array([float(has_mask)], np.float32),
    }


def check_decoder(model: Sam, session: Any, embedding: torch.Tensor, single_mask: bool) -> float:
    """The official-signature graph's largest relative error over its three outputs, for
    points with a box and a mask prompt, and points alone, at two original sizes."""
    points, boxes, masks = example_prompts(model, 1)
    frame = model.config.image_size
    transform = model.config.input_transform()
    cases = [
        (points, boxes, masks, (int(0.61 * frame) + 1, int(1.37 * frame))),
        (points, None, None, (int(1.9 * frame) + 3, int(0.45 * frame) + 1)),
    ]
    worst = 0.0
    for case_points, case_boxes, case_masks, size in cases:
        feed = _feed(case_points, case_boxes, case_masks, 1, masks.shape[-1])
        feed["image_embeddings"] = embedding.numpy()
        feed["orig_im_size"] = np.array(size, np.float32)
        scores, low_res = all_masks(model, embedding, case_points, case_boxes, case_masks)
        if single_mask:
            low_res, scores = select_mask(low_res, scores, feed["point_coords"].shape[1])
        with torch.no_grad():
            upscaled = transform.masks(low_res, size)
        outputs = session.run(None, feed)
        for output, reference in zip(outputs, (upscaled, scores, low_res), strict=True):
            worst = max(worst, relative_error(output, reference))
    return worst


def check_batched_decoder(model: Sam, session: Any, embedding: torch.Tensor) -> float:
    """The batched graph's largest relative error, for three objects with points, boxes
    and one mask each; without masks (one placeholder); and with masks alone."""
    points, boxes, masks = example_prompts(model, 3, seed=2)
    cases = [
        (points, boxes, masks),
        (points, boxes, None),
        (None, boxes, None),
        (None, None, masks),
    ]
    worst = 0.0
    for case_points, case_boxes, case_masks in cases:
        feed = _feed(case_points, case_boxes, case_masks, 3, masks.shape[-1])
        feed["image_embeddings"] = embedding.numpy()
        references = all_masks(model, embedding, case_points, case_boxes, case_masks)
        outputs = session.run(None, feed)
        for output, reference in zip(outputs, references, strict=True):
            worst = max(worst, relative_error(output, reference))
    return worst
