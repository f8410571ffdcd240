"""The SAM model: image encoder, prompt encoder and mask decoder under the official names.

The model works in its own input frame: images already resized, padded and normalised to
``config.image_size``², prompts in that frame's pixels. Mapping from and to the original
image lives in :mod:`samforge.preprocessing`, shared by inference, training and
evaluation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..config import SamConfig
from .common import register_pixel_statistics
from .embeddings import Embeddings, require_tensor
from .image_encoder import ImageEncoderViT
from .mask_decoder import DecoderOutput, MaskDecoder
from .prompt_encoder import PromptEncoder


class PromptableModel(nn.Module):
    """What every family shares: ``decode`` is ``decode_with_features`` without the
    features; the device is that of the pixel-statistics buffers."""

    mask_threshold: float = 0.0
    # Set by every family's __init__ (the buffers by register_pixel_statistics).
    config: SamConfig
    # SAM's ViT, or another family's encoder with the same output (MobileSAM's TinyViT).
    image_encoder: nn.Module
    prompt_encoder: PromptEncoder
    mask_decoder: MaskDecoder
    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor
    # Where the weights came from: set by load_model, fuse_modules and training's setup.
    provenance: dict[str, Any]

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def embed_images(self, images: torch.Tensor) -> Embeddings:
        """(B, 3, S, S) model-ready images -> the family's embeddings (see
        :mod:`~samforge.models.sam.embeddings`)."""
        raise NotImplementedError

    def decode(
        self,
        image_embeddings: Embeddings,
        points: tuple[torch.Tensor, torch.Tensor] | None = None,
        boxes: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
        multimask_output: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decode B prompts against one image, or one image per prompt.

        Args:
            image_embeddings: (1 or B, 256, h, w), or the family's dict of such tensors.
            points: coords (B, N, 2) in model-frame pixels (x, y) and labels (B, N).
            boxes: (B, 4) x0, y0, x1, y1 in model-frame pixels.
            mask_inputs: (B, 1, 4h, 4w) low-resolution logits from an earlier prediction.
            multimask_output: return three masks per prompt instead of one.

        Returns:
            low-resolution logits (B, M, 4h, 4w) and IoU predictions (B, M), or None for
            a family without an IoU head (SAM-UNet).
        """
        low_res, iou = self.decode_with_features(
            image_embeddings, points, boxes, mask_inputs, multimask_output
        )[:2]
        return low_res, iou

    def decode_with_features(
        self,
        image_embeddings: Embeddings,
        points: tuple[torch.Tensor, torch.Tensor] | None = None,
        boxes: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
        multimask_output: bool = False,
        clean: bool = False,
    ) -> DecoderOutput:
        """Each family's decoder, returning its features too (see :class:`Sam`)."""
        raise NotImplementedError

    def embed_prompts(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        mask_inputs: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The prompt encoder's sparse (B, N, C) and dense (B, C, h, w) embeddings of B
        prompts (see :meth:`decode`), and the image's positional encoding (1, C, h, w)."""
        sparse, dense = self.prompt_encoder(points=points, boxes=boxes, masks=mask_inputs)
        return sparse, dense, self.prompt_encoder.get_dense_pe()


class Sam(PromptableModel):
    """Plain SAM (and SAM-Med2D, whose adapters live inside the image encoder)."""

    # Families that only swap the decoder (RobustSAM) subclass Sam and change this.
    mask_decoder_class: type[MaskDecoder] = MaskDecoder

    def __init__(self, config: SamConfig) -> None:
        super().__init__()
        self.config = config
        self.image_encoder = self.build_image_encoder(config)
        self.prompt_encoder = PromptEncoder.from_config(config)
        self.mask_decoder = self.mask_decoder_class.from_config(config)
        register_pixel_statistics(self, config)

    def build_image_encoder(self, config: SamConfig) -> nn.Module:
        """SAM's ViT; families with another encoder of the same output override this."""
        return ImageEncoderViT.from_config(config)

    def embed_images(self, images: torch.Tensor) -> Embeddings:
        """(B, 3, S, S) model-ready images -> (B, 256, S/16, S/16) embeddings (a family
        that extends SAM may return a dict, see :mod:`~samforge.models.sam.embeddings`)."""
        return self.image_encoder(images)

    def decode(
        self,
        image_embeddings: Embeddings,
        points: tuple[torch.Tensor, torch.Tensor] | None = None,
        boxes: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
        multimask_output: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """See :meth:`PromptableModel.decode`; unlike :meth:`decode_with_features` it never
        lays out the mask features as an image, which costs as much as reading the masks."""
        if type(self.mask_decoder).forward is not MaskDecoder.forward:  # e.g. RobustSAM's
            return super().decode(image_embeddings, points, boxes, mask_inputs, multimask_output)
        embedding = require_tensor(image_embeddings, "SAM")
        sparse, dense, image_pe = self.embed_prompts(points, boxes, mask_inputs)
        return self.mask_decoder(embedding, image_pe, sparse, dense, multimask_output)

    def decode_with_features(
        self,
        image_embeddings: Embeddings,
        points: tuple[torch.Tensor, torch.Tensor] | None = None,
        boxes: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
        multimask_output: bool = False,
        clean: bool = False,
    ) -> DecoderOutput:
        """As :meth:`decode`, also returning the decoder's mask features (B, 32, 4h, 4w) and
        the selected mask tokens (B, M, 256). ``clean`` selects RobustSAM's clean-image path
        in models that have one; plain SAM has a single path and ignores it."""
        embedding = require_tensor(image_embeddings, "SAM")
        sparse, dense, image_pe = self.embed_prompts(points, boxes, mask_inputs)
        return self.mask_decoder.forward_with_features(
            embedding, image_pe, sparse, dense, multimask_output
        )
