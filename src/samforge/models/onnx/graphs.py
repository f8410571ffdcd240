"""The modules that are traced into ONNX graphs: SAM's prompt encoder and mask decoder in
the signature of the official ``SamOnnxModel`` (``segment_anything/utils/onnx.py``), and
a batched variant of it for many objects at once.

The official signature (``scripts/export_onnx_model.py``), all float32:

- inputs ``image_embeddings`` (1, 256, h, w); ``point_coords`` (1, N, 2) in model-frame
  pixels (x, y); ``point_labels`` (1, N): 1 foreground, 0 background, 2/3 box corners,
  −1 padding (a point (0, 0) labelled −1 ends the points when there is no box);
  ``mask_input`` (1, 1, 4h, 4w) low-resolution logits; ``has_mask_input`` (1,) 1 or 0;
  ``orig_im_size`` (2,) the original (H, W);
- outputs ``masks`` (1, M, H, W) logits at the original size, ``iou_predictions``
  (1, M), ``low_res_masks`` (1, M, 4h, 4w); M = 4 (the single-mask output first, then the
  three multimask outputs) or 1 with ``return_single_mask`` (the official rule: the
  single-mask output when there are more than 2.5 points, else the best multimask one).

The batched variant takes B objects: ``point_coords`` (B, N, 2), ``point_labels`` (B, N),
``mask_input`` (B or 1, 1, 4h, 4w) with ``has_mask_input`` (1,) for all of them, and
returns ``iou_predictions`` (B, 4) and ``low_res_masks`` (B, 4, 4h, 4w) only: the
full-resolution masks of many objects are better made where they are used.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..sam.model import Sam

SINGLE_INPUTS = (
    "image_embeddings",
    "point_coords",
    "point_labels",
    "mask_input",
    "has_mask_input",
    "orig_im_size",
)
SINGLE_OUTPUTS = ("masks", "iou_predictions", "low_res_masks")
BATCHED_INPUTS = SINGLE_INPUTS[:-1]
BATCHED_OUTPUTS = SINGLE_OUTPUTS[1:]
# MedSAM's resized probabilities are clipped this far from 0 and 1 before their logits are
# taken, as samforge.preprocessing does (logits within about ±16).
PROBABILITY_EPS = 1e-7


class PromptDecoder(nn.Module):
    """Prompt encoder + mask decoder of a SAM-layout model, all four masks returned.

    Args:
        model: a model with SAM's prompt encoder and mask decoder (SAM, SAM-Med2D,
            MobileSAM).
    """

    image_pe: torch.Tensor  # a buffer

    def __init__(self, model: Sam) -> None:
        super().__init__()
        self.prompt_encoder = model.prompt_encoder
        self.mask_decoder = model.mask_decoder
        # A constant of the graph: it depends on the weights alone.
        with torch.no_grad():
            self.register_buffer("image_pe", model.prompt_encoder.get_dense_pe().clone())

    def forward(
        self,
        image_embeddings: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, C, h, w), (B, N, 2), (B, N), (B or 1, 1, 4h, 4w), (1,) -> IoU predictions
        (B, 4) and low-resolution logits (B, 4, 4h, 4w)."""
        prompt_encoder = self.prompt_encoder
        sparse = prompt_encoder._embed_points(point_coords, point_labels, pad=False)
        # Arithmetic rather than control flow, as the official export does, so one graph
        # serves prompts with and without a mask.
        no_mask = prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        dense = has_mask_input * prompt_encoder.mask_downscaling(mask_input)
        dense = dense + (1 - has_mask_input) * no_mask
        decoder = self.mask_decoder
        tokens, blocks = decoder.run_transformer_blocks(
            decoder._output_tokens(),
            image_embeddings,
            self.image_pe,
            sparse,
            dense,
        )
        mask_tokens = tokens[:, 1 : 1 + decoder.num_mask_tokens, :]
        low_res = read_block_masks(decoder.hypernetwork_weights(mask_tokens), blocks)
        return decoder.iou_prediction_head(tokens[:, 0, :]), low_res


