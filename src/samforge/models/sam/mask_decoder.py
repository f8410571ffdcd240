"""SAM's mask decoder: output tokens and prompt tokens run through the two-way
transformer; each mask token becomes a hypernetwork that weights the upscaled image
features into one mask, and the IoU token predicts each mask's quality."""

from __future__ import annotations

from typing import Any, NamedTuple, Self, cast

import torch
import torch.nn.functional as F
from torch import nn

from ..config import SamConfig
from . import onednn
from .common import MLP, LayerNorm2d
from .transformer import TwoWayTransformer, eager_inference


class DecoderOutput(NamedTuple):
    """What a mask decoder computes for B prompts, beyond the masks themselves.

    Attributes:
        low_res_logits: (B, M, 4h, 4w) mask logits, M = 3 with multimask output, else 1.
        iou_predictions: (B, M) predicted IoUs, or None for decoders without an IoU head.
        mask_features: (B, C', 4h, 4w) the upscaled features the masks are read from
            (RobustSAM: its robust mask features, as its consistency loss compares them).
        output_tokens: (B, T, C) the mask tokens after the transformer (plain SAM: the
            selected ones, T = M; RobustSAM: all of its robust or clean tokens, as its token
            loss compares them).
    """

    low_res_logits: torch.Tensor
    iou_predictions: torch.Tensor | None
    mask_features: torch.Tensor
    output_tokens: torch.Tensor


def mask_slice(multimask_output: bool) -> slice:
    """Which of the decoder's masks are returned: 1–3 (multimask) or the single mask 0."""
    return slice(1, None) if multimask_output else slice(0, 1)


