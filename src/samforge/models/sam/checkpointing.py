"""Activation checkpointing of encoder blocks: trade a second forward pass of each block
for not keeping its activations until the backward pass."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


def run_block(block: nn.Module, x: torch.Tensor, checkpointed: bool) -> torch.Tensor:
    """``block(x)``; with ``checkpointed`` while autograd records, only ``x`` is kept and
    the block runs again in the backward pass (non-reentrant ``torch.utils.checkpoint``,
    which supports inputs that need no gradient, e.g. under a frozen patch embedding)."""
    if checkpointed and torch.is_grad_enabled():
        output: torch.Tensor = checkpoint(block, x, use_reentrant=False)
        return output
    return block(x)