def read_block_masks(hyper_in: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
    """:func:`samforge.models.sam.mask_decoder.read_block_masks` written with flatten and
    unflatten only, which the tracer records with the batch size left dynamic (sizes
    unpacked into Python integers would be frozen at the example's).

    Args:
        hyper_in: (B, T, C) one weight vector per mask.
        blocks: (B, h, w, 2, 2, 2, 2, C) features; pixel (4i + 2a + c, 4j + 2b + d) is
            ``[:, i, j, a, b, c, d]``.

    Returns:
        (B, T, 4h, 4w) mask logits.
    """
    masks = hyper_in @ blocks.flatten(1, -2).transpose(1, 2)  # (B, T, 16·h·w)
    masks = masks.unflatten(-1, blocks.shape[1:-1])  # (B, T, h, w, a, b, c, d)
    masks = masks.permute(0, 1, 2, 4, 6, 3, 5, 7)  # (B, T, h, a, c, w, b, d)
    return masks.flatten(5, 7).flatten(2, 4)


class SamOnnxDecoder(nn.Module):
    """The official ``SamOnnxModel``'s computation on a samforge model (module docstring).

    Args:
        model: a model with SAM's prompt encoder and mask decoder.
        return_single_mask: one mask per call by the official rule, instead of all four.
    """

    def __init__(self, model: Sam, return_single_mask: bool = False) -> None:
        super().__init__()
        self.decoder = PromptDecoder(model)
        self.image_size = model.config.image_size
        self.preprocessing = model.config.preprocessing
        self.return_single_mask = return_single_mask

    def forward(
        self,
        image_embeddings: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
        orig_im_size: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scores, low_res = self.decoder(
            image_embeddings, point_coords, point_labels, mask_input, has_mask_input
        )
        if self.return_single_mask:
            low_res, scores = select_mask(low_res, scores, point_coords.shape[1])
        return self.upscale(low_res, orig_im_size), scores, low_res

    def upscale(self, low_res: torch.Tensor, orig_im_size: torch.Tensor) -> torch.Tensor:
        """(1, M, 4h, 4w) logits -> (1, M, H, W) by the resizes of the model's
        preprocessing convention (:meth:`ModelInputTransform.masks`), with the sizes read
        from ``orig_im_size`` inside the graph."""
        # Sizes as tensors, so the graph reads them from its input: Any to the type
        # checker, which knows only the int sizes of eager code.
        size: Any = orig_im_size.to(torch.int64)
        frame = (self.image_size, self.image_size)
        if self.preprocessing == "medsam":
            probabilities = F.interpolate(
                torch.sigmoid(low_res),
                size=(size[0], size[1]),
                mode="bilinear",
                align_corners=False,
            )
            probabilities = probabilities.clamp(PROBABILITY_EPS, 1 - PROBABILITY_EPS)
            return torch.log(probabilities) - torch.log1p(-probabilities)
        masks = F.interpolate(low_res, size=frame, mode="bilinear", align_corners=False)
        if self.preprocessing == "sam":  # crop the padding
            content: Any = resized_longest_side(orig_im_size, self.image_size)
            # Indices from ranges rather than Python slices, whose ends the tracer would
            # freeze at the example's size (as the official export does under torch 2).
            masks = masks.index_select(2, torch.arange(content[0]))
            masks = masks.index_select(3, torch.arange(content[1]))
        return F.interpolate(masks, size=(size[0], size[1]), mode="bilinear", align_corners=False)


def resized_longest_side(original_size: torch.Tensor, long_side: int) -> torch.Tensor:
    """(2,) original (H, W) -> (2,) int64 size inside the model frame, rounded as SAM does."""
    original_size = original_size.to(torch.float32)
    scaled = long_side / torch.max(original_size) * original_size
    return torch.floor(scaled + 0.5).to(torch.int64)


def select_mask(
    low_res: torch.Tensor, scores: torch.Tensor, num_points: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official ``select_masks``: with more than 2.5 points (a box, or several clicks)
    the single-mask output, else the multimask output with the best predicted IoU.
    (B, 4, s, s), (B, 4) -> (B, 1, s, s), (B, 1)."""
    reweight = torch.zeros_like(scores[:1])
    reweight[:, 0] = 1000.0
    best = torch.argmax(scores + (num_points - 2.5) * reweight, dim=1)
    rows = torch.arange(low_res.shape[0])
    return low_res[rows, best].unsqueeze(1), scores[rows, best].unsqueeze(1)
