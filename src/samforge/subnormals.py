"""Subnormal floats flushed to zero on the CPU, for a block of work.

The exact GELU's derivative underflows to subnormal floats (below 1.2e-38) far left of
zero, and x86 CPUs compute with those through a slow microcode path: the products that take
such gradients (the mask decoder's upscaling, in the backward pass) ran 10–25× slower than
their size warrants, and CPU training twice as slow (docs/training.md, "Speed on a CPU").
Values that small change nothing a loss or a mask can show; TensorFlow flushes them on CPUs
by default.

The switch is per thread, and a thread inherits it from the thread that creates it: set
before torch starts its worker threads (as the ``samforge`` command does) it reaches every
thread; set later, only the calling thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def subnormals_flushed() -> Iterator[None]:
    """Flush subnormals to zero in the calling thread (and the threads it creates) inside
    the block; restore the thread's previous setting after it."""
    was_flushing = flushing_subnormals()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(was_flushing)


def flushing_subnormals() -> bool:
    """Whether the calling thread flushes subnormal floats to zero (PyTorch has no getter)."""
    return float(torch.tensor([1e-40]) * 2.0) == 0.0
