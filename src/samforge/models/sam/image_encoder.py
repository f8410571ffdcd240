"""SAM's image encoder: a plain ViT with windowed attention, a few global-attention blocks
and decomposed relative positions, followed by a convolutional neck to 256 channels.

Parameter names follow the official ``segment_anything`` code so its checkpoints load
strictly. Attention runs through ``scaled_dot_product_attention`` with the relative-position
terms passed as an additive mask, built one cache-sized slice of (image, heads, queries) at
a time rather than whole (12·4096² floats for a ViT-B global block). In CPU inference the
linear layers run through oneDNN's fused kernels (bias, GELU and the MLP's residual sum
inside the matrix products, :mod:`samforge.models.sam.onednn`), elsewhere the MLP runs on
slices of tokens for the cache. While autograd records, attention takes the official
arithmetic (:func:`differentiable_attention`). All exact: fp32 results agree with the
official encoder to float rounding (tests/models/sam/test_fast_encoder.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import SamConfig
from . import onednn
from .adapter import Adapter
from .bias_masks import mask_writer
from .checkpointing import run_block
from .common import MLPBlock, encoder_neck
from .windows import window_partition, window_unpartition


class ImageEncoderViT(nn.Module):
    """(B, 3, S, S) normalised image -> (B, out_chans, S/16, S/16) embedding."""

    # Training's switch: recompute each block in the backward pass instead of keeping its
    # activations (samforge.models.sam.checkpointing).
    activation_checkpointing: bool = False

    def __init__(
        self,
        img_size: int = 1024,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        out_chans: int = 256,
        window_size: int = 14,
        global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11),
        adapter: bool = False,
        adapter_mlp_ratio: float = 0.25,
    ) -> None:
        super().__init__()
        self.img_size = img_size
        self.global_attn_indexes = tuple(global_attn_indexes)
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, embed_dim))
        self.blocks = nn.ModuleList(
            Block(
                dim=embed_dim,
                num_heads=num_heads,
                mlp_ratio=mlp_ratio,
                window_size=0 if index in global_attn_indexes else window_size,
                input_size=(grid, grid),
                adapter=adapter,
                adapter_mlp_ratio=adapter_mlp_ratio,
            )
            for index in range(depth)
        )
        self.neck = encoder_neck(embed_dim, out_chans)

    @classmethod
    def from_config(cls, config: SamConfig) -> ImageEncoderViT:
        return cls(
            img_size=config.image_size,
            patch_size=config.patch_size,
            embed_dim=config.encoder_embed_dim,
            depth=config.encoder_depth,
            num_heads=config.encoder_num_heads,
            mlp_ratio=config.mlp_ratio,
            out_chans=config.prompt_embed_dim,
            window_size=config.window_size,
            global_attn_indexes=tuple(config.encoder_global_attn_indexes),
            adapter=config.encoder_adapter,
            adapter_mlp_ratio=config.adapter_mlp_ratio,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_intermediates(x, ())[0]

    def forward_with_intermediates(
        self, x: torch.Tensor, indexes: tuple[int, ...]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The embedding and the token grids after the given blocks.

        Args:
            x: (B, 3, S, S) normalised image.
            indexes: blocks whose outputs to return, in increasing order.

        Returns:
            (B, out_chans, S/16, S/16) embedding and, per index, (B, S/16, S/16, D) tokens.
        """
        x = self.patch_embed(x) + self.pos_embed
        intermediates = []
        for index, block in enumerate(self.blocks):
            x = run_block(block, x, self.activation_checkpointing)
            if index in indexes:
                intermediates.append(x)
        return self.neck(x.permute(0, 3, 1, 2)), intermediates


