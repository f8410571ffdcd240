"""The two PEFT layers: :class:`LoRALinear` (a low-rank delta beside ``nn.Linear``) and
:class:`SVDLinear` (the singular values of the weight to train); each folds back into a
plain ``nn.Linear`` (``merged()``)."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError

PeftKind = Literal["lora", "svd"]


class LoRALinear(nn.Module):
    """An ``nn.Linear`` plus a low-rank delta to train.

    ``forward(x) = base(x) + (alpha / rank) · dropout(x) @ lora_A.T @ lora_B.T``.

    Args:
        base: the layer to wrap; it is kept as ``self.base``, its ``requires_grad``
            unchanged.
        rank: r, the inner dimension of the delta (≥ 1).
        alpha: scaling numerator; the delta is scaled by ``alpha / rank``. Default ``rank``
            (scaling 1).
        dropout: dropout probability on the delta's input (0 disables it).
    """

    def __init__(
        self, base: nn.Linear, rank: int = 4, alpha: float | None = None, dropout: float = 0.0
    ) -> None:
        super().__init__()
        check_lora_settings(rank, alpha, dropout)
        self.base = base
        self.rank = int(rank)
        self.alpha = float(rank if alpha is None else alpha)
        self.scaling = self.alpha / self.rank
        weight = base.weight
        self.lora_A = nn.Parameter(
            torch.empty(self.rank, base.in_features, device=weight.device, dtype=weight.dtype)
        )
        self.lora_B = nn.Parameter(
            torch.zeros(base.out_features, self.rank, device=weight.device, dtype=weight.dtype)
        )
        # As HF peft and the reference LoRA code: A like nn.Linear's default, B zero.
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def delta_weight(self) -> torch.Tensor:
        """The (out, in) dense delta ``scaling · B @ A``, computed in float64."""
        delta = self.lora_B.detach().double() @ self.lora_A.detach().double()
        return delta * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        delta = F.linear(F.linear(self.dropout(x), self.lora_A), self.lora_B)
        return self.base(x) + self.scaling * delta

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with weight ``W + scaling · B @ A`` (same bias, device,
        dtype and ``requires_grad`` as the base)."""
        weight = self.base.weight
        linear = _new_linear(self.base, weight.device, weight.dtype)
        linear.weight.copy_((weight.double() + self.delta_weight()).to(weight.dtype))
        if self.base.bias is not None:
            linear.bias.copy_(self.base.bias)
            linear.bias.requires_grad_(self.base.bias.requires_grad)
        linear.weight.requires_grad_(weight.requires_grad)
        return linear

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha:g}, scaling={self.scaling:g}"


class SVDLinear(nn.Module):
    """A linear layer ``W = U diag(S) Vh`` whose singular values are the trainable part.

    ``U`` (out × k) and ``Vh`` (k × in), k = min(in, out), are persistent buffers (fixed,
    saved in state dicts so a checkpoint resumes them); ``singular_values`` (k) is a
    parameter; the bias is the base's, with its ``requires_grad``. The decomposition is
    computed in float64 and cast to the layer's dtype, so at initialisation the layer equals
    the base to that dtype's precision.
    """

    U: torch.Tensor  # buffers
    Vh: torch.Tensor
    bias: nn.Parameter | None

    def __init__(self, base: nn.Linear) -> None:
        super().__init__()
        weight = base.weight.detach()
        # float64 SVD on the CPU (or the GPU it lives on); MPS has no float64.
        device = weight.device if weight.device.type == "cuda" else torch.device("cpu")
        u, s, vh = torch.linalg.svd(weight.to(device, torch.float64), full_matrices=False)
        self.in_features = base.in_features
        self.out_features = base.out_features
        self.register_buffer("U", u.to(weight.device, weight.dtype).contiguous())
        self.register_buffer("Vh", vh.to(weight.device, weight.dtype).contiguous())
        self.singular_values = nn.Parameter(s.to(weight.device, weight.dtype))
        if base.bias is not None:
            self.bias = nn.Parameter(
                base.bias.detach().clone(), requires_grad=base.bias.requires_grad
            )
        else:  # torch declares Linear.bias only by assigning a Parameter: mypy sees it
            # as always set, but Linear(bias=False) holds None.
            self.register_parameter("bias", None)  # type: ignore[unreachable]

    @property
    def weight(self) -> torch.Tensor:
        """The current dense (out, in) weight ``U diag(S) Vh`` (differentiable in S)."""
        return (self.U * self.singular_values) @ self.Vh

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with weight ``U diag(S) Vh`` (reconstructed in float64);
        the weight trains if the singular values did, the bias keeps its flag."""
        dtype = self.U.dtype
        linear = _new_linear(self, self.U.device, dtype)
        dense = (self.U.double() * self.singular_values.double()) @ self.Vh.double()
        linear.weight.copy_(dense.to(dtype))
        linear.weight.requires_grad_(self.singular_values.requires_grad)
        if self.bias is not None:
            linear.bias.copy_(self.bias)
            linear.bias.requires_grad_(self.bias.requires_grad)
        return linear

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"singular_values={self.singular_values.numel()}"
        )


PEFT_LAYERS: tuple[type[LoRALinear], type[SVDLinear]] = (LoRALinear, SVDLinear)
# Names of the trainable tensors that PEFT layers add.
PEFT_PARAMETER_NAMES = ("lora_A", "lora_B", "singular_values")


def check_lora_settings(rank: int, alpha: float | None, dropout: float) -> None:
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ConfigError(f"LoRA rank must be an integer ≥ 1, got {rank!r}.")
    if alpha is not None and not (isinstance(alpha, int | float) and alpha > 0):
        raise ConfigError(f"LoRA alpha must be > 0 (default: the rank), got {alpha!r}.")
    if not (isinstance(dropout, int | float) and 0 <= dropout < 1):
        raise ConfigError(f"LoRA dropout must lie in [0, 1), got {dropout!r}.")


def _new_linear(
    layer: nn.Linear | SVDLinear, device: torch.device, dtype: torch.dtype
) -> nn.Linear:
    return nn.Linear(
        layer.in_features,
        layer.out_features,
        bias=getattr(layer, "bias", None) is not None,
        device=device,
        dtype=dtype,
    )