def read_masks(hyper_in: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Masks as hypernetwork weights applied to features.

    Args:
        hyper_in: (B, T, C') one weight vector per mask.
        features: (B, C', H, W) upscaled image features.

    Returns:
        (B, T, H, W) mask logits.
    """
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width)
    return (hyper_in @ flat).reshape(batch, -1, height, width)


def expand_to_batch(image_embeddings: torch.Tensor, batch: int) -> torch.Tensor:
    """(1 or B, C, h, w) -> (B, C, h, w): one image shared by all prompts, or one each."""
    if image_embeddings.shape[0] not in (1, batch):
        raise ValueError(
            f"image embeddings have batch {image_embeddings.shape[0]} but there are {batch} "
            "prompts; pass one embedding shared by all prompts or one per prompt."
        )
    return image_embeddings.expand(batch, -1, -1, -1)


def image_plus_dense(image_embeddings: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """(1 or B, C, h, w) image + (B, C, h, w) dense prompts -> (B or 1, C, h, w).

    Batch 1 when one image is shared and the dense prompt is the same for every prompt
    (no mask prompt: an expanded ``no_mask_embed``), so that the transformer computes the
    image side once instead of B times (see :class:`TwoWayTransformer`).

    The sum is written channels-last, which is the transformer's token layout (B, h·w, C):
    the transformer then reads it without another copy of the image tokens."""
    batch = dense.shape[0]
    if image_embeddings.shape[0] == 1 and (batch == 1 or dense.stride(0) == 0):
        dense = dense[:1]
    else:
        image_embeddings = expand_to_batch(image_embeddings, batch)
    if not eager_inference():  # autograd and tracers do not take an ``out=`` sum
        return image_embeddings + dense
    total = torch.empty(
        dense.shape,
        dtype=torch.result_type(image_embeddings, dense),
        device=dense.device,
        memory_format=torch.channels_last,
    )
    return torch.add(image_embeddings, dense, out=total)


class MaskDecoder(nn.Module):
    def __init__(
        self,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)
            for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth
        )

    @classmethod
    def from_config(cls, config: SamConfig, **extra_arguments: Any) -> Self:
        """The decoder of ``config``; subclasses pass the arguments they add."""
        return cls(
            transformer_dim=config.prompt_embed_dim,
            transformer=TwoWayTransformer.from_config(config),
            num_multimask_outputs=config.num_multimask_outputs,
            iou_head_depth=config.iou_head_depth,
            iou_head_hidden_dim=config.iou_head_hidden_dim,
            **extra_arguments,
        )

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict masks for B prompts.

        Args:
            image_embeddings: (1 or B, C, h, w); one image shared by all prompts, or one
                image per prompt.
            image_pe: (1, C, h, w).
            sparse_prompt_embeddings: (B, N, C).
            dense_prompt_embeddings: (B, C, h, w).
            multimask_output: three disambiguating masks instead of one.

        Returns:
            low-resolution mask logits (B, M, 4h, 4w) and predicted IoUs (B, M), M = 3 or 1.
        """
        output = self._decode_blocks(
            image_embeddings,
            image_pe,
            sparse_prompt_embeddings,
            dense_prompt_embeddings,
            multimask_output,
        )
        assert output.iou_predictions is not None  # SAM's decoder has its IoU head
        return output.low_res_logits, output.iou_predictions

    def forward_with_features(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
    ) -> DecoderOutput:
        """As :meth:`forward`, also returning the upscaled features (B, C/8, 4h, 4w) and the
        selected mask tokens (B, M, C) after the transformer."""
        output = self._decode_blocks(
            image_embeddings,
            image_pe,
            sparse_prompt_embeddings,
            dense_prompt_embeddings,
            multimask_output,
        )
        return output._replace(mask_features=blocks_to_image(output.mask_features))

    def _decode_blocks(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
    ) -> DecoderOutput:
        """:meth:`forward_with_features` with the features left in the block layout of
        :func:`upscale_blocks`, so that :meth:`forward` pays nothing for them."""
        tokens, blocks = self.run_transformer_blocks(
            self._output_tokens(),
            image_embeddings,
            image_pe,
            sparse_prompt_embeddings,
            dense_prompt_embeddings,
        )
        selected = mask_slice(multimask_output)
        # Only the returned masks are read out (one hypernetwork MLP and product each).
        mask_tokens_out = tokens[:, 1 : 1 + self.num_mask_tokens, :][:, selected]
        hyper_in = self.hypernetwork_weights(mask_tokens_out, selected.start)
        iou_pred = self.iou_prediction_head(tokens[:, 0, :])
        masks = read_block_masks(hyper_in, blocks)
        return DecoderOutput(masks, iou_pred[:, selected], blocks, mask_tokens_out)

    def _output_tokens(self) -> torch.Tensor:
        """(T, C): the IoU token and every mask token. All mask tokens go through the
        transformer even when one mask is returned: they attend to each other, so dropping
        one would change the others."""
        return torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)

    def hypernetwork_weights(self, mask_tokens_out: torch.Tensor, first: int = 0) -> torch.Tensor:
        """(B, T, C) mask tokens ``first`` .. ``first + T - 1`` -> (B, T, C/8) weights, one
        hypernetwork MLP per token."""
        mlps = self.output_hypernetworks_mlps[first : first + mask_tokens_out.shape[1]]
        return torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(mlps)],
            dim=1,
        )

    def run_transformer(
        self,
        output_tokens: torch.Tensor,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Output tokens and prompts through the two-way transformer, image features upscaled.

        Args:
            output_tokens: (T, C) learned output tokens, placed before the prompt tokens.
            image_embeddings: (1 or B, C, h, w).
            image_pe: (1, C, h, w).
            sparse_prompt_embeddings: (B, N, C).
            dense_prompt_embeddings: (B, C, h, w).

        Returns:
            tokens after the transformer (B, T + N, C) and the upscaled image features
            (B, C/8, 4h, 4w).
        """
        hs, blocks = self.run_transformer_blocks(
            output_tokens,
            image_embeddings,
            image_pe,
            sparse_prompt_embeddings,
            dense_prompt_embeddings,
        )
        return hs, blocks_to_image(blocks)

    def run_transformer_blocks(
        self,
        output_tokens: torch.Tensor,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`run_transformer`, with the upscaled features left in the block layout
        of :func:`upscale_blocks` (B, h, w, 2, 2, 2, 2, C/8)."""
        batch = sparse_prompt_embeddings.shape[0]
        output_tokens = output_tokens.unsqueeze(0).expand(batch, -1, -1)
        tokens = torch.cat(
            [output_tokens.to(sparse_prompt_embeddings.dtype), sparse_prompt_embeddings], dim=1
        )
        src = image_plus_dense(image_embeddings, dense_prompt_embeddings)
        _, _, height, width = src.shape
        # image_plus_dense made src for this pass alone (a new tensor in eager inference).
        hs, keys = self.transformer(src, image_pe, tokens, own_image=eager_inference())
        return hs, upscale_blocks(self.output_upscaling, keys, height, width)


def _transposed_conv_matrix(conv: nn.ConvTranspose2d) -> torch.Tensor:
    """(4·C_out, C_in) weight of a 2×2, stride-2 transposed convolution as a linear map
    from one input pixel to its 2×2 output block, rows ordered (dy, dx, c_out)."""
    return conv.weight.permute(2, 3, 1, 0).reshape(-1, conv.weight.shape[0])


def _block_linear(
    conv: nn.ConvTranspose2d, x: torch.Tensor, activation: nn.Module | None = None
) -> torch.Tensor:
    """(..., C_in) pixels -> (..., 2, 2, C_out): the transposed convolution, pixel by pixel,
    then ``activation`` if given.

    An exact GELU, and the bias, are applied inside oneDNN's product where it may run
    (:mod:`.onednn`): ``F.linear`` would first copy the bias into a fresh output, and the
    GELU make another pass over it, on the largest tensors of a decoder pass."""
    bias = None if conv.bias is None else conv.bias.repeat(4).to(x.dtype)
    weight = _transposed_conv_matrix(conv).to(x.dtype)
    fused_gelu = _is_exact_gelu(activation)
    if onednn.fused_kernels_take(x) and (activation is None or fused_gelu):
        out = onednn.linear_weights(x, weight, bias, gelu=fused_gelu)
    else:
        out = F.linear(x, weight, bias)
        if activation is not None:
            out = activation(out)
    return out.unflatten(-1, (2, 2, -1))


def upscale_blocks(
    upscaling: nn.Sequential, keys: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """SAM's ``output_upscaling`` (2×2 stride-2 transposed conv, LayerNorm2d, GELU,
    transposed conv, GELU) as matrix products, without moving a pixel.

    A 2×2 transposed convolution with stride 2 maps each input pixel to its own 2×2 output
    block, so it is a per-pixel linear map; LayerNorm over channels and GELU are per pixel
    too. Keeping each pixel's output block in place avoids both the slow transposed
    convolution kernels (4–8× slower on CPU) and the copies that interleave the blocks
    into an image, which :func:`read_block_masks` does on the (few) masks instead.

    Args:
        upscaling: the decoder's ``output_upscaling`` (its weights and activations).
        keys: (B, h·w, C) image tokens after the transformer.

    Returns:
        (B, h, w, 2, 2, 2, 2, C/8) features: pixel (4i + 2a + c, 4j + 2b + d) of the
        (4h, 4w) feature map is ``[:, i, j, a, b, c, d]``.
    """
    if not _is_sam_upscaling(upscaling):  # replaced or wrapped modules: run them as they are
        image = keys.transpose(1, 2).reshape(keys.shape[0], keys.shape[-1], height, width)
        return image_to_blocks(upscaling(image))
    # The layer types _is_sam_upscaling checked.
    conv1, norm, act1, conv2, act2 = cast(
        tuple[nn.ConvTranspose2d, LayerNorm2d, nn.Module, nn.ConvTranspose2d, nn.Module],
        tuple(upscaling),
    )
    x = keys.reshape(keys.shape[0], height, width, keys.shape[-1])
    x = _block_linear(conv1, x)  # (B, h, w, 2, 2, C/4)
    x = F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps)
    # The normalised tensor is ours alone: its GELU may overwrite it (inference only).
    x = torch.ops.aten.gelu_(x) if _is_exact_gelu(act1) and eager_inference() else act1(x)
    return _block_linear(conv2, x, act2)  # (B, h, w, 2, 2, 2, 2, C/8)


def _is_exact_gelu(module: nn.Module | None) -> bool:
    return type(module) is nn.GELU and module.approximate == "none"


def _is_sam_upscaling(upscaling: nn.Module) -> bool:
    def is_block_conv(module: nn.Module) -> bool:
        return (
            type(module) is nn.ConvTranspose2d
            and module.kernel_size == (2, 2)
            and module.stride == (2, 2)
            and module.padding == (0, 0)
            and module.output_padding == (0, 0)
            and module.dilation == (1, 1)
            and module.groups == 1
        )

    modules = list(upscaling.children()) if isinstance(upscaling, nn.Sequential) else []
    return (
        len(modules) == 5
        and is_block_conv(modules[0])
        and type(modules[1]) is LayerNorm2d
        and is_block_conv(modules[3])
    )


def image_to_blocks(image: torch.Tensor) -> torch.Tensor:
    """(B, C, 4h, 4w) image layout -> (B, h, w, 2, 2, 2, 2, C) block layout."""
    batch, channels, height, width = image.shape
    blocks = image.reshape(batch, channels, height // 4, 2, 2, width // 4, 2, 2)
    return blocks.permute(0, 2, 5, 3, 6, 4, 7, 1)  # (B, i, j, a, b, c, d, C)


def blocks_to_image(blocks: torch.Tensor) -> torch.Tensor:
    """(B, h, w, 2, 2, 2, 2, C) block layout -> (B, C, 4h, 4w) image layout."""
    batch, height, width = blocks.shape[:3]
    image = blocks.permute(0, 7, 1, 3, 5, 2, 4, 6)  # (B, C, h, a, c, w, b, d)
    return image.reshape(batch, blocks.shape[-1], 4 * height, 4 * width)


def read_block_masks(hyper_in: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
    """:func:`read_masks` on features in the block layout of :func:`upscale_blocks`.

    Args:
        hyper_in: (B, T, C) one weight vector per mask.
        blocks: (B, h, w, 2, 2, 2, 2, C) features.

    Returns:
        (B, T, 4h, 4w) mask logits.
    """
    batch, height, width = blocks.shape[:3]
    flat = blocks.reshape(batch, -1, blocks.shape[-1])  # (B, 16·h·w, C)
    masks = (hyper_in @ flat.transpose(1, 2)).reshape(batch, -1, height, width, 2, 2, 2, 2)
    masks = masks.permute(0, 1, 2, 4, 6, 3, 5, 7)  # (B, T, h, a, c, w, b, d)
    return masks.reshape(batch, hyper_in.shape[1], 4 * height, 4 * width)
