"""SAM-UNet: a ResNet branch beside SAM's frozen ViT, multi-scale features into the decoder.

- The ResNet (:mod:`.resnet`) runs on the same model-ready image. Before global block i of
  the ViT, stage i's output, resampled to the token grid by a :class:`Reshaper`
  (``adapters_in.{i}``), is added to the tokens.
- The outputs of all global blocks but the last pass a bridge (``adapters_bridge``, two 2×
  transposed convolutions, to 32×4h×4w; the first global block feeds the last bridge, as in
  a U-Net), the neck output passes ``embedding_encoder``; their sum is the multi-scale
  feature.
- The decoder runs SAM's transformer with one learned token (``med_token``) instead of
  SAM's IoU and mask tokens; the mask is ``hf_mlp(token)`` times
  ``embedding_maskfeature(upscaled) + multi-scale feature``: one mask, no IoU head.

SAM's modules keep SAM's names here; SAM-UNet's own modules have the names of the public
SAM-UNet code, whose checkpoints wrap SAM's (:mod:`.layout` renames them once, when read or
written), so its ``{"model": ...}`` checkpoints load strictly. The ViT is frozen in
SAM-UNet's training (the ``encoder_frozen`` freeze policy of :mod:`samforge.training`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import nn

from ....errors import CheckpointError
from ...config import SamConfig
from ...messages import preview_names
from ...sam.common import MLP, LayerNorm2d, register_pixel_statistics, upscaling_head
from ...sam.embeddings import IMAGE_EMBEDDINGS, Embeddings, require
from ...sam.image_encoder import ImageEncoderViT
from ...sam.mask_decoder import DecoderOutput, MaskDecoder, expand_to_batch, read_masks
from ...sam.model import PromptableModel
from ...sam.prompt_encoder import PromptEncoder
from .layout import is_sam_unet_key
from .resnet import ResNetStages, from_torchvision_names

MULTI_SCALE_FEATURES = "multi_scale_features"


class Reshaper(nn.Module):
    """(B, C_in, s_in, s_in) -> (B, C_out, s_out, s_out) by log2(s_in / s_out) strided 3×3
    convolutions (doubling channels) or 2× transposed convolutions (halving them), each
    with LayerNorm2d and GELU, then a 1×1 convolution; sizes differ by a power of two."""

    def __init__(self, size_in: int, channels_in: int, size_out: int, channels_out: int) -> None:
        super().__init__()
        steps = round(math.log2(max(size_in, size_out) / min(size_in, size_out)))
        layers: list[nn.Module] = []
        channels = channels_in
        for _ in range(steps):
            if size_in > size_out:
                layers.append(nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1))
                channels *= 2
            else:
                layers.append(nn.ConvTranspose2d(channels, channels // 2, 2, stride=2))
                channels //= 2
            layers += [LayerNorm2d(channels), nn.GELU()]
        layers.append(nn.Conv2d(channels, channels_out, kernel_size=1))
        self.reshaper = nn.ModuleList(layers)
        for layer in layers:  # as SAM-UNet initialises them
            if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                if layer.bias is not None:  # always, as built above
                    nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.reshaper:
            x = layer(x)
        return x


class SamUNetMaskDecoder(MaskDecoder):
    """SAM's decoder with SAM-UNet's single token and multi-scale mask features. SAM's
    output tokens, hypernetworks and IoU head stay (SAM-UNet's checkpoints hold them) but
    are not used."""

    def __init__(self, *args, **kwargs) -> None:
        """Takes :class:`MaskDecoder`'s arguments."""
        super().__init__(*args, **kwargs)
        dim = self.transformer_dim
        self.med_token = nn.Embedding(1, dim)
        self.hf_mlp = MLP(dim, dim, dim // 8, 3)
        self.embedding_maskfeature = nn.Sequential(
            nn.Conv2d(dim // 8, dim // 4, 3, 1, 1),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.Conv2d(dim // 4, dim // 8, 3, 1, 1),
        )

    def forward(  # type: ignore[override]  # SAM-UNet needs the multi-scale features too
        self,
        image_embeddings: torch.Tensor,
        multi_scale_features: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
    ) -> DecoderOutput:
        """One mask per prompt.

        Args:
            image_embeddings: (1 or B, C, h, w).
            multi_scale_features: (1 or B, C/8, 4h, 4w).
            image_pe: (1, C, h, w).
            sparse_prompt_embeddings: (B, N, C).
            dense_prompt_embeddings: (B, C, h, w).

        Returns:
            masks (B, 1, 4h, 4w), no IoUs (None), the mask features (B, C/8, 4h, 4w) and the
            learned token after the transformer (B, 1, C).
        """
        batch = sparse_prompt_embeddings.shape[0]
        hs, upscaled = self.run_transformer(
            self.med_token.weight,
            image_embeddings,
            image_pe,
            sparse_prompt_embeddings,
            dense_prompt_embeddings,
        )
        token = hs[:, :1, :]
        features = self.embedding_maskfeature(upscaled) + expand_to_batch(
            multi_scale_features, batch
        )
        return DecoderOutput(read_masks(self.hf_mlp(token), features), None, features, token)

    def forward_with_features(self, *args, **kwargs) -> DecoderOutput:
        raise TypeError(
            "SAM-UNet's decoder also needs the multi-scale features: call it as "
            "decoder(image_embeddings, multi_scale_features, image_pe, sparse, dense), or use "
            "model.decode_with_features."
        )


class SamUNet(PromptableModel):
    """Decodes one mask per prompt, whatever ``multimask_output`` says, and predicts no IoU
    (``decode`` returns None for it)."""

    image_encoder: ImageEncoderViT  # the ResNet stages join its blocks

    def __init__(self, config: SamConfig) -> None:
        super().__init__()
        self.config = config
        dim, vit_dim, size = config.prompt_embed_dim, config.encoder_embed_dim, config.image_size
        self.image_encoder = ImageEncoderViT.from_config(config)
        self.prompt_encoder = PromptEncoder.from_config(config)
        self.mask_decoder = SamUNetMaskDecoder.from_config(config)
        self.resnet = ResNetStages(config.resnet_block, config.resnet_layers, config.resnet_width)
        self.adapters_in = nn.ModuleList(
            Reshaper(size // 2 ** (index + 2), channels, config.embedding_size, vit_dim)
            for index, channels in enumerate(self.resnet.channels)
        )
        self.adapters_bridge = nn.ModuleList(
            upscaling_head(vit_dim, dim, dim // 8) for _ in range(len(self.resnet.channels) - 1)
        )
        self.embedding_encoder = upscaling_head(dim, dim // 4, dim // 8)
        register_pixel_statistics(self, config)

    def embed_images(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, S, S) model-ready images -> ``{"image_embeddings": (B, 256, S/16, S/16),
        "multi_scale_features": (B, 32, S/4, S/4)}``."""
        vit = self.image_encoder
        stages = self.resnet(images)
        x = vit.patch_embed(images) + vit.pos_embed
        bridged, stage = [], 0
        for index, block in enumerate(vit.blocks):
            if index in vit.global_attn_indexes:
                x = block(x + self.adapters_in[stage](stages[stage]).permute(0, 2, 3, 1))
                if stage < len(self.adapters_bridge):
                    # U-Net order: the first global block feeds the last bridge.
                    bridge = self.adapters_bridge[len(self.adapters_bridge) - 1 - stage]
                    bridged.append(bridge(x.permute(0, 3, 1, 2)))
                stage += 1
            else:
                x = block(x)
        embedding = vit.neck(x.permute(0, 3, 1, 2))
        multi_scale = self.embedding_encoder(embedding)
        for features in reversed(bridged):  # summed deepest first, as SAM-UNet does
            multi_scale = multi_scale + features
        return {IMAGE_EMBEDDINGS: embedding, MULTI_SCALE_FEATURES: multi_scale}

    def decode_with_features(
        self,
        image_embeddings: Embeddings,
        points: tuple[torch.Tensor, torch.Tensor] | None = None,
        boxes: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
        multimask_output: bool = False,
        clean: bool = False,
    ) -> DecoderOutput:
        """As :meth:`decode`, with the mask features (B, 32, 4h, 4w) and the learned token
        (B, 1, 256); ``multimask_output`` and ``clean`` change nothing (one path, one mask)."""
        embeddings = require(image_embeddings, (IMAGE_EMBEDDINGS, MULTI_SCALE_FEATURES), "SAM-UNet")
        sparse, dense, image_pe = self.embed_prompts(points, boxes, mask_inputs)
        return self.mask_decoder(
            embeddings[IMAGE_EMBEDDINGS], embeddings[MULTI_SCALE_FEATURES], image_pe, sparse, dense
        )

    def load_sam_weights(self, sam_state: Mapping[str, torch.Tensor]) -> None:
        """Take the ViT, prompt encoder and SAM decoder from a SAM state dict (SAM's names,
        position tables already at this input size), as SAM-UNet's training starts."""
        load_part(self, sam_state, _is_sam_key, "the SAM weights")

    def load_resnet_weights(self, torchvision_state: Mapping[str, torch.Tensor]) -> None:
        """Take the ResNet branch from a torchvision ResNet state dict (e.g. ImageNet)."""
        state = {
            f"resnet.{key}": value
            for key, value in from_torchvision_names(torchvision_state).items()
        }
        load_part(self, state, _is_resnet_key, "the torchvision ResNet weights")


def _is_sam_key(key: str) -> bool:
    return not is_sam_unet_key(key)


def _is_resnet_key(key: str) -> bool:
    return key.startswith("resnet.")


def load_part(
    model: nn.Module, state: Mapping[str, torch.Tensor], part: Callable[[str], bool], what: str
) -> None:
    """Load the model's tensors whose names ``part`` accepts from ``state``, all of them,
    strictly."""
    expected = {k: v for k, v in model.state_dict().items() if part(k)}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{key}: {tuple(state[key].shape)} vs {tuple(value.shape)}"
        for key, value in expected.items()
        if key in state and state[key].shape != value.shape
    ]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"{what} do not fit this SAM-UNet: missing {preview_names(missing, 3) or 'none'}; "
            f"unexpected {preview_names(unexpected, 3) or 'none'}; other shapes "
            f"{preview_names(mismatched, 3) or 'none'}. Use weights of the same architecture "
            "(e.g. ViT-B resized to this input size, torchvision's resnet50 or resnet34)."
        )
    model.load_state_dict(dict(state), strict=False)
