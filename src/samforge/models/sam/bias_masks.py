"""The additive relative-position bias of one attention slice, written into a mask for
``scaled_dot_product_attention`` (:func:`.image_encoder.attention_with_relative_positions`):
the broadcast sum ``rel_h[..., :, None] + rel_w[..., None, :]``, or the same bits from one
product where PyTorch's broadcast add is slow."""

from __future__ import annotations

from collections.abc import Callable

import torch

# Windows at most this many rows + columns (ViT-B's 14 + 14) get their bias from one product
# in bf16 on CPU (:func:`mask_writer`).
BIAS_PRODUCT_MAX_TERMS = 32

MaskWriter = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def broadcast_sum(
    rel_h: torch.Tensor, rel_w: torch.Tensor, out: torch.Tensor | None
) -> torch.Tensor:
    """(..., H), (..., W) -> (..., H, W) rel_h[..., :, None] + rel_w[..., None, :], written
    into ``out`` if given."""
    if out is None:
        return torch.add(rel_h[..., :, None], rel_w[..., None, :])
    return torch.add(rel_h[..., :, None], rel_w[..., None, :], out=out)


def mask_writer(rel_h: torch.Tensor, rel_w: torch.Tensor) -> MaskWriter:
    """How the bias of one slice is written: the broadcast sum, or, for small windows in
    bf16 on CPU, one product of the terms [rel_h, rel_w] with a 0/1 matrix that picks
    rel_h[i] and rel_w[j] for column i·W + j.

    PyTorch's broadcast add of 14×14 windows in bf16 runs far below memory speed (3.1 ms
    per slice of 4 windows × 12 heads against 0.33 ms for the product, 2 threads; about 9 %
    of a ViT-B forward): the product is the same bits, since its fp32 accumulator adds
    exactly rel_h[i]·1 + rel_w[j]·1 (and zeros) before the one rounding to bf16 that the
    add makes too. In fp32 the sum stays (the gain is small, and an fp32 product may run
    at reduced internal precision when a user allows it)."""
    height, width = rel_h.shape[-1], rel_w.shape[-1]
    if (
        rel_h.dtype != torch.bfloat16
        or rel_h.device.type != "cpu"
        or height + width > BIAS_PRODUCT_MAX_TERMS
    ):
        return broadcast_sum
    columns = torch.arange(height * width, device=rel_h.device)
    selector = rel_h.new_zeros(height + width, height * width)
    selector[columns // width, columns] = 1
    selector[height + columns % width, columns] = 1

    def product(rows: torch.Tensor, cols: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:
        terms = torch.cat([rows, cols], dim=-1).flatten(0, -2)
        if out is None:
            return (terms @ selector).view(*rows.shape, width)
        torch.mm(terms, selector, out=out.view(-1, height * width))
        return out

    return product