class PatchEmbed(nn.Module):
    """(B, C, H, W) -> (B, H/p, W/p, D) by a strided convolution."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A channels-last convolution makes the (B, H', W', D) token grid contiguous, so the
        # residual stream of every block is; from a plain NCHW convolution it would stay
        # channels-first and each token-wise op would pay for strided access.
        x = self.proj(x.contiguous(memory_format=torch.channels_last))
        return x.permute(0, 2, 3, 1)


class Block(nn.Module):
    """Pre-norm transformer block on a (B, H, W, D) token grid; window attention when
    ``window_size > 0``, global attention otherwise; optionally SAM-Med2D's adapter beside
    the MLP."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        window_size: int,
        input_size: tuple[int, int],
        adapter: bool = False,
        adapter_mlp_ratio: float = 0.25,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(
            dim,
            num_heads=num_heads,
            input_size=input_size if window_size == 0 else (window_size, window_size),
        )
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(embedding_dim=dim, mlp_dim=int(dim * mlp_ratio), act=nn.GELU)
        self.window_size = window_size
        # SAM-Med2D's adapter beside the MLP, under its checkpoints' capitalised name.
        self.Adapter = Adapter(dim, adapter_mlp_ratio) if adapter else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp_residual(self.attention_residual(x))

    def attention_residual(self, x: torch.Tensor) -> torch.Tensor:
        """``x + attention(norm1(x))``; split from :meth:`mlp_residual` so that a wrapper
        (the 3D semantic model's depth adapters) can act between the two."""
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            height, width = x.shape[1], x.shape[2]
            x, padded_hw = window_partition(x, self.window_size)
            x = self.attn(x)
            x = window_unpartition(x, self.window_size, padded_hw, (height, width))
        else:
            x = self.attn(x)
        return shortcut + x

    def mlp_residual(self, x: torch.Tensor) -> torch.Tensor:
        """``x + mlp(norm2(x))`` (plus SAM-Med2D's adapter)."""
        if self.Adapter is not None:
            normed = self.norm2(x)
            return x + self.mlp(normed) + self.Adapter(normed)
        return self._residual_mlp(x)

    def _residual_mlp(self, x: torch.Tensor) -> torch.Tensor:
        """``x + mlp(norm2(x))``: through oneDNN's fused kernels where they apply, else a
        slice of tokens at a time: the (tokens, 4D) hidden activations of a slice stay in
        cache, where those of a whole 64×64 grid (48 MiB for ViT-B) would be written to and
        read back from memory twice."""
        if onednn.fused_kernels_apply(x, self.mlp.lin1, self.mlp.lin2):
            normed = self.norm2(x)
            return onednn.residual_mlp(x.contiguous(), normed, self.mlp.lin1, self.mlp.lin2)
        tokens = x.reshape(-1, x.shape[-1])
        if tokens.shape[0] <= MLP_TOKENS_PER_SLICE or x.requires_grad:
            return x + self.mlp(self.norm2(x))
        out = torch.empty_like(tokens)
        for start in range(0, tokens.shape[0], MLP_TOKENS_PER_SLICE):
            rows = tokens[start : start + MLP_TOKENS_PER_SLICE]
            torch.add(rows, self.mlp(self.norm2(rows)), out=out[start : start + len(rows)])
        return out.view(x.shape)


# Tokens per slice of the MLP: 512 tokens of ViT-B make 6 MiB of hidden activations.
MLP_TOKENS_PER_SLICE = 512


class Attention(nn.Module):
    """Multi-head self-attention over a (B, H, W, D) grid with decomposed relative
    positions (MViTv2): the bias of query (h, w) on key (h', w') is
    ``q · R_h[h - h'] + q · R_w[w - w']``."""

    def __init__(self, dim: int, num_heads: int, input_size: tuple[int, int]) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, D) normalised tokens (whole grid or windows) -> (B, H, W, D)."""
        batch, height, width, _ = x.shape
        qkv = onednn.linear(x, self.qkv).reshape(batch, height * width, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, head_dim)
        rel_h, rel_w = relative_position_terms(q, self.rel_pos_h, self.rel_pos_w, (height, width))
        x = attention_with_relative_positions(q, k, v, rel_h, rel_w, self.scale)
        x = x.permute(0, 2, 1, 3).reshape(batch, height, width, -1)
        return onednn.linear(x, self.proj)


def relative_positions(size: int, table: torch.Tensor) -> torch.Tensor:
    """Rows of a (2·size − 1, C) table for every (query, key) pair: (size, size, C)."""
    if table.shape[0] != 2 * size - 1:
        raise ValueError(
            f"relative-position table has {table.shape[0]} rows, expected {2 * size - 1} for "
            f"a {size}-token axis; load weights through samforge.load_model, which "
            "interpolates tables trained at another input size."
        )
    coords = torch.arange(size, device=table.device)
    return table[coords[:, None] - coords[None, :] + (size - 1)]


def relative_position_terms(
    q: torch.Tensor,
    rel_pos_h: torch.Tensor,
    rel_pos_w: torch.Tensor,
    size: tuple[int, int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two factors of the decomposed relative-position bias.

    Args:
        q: (B, heads, H·W, C) unscaled queries.
        rel_pos_h, rel_pos_w: (2H − 1, C), (2W − 1, C) tables.
        size: (H, W) of the token grid (queries and keys share it).

    Returns:
        (B, heads, H·W, H) and (B, heads, H·W, W): the bias of query q on key (h', w') is
        ``rel_h[..., q, h'] + rel_w[..., q, w']``.
    """
    height, width = size
    # Cast for autocast: the tables stay fp32 parameters while q is bf16.
    table_h = relative_positions(height, rel_pos_h).to(q.dtype)  # (H, H', C)
    table_w = relative_positions(width, rel_pos_w).to(q.dtype)  # (W, W', C)
    grid = q.reshape(*q.shape[:2], height, width, q.shape[-1])
    rel_h = torch.einsum("bnhwc,hkc->bnhwk", grid, table_h)
    rel_w = torch.einsum("bnhwc,wkc->bnhwk", grid, table_w)
    return rel_h.reshape(*q.shape[:3], height), rel_w.reshape(*q.shape[:3], width)


