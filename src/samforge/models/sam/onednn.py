"""oneDNN's fused linear kernels for CPU inference (the image encoder's linear layers and the
mask decoder's upscaling).

``torch.ops.mkldnn._linear_pointwise`` (the kernel inductor emits for CPU linear layers)
applies the bias, an exact GELU or a residual sum inside the matrix product, where
``F.linear`` first copies the bias into its output and every following element-wise op
makes another pass over memory and another parallel region. A ViT-B MLP on a 64×64 grid
takes three operations instead of eight token slices of five: 1.26× faster in bf16 at one
thread, the same in fp32, 2× at two threads on a loaded machine (docs/performance.md).
Inference only: autograd has no derivative for these ops, and a traced graph (ONNX) or
``torch.compile`` must see the plain ones.
"""

from __future__ import annotations

import torch
from torch import nn

# Off: the plain modules everywhere (benchmarks/bench_encoder.py times both). A build
# without these private ops (another platform or torch version) takes the plain modules.
ENABLED = hasattr(torch.ops.mkldnn, "_linear_pointwise")
# oneDNN has no bf16 inner product on CPUs without AVX-512 (AVX2 only: "could not create a
# primitive descriptor"); there bf16 takes the plain modules.
BF16_ENABLED = (
    ENABLED
    and hasattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported")
    and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
)


def fused_kernels_apply(x: torch.Tensor, *layers: nn.Module) -> bool:
    """Whether :func:`linear` and :func:`residual_mlp` may run x through oneDNN: plain
    ``nn.Linear`` layers (not a PEFT wrapper such as LoRA's, whose forward differs), CPU
    inference in fp32 or bf16 with the layers' dtype, outside autocast (these ops do not
    cast), tracing and compilation."""
    return all(
        type(layer) is nn.Linear and layer.weight.dtype == x.dtype for layer in layers
    ) and fused_kernels_take(x)


def fused_kernels_take(x: torch.Tensor) -> bool:
    """:func:`fused_kernels_apply` without the layers: whether x may go through oneDNN
    (bf16 only where oneDNN supports it on this CPU)."""
    # Compilation first: torch.compile resolves it without a graph break.
    return (
        ENABLED
        and not torch.compiler.is_compiling()
        and x.device.type == "cpu"
        and (x.dtype == torch.float32 or (x.dtype == torch.bfloat16 and BF16_ENABLED))
        and not torch.is_grad_enabled()
        and not torch.is_autocast_enabled("cpu")
        and torch.backends.mkldnn.is_available()
        and not torch.jit.is_tracing()
    )


def linear(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """``layer(x)``: (..., in) -> (..., out), the bias added inside the product."""
    if not fused_kernels_apply(x, layer):
        return layer(x)
    return linear_weights(x, layer.weight, layer.bias)


def linear_weights(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, gelu: bool = False
) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, followed by an exact GELU if ``gelu``: (..., in) ->
    (..., out). Only where :func:`fused_kernels_take` and ``weight`` has x's dtype."""
    if gelu:
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "gelu", [], "none")
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def residual_mlp(
    residual: torch.Tensor, x: torch.Tensor, lin1: nn.Linear, lin2: nn.Linear
) -> torch.Tensor:
    """``residual + lin2(gelu(lin1(x)))`` with exact (erf) GELU: (..., D) -> (..., D).
    Only where :func:`fused_kernels_apply`; ``residual`` and ``x`` contiguous."""
    hidden = torch.ops.mkldnn._linear_pointwise(x, lin1.weight, lin1.bias, "gelu", [], "none")
    fused = torch.ops.mkldnn._linear_pointwise.binary
    output: torch.Tensor = fused(hidden, residual, lin2.weight, lin2.bias, "add")
    return output