def relative_position_bias(
    q: torch.Tensor,
    rel_pos_h: torch.Tensor,
    rel_pos_w: torch.Tensor,
    size: tuple[int, int],
) -> torch.Tensor:
    """The whole additive bias (B, heads, H·W, H·W) of :func:`relative_position_terms`;
    :func:`attention_with_relative_positions` builds it a slice at a time instead."""
    rel_h, rel_w = relative_position_terms(q, rel_pos_h, rel_pos_w, size)
    return (rel_h[..., :, None] + rel_w[..., None, :]).flatten(-2)


# Elements of the additive mask built per ``scaled_dot_product_attention`` call, per thread:
# a slice this size stays in cache between being written and read by the attention kernel,
# where the whole mask (12·4096² floats for a ViT-B global block) would go through memory
# twice. Larger on accelerators, where the number of kernel launches matters more.
CPU_MASK_ELEMENTS_PER_THREAD = 1 << 20
ACCELERATOR_MASK_ELEMENTS = 1 << 28


def attention_with_relative_positions(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    rel_h: torch.Tensor,
    rel_w: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """``softmax(scale · q kᵀ + bias) v`` with the decomposed relative-position bias, the
    bias materialised one slice of (batch, heads, queries) at a time.

    Args:
        q, k, v: (B, heads, N, C) with N = H·W.
        rel_h, rel_w: (B, heads, N, H), (B, heads, N, W) from :func:`relative_position_terms`.
        scale: multiplies q kᵀ only, not the bias.

    Returns:
        (B, heads, N, C).
    """
    if torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, rel_h, rel_w)):
        return differentiable_attention(q, k, v, rel_h, rel_w, scale)
    batch, heads, tokens, _ = q.shape
    mask_shape = (rel_h.shape[-1], rel_w.shape[-1])
    if q.device.type == "cpu":
        budget = CPU_MASK_ELEMENTS_PER_THREAD * torch.get_num_threads()
    else:
        budget = ACCELERATOR_MASK_ELEMENTS
    pieces = attention_slices(batch, heads, tokens, budget)
    write_mask = mask_writer(rel_h, rel_w)
    if len(pieces) == 1:
        mask = write_mask(rel_h, rel_w, None)  # a fresh tensor: a traced graph has no out=
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.flatten(-2), scale=scale)
    out = q.new_empty(q.shape)
    # One buffer for every slice's mask: fresh allocations of this size would be mapped and
    # zeroed by the OS each time.
    largest = [
        len(range(*piece.indices(size))) for piece, size in zip(pieces[0], q.shape[:3], strict=True)
    ]
    buffer = rel_h.new_empty(*largest, *mask_shape)
    for index in pieces:
        by_row, by_column = rel_h[index], rel_w[index]
        mask = buffer[: by_row.shape[0], : by_row.shape[1], : by_row.shape[2]]
        write_mask(by_row, by_column, mask)
        keys = index[:2]
        out[index] = F.scaled_dot_product_attention(
            q[index], k[keys], v[keys], attn_mask=mask.flatten(-2), scale=scale
        )
    return out


def differentiable_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    rel_h: torch.Tensor,
    rel_w: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """:func:`attention_with_relative_positions` while autograd records: the official
    encoder's arithmetic, whole tensors, (B, heads, N, C) -> (B, heads, N, C).

    Neither of the inference paths suits training. PyTorch's CPU flash kernel cannot
    differentiate an additive mask, so ``scaled_dot_product_attention`` falls back to its
    unfused math path (with extra passes for rows that are all −∞); and autograd through
    the mask slices writes a zero-filled gradient of the whole q, k and v per slice. Both
    made a training forward+backward about 2× the official encoder's
    (docs/performance.md). One ``baddbmm`` adds the bias while computing q kᵀ.
    """
    batch, heads, tokens, channels = q.shape
    mask = (rel_h[..., :, None] + rel_w[..., None, :]).reshape(batch * heads, tokens, tokens)
    scores = torch.baddbmm(
        mask,
        q.reshape(batch * heads, tokens, channels),
        k.reshape(batch * heads, tokens, channels).transpose(1, 2),
        alpha=scale,
    )
    out = torch.bmm(scores.softmax(dim=-1), v.reshape(batch * heads, tokens, channels))
    return out.view(batch, heads, tokens, channels)


def attention_slices(
    batch: int, heads: int, tokens: int, budget: int
) -> list[tuple[slice, slice, slice]]:
    """(batch, heads, queries) index slices covering the attention, each slice's mask of
    at most ``budget`` elements where one query row allows. Whole images when they fit,
    else heads of one image, else query rows of one head: the attention kernel runs best
    on long runs of queries."""
    per_head = tokens * tokens
    everything = slice(None)
    if per_head * heads <= budget:
        step = budget // (per_head * heads)
        return [(slice(b, b + step), everything, everything) for b in range(0, batch, step)]
    if per_head <= budget:
        step = budget // per_head
        return [
            (slice(b, b + 1), slice(h, h + step), everything)
            for b in range(batch)
            for h in range(0, heads, step)
        ]
    step = max(budget // tokens, 1)
    return [
        (slice(b, b + 1), slice(h, h + 1), slice(r, r + step))
        for b in range(batch)
        for h in range(heads)
        for r in range(0, tokens, step)
    ]
