"""Parameter-efficient fine-tuning of the image encoder: LoRA and singular-value tuning.

Both methods wrap ``nn.Linear`` layers inside ``model.image_encoder.blocks[i]`` (attention
``attn.qkv`` and ``attn.proj``, optionally the MLP's ``mlp.lin1`` and ``mlp.lin2``), leave
the wrapped model's outputs unchanged at initialisation, and add small deltas to train:

- **LoRA** (Hu et al. 2021, as in HF ``peft``): ``W x + (alpha / r) · B A x`` with ``A``
  (r × in) Kaiming-uniform and ``B`` (out × r) zero, so the delta starts at exactly zero.
- **SVD** (singular-value fine-tuning, as in RobustMedSAM / SVDiff): ``W = U diag(S) Vh``;
  ``U`` and ``Vh`` are fixed buffers, the singular values ``S`` are the tensor to train.

Wrapping changes no ``requires_grad``: the new delta parameters are trainable, every other
parameter keeps its flag. Which parameters train is the freeze policy's business
(:func:`samforge.training.freeze.apply_freeze_policy` trains the deltas under every policy,
e.g. ``"encoder_frozen"`` for "frozen encoder + PEFT deltas").

:func:`merge_peft` folds the deltas back into plain ``nn.Linear`` layers, after which the
model's state dict has exactly the official SAM keys again and can be exported with
:func:`samforge.models.export_official`. A model that still holds PEFT layers has
extra keys (``...qkv.lora_A``, ``...qkv.base.weight``, ``...qkv.singular_values``, ...);
its state dict (e.g. a Lightning checkpoint) loads into a model prepared with the same
``apply_lora``/``apply_svd`` call.

Works on any model family whose encoder exposes ``image_encoder.blocks[i].attn.qkv`` etc.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

PeftKind = Literal["lora", "svd"]
ModuleT = TypeVar("ModuleT", bound=nn.Module)

# Linear layers that can be wrapped, by short name -> path inside an encoder block.
TARGET_PATHS: dict[str, str] = {
    "qkv": "attn.qkv",
    "proj": "attn.proj",
    "lin1": "mlp.lin1",
    "lin2": "mlp.lin2",
}
ATTENTION_TARGETS = ("qkv", "proj")
MLP_TARGETS = ("lin1", "lin2")


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
        _check_lora_settings(rank, alpha, dropout)
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


# --- Applying ---------------------------------------------------------------------------


def apply_lora(
    model: nn.Module,
    rank: int = 4,
    alpha: float | None = None,
    targets: Sequence[str] = ATTENTION_TARGETS,
    blocks: Iterable[int] | None = None,
    include_mlp: bool = False,
    dropout: float = 0.0,
) -> list[str]:
    """Wrap encoder Linear layers in :class:`LoRALinear`, in place.

    Args:
        model: a SAM-family model with ``model.image_encoder.blocks``.
        rank: LoRA rank r ≥ 1.
        alpha: scaling numerator (delta scaled by ``alpha / rank``); default ``rank``.
        targets: short names of the layers in each block: ``"qkv"``, ``"proj"``
            (attention), ``"lin1"``, ``"lin2"`` (MLP).
        blocks: encoder block indices (negative counts from the end); default all.
        include_mlp: also wrap ``mlp.lin1`` and ``mlp.lin2``.
        dropout: dropout probability on the LoRA branch's input.

    No ``requires_grad`` changes: the new ``lora_A``/``lora_B`` train, every other
    parameter keeps its flag; freezing is the freeze policy's business.

    Returns:
        Full names of the wrapped modules, e.g. ``"image_encoder.blocks.0.attn.qkv"``.

    Raises:
        ConfigError: rank < 1, alpha ≤ 0, dropout outside [0, 1), an unknown target, a
            block index out of range, a model without ``image_encoder.blocks``, a model that
            already holds SVD layers, or a target already wrapped.
    """
    _check_lora_settings(rank, alpha, dropout)
    return _apply(
        model,
        "lora",
        lambda linear: LoRALinear(linear, rank=rank, alpha=alpha, dropout=dropout),
        targets,
        blocks,
        include_mlp,
    )


def apply_svd(
    model: nn.Module,
    targets: Sequence[str] = ATTENTION_TARGETS,
    blocks: Iterable[int] | None = None,
    include_mlp: bool = False,
) -> list[str]:
    """Wrap encoder Linear layers in :class:`SVDLinear` (train singular values only).

    Arguments and errors as :func:`apply_lora` (without rank/alpha/dropout); the new
    ``singular_values`` train, every other parameter keeps its flag.

    Returns:
        Full names of the wrapped modules.
    """
    return _apply(model, "svd", SVDLinear, targets, blocks, include_mlp)


def _apply(
    model: nn.Module,
    kind: PeftKind,
    wrap: Any,
    targets: Sequence[str],
    blocks: Iterable[int] | None,
    include_mlp: bool,
) -> list[str]:
    encoder_blocks = encoder_blocks_of(model)
    names = _resolve_targets(targets, include_mlp)
    indices = resolve_block_indices(blocks, len(encoder_blocks), what="PEFT")
    present = peft_kind(model)
    if present is not None and present != kind:
        raise ConfigError(
            f"the model already holds {present.upper()} layers; it cannot also get "
            f"{kind.upper()} layers. Call samforge.models.peft.merge_peft(model) first to fold "
            f"the {present.upper()} deltas into the weights, or build a fresh model."
        )
    # Check everything before changing anything, so an error leaves the model untouched.
    plan: list[tuple[nn.Module, str, str]] = []
    for index in indices:
        for target in names:
            parent_path, attribute = TARGET_PATHS[target].rsplit(".", 1)
            full_name = f"image_encoder.blocks.{index}.{TARGET_PATHS[target]}"
            parent = _submodule(encoder_blocks[index], parent_path)
            layer = getattr(parent, attribute, None) if parent is not None else None
            if isinstance(layer, PEFT_LAYERS):
                raise ConfigError(
                    f"{full_name} is already wrapped by {type(layer).__name__}; apply PEFT "
                    "once per layer (merge_peft(model) folds existing deltas in)."
                )
            if parent is None or not isinstance(layer, nn.Linear):  # no parent: no layer
                found = "nothing" if layer is None else type(layer).__name__
                raise ConfigError(
                    f"PEFT target {target!r} expects an nn.Linear at {full_name}, found "
                    f"{found}; this model family does not have that layer."
                )
            plan.append((parent, attribute, full_name))
    for parent, attribute, _ in plan:
        setattr(parent, attribute, wrap(getattr(parent, attribute)))
    return [full_name for _, _, full_name in plan]


# --- Merging and inspecting -------------------------------------------------------------


@torch.no_grad()
def merge_peft(model: ModuleT) -> ModuleT:
    """Replace every PEFT layer by its merged ``nn.Linear``, in place; returns ``model``.

    Afterwards the state dict holds exactly the keys of the unwrapped architecture (the
    official SAM keys for SAM), ready for ``export_official``. A model without PEFT layers
    is returned unchanged.
    """
    replacements = [
        (name, module) for name, module in model.named_modules() if isinstance(module, PEFT_LAYERS)
    ]
    for name, module in replacements:
        parent_name, _, attribute = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attribute, module.merged())
    return model


def peft_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Name -> PEFT layer for every :class:`LoRALinear`/:class:`SVDLinear` in ``model``."""
    return {
        name: module for name, module in model.named_modules() if isinstance(module, PEFT_LAYERS)
    }


def has_peft(model: nn.Module) -> bool:
    """Whether ``model`` holds any LoRA or SVD layer."""
    return any(isinstance(module, PEFT_LAYERS) for module in model.modules())


def peft_kind(model: nn.Module) -> PeftKind | None:
    """``"lora"``, ``"svd"`` or ``None`` for the PEFT layers in ``model``."""
    kinds: set[PeftKind] = {
        "lora" if isinstance(module, LoRALinear) else "svd"
        for module in model.modules()
        if isinstance(module, PEFT_LAYERS)
    }
    if len(kinds) > 1:  # only possible by wrapping layers by hand
        raise ConfigError("the model mixes LoRA and SVD layers; merge_peft(model) first.")
    return next(iter(kinds), None)


def peft_parameter_names(model: nn.Module) -> list[str]:
    """Full names of the PEFT delta parameters (``lora_A``, ``lora_B``,
    ``singular_values``) in ``model``; their requires_grad is not consulted."""
    names = []
    for module_name, module in peft_modules(model).items():
        for parameter_name in PEFT_PARAMETER_NAMES:
            if isinstance(getattr(module, parameter_name, None), nn.Parameter):
                names.append(f"{module_name}.{parameter_name}")
    return names


def peft_summary(model: nn.Module) -> dict[str, Any]:
    """What PEFT the model holds, for logs and run metadata.

    Returns:
        ``kind`` ("lora", "svd" or None), ``rank`` (LoRA rank, a sorted list if layers
        differ, None for SVD/no PEFT), ``alpha`` (likewise), ``modules`` (wrapped module
        names), ``peft_parameters`` (number of PEFT delta parameters) and
        ``trainable_parameters`` (all parameters of the model with requires_grad).
    """
    modules = peft_modules(model)
    parameters = dict(model.named_parameters())
    lora = [module for module in modules.values() if isinstance(module, LoRALinear)]
    return {
        "kind": peft_kind(model),
        "rank": _single_or_list(module.rank for module in lora),
        "alpha": _single_or_list(module.alpha for module in lora),
        "modules": list(modules),
        "peft_parameters": sum(parameters[name].numel() for name in peft_parameter_names(model)),
        "trainable_parameters": sum(p.numel() for p in parameters.values() if p.requires_grad),
    }


# --- Helpers ----------------------------------------------------------------------------


def encoder_blocks_of(model: nn.Module) -> nn.ModuleList | Sequence[nn.Module]:
    """``model.image_encoder.blocks``, or a ConfigError saying what is missing."""
    encoder = getattr(model, "image_encoder", None)
    blocks = getattr(encoder, "blocks", None)
    if encoder is None or blocks is None:
        missing = "image_encoder" if encoder is None else "image_encoder.blocks"
        raise ConfigError(
            f"{type(model).__name__} has no {missing}; block-wise PEFT and freeze policies "
            "need a SAM-style ViT encoder (model.image_encoder.blocks[i]). Pass the SAM "
            "model itself, not a wrapper around it."
        )
    return blocks


def resolve_block_indices(blocks: Iterable[int] | None, depth: int, *, what: str) -> list[int]:
    """Sorted, de-duplicated non-negative block indices; negative ones count from the end.

    ``None`` means all ``depth`` blocks. Raises ConfigError for an index outside
    ``[-depth, depth)``, a non-integer or an empty selection.
    """
    if blocks is None:
        return list(range(depth))
    if isinstance(blocks, int):
        blocks = [blocks]
    chosen = set()
    for index in blocks:
        if isinstance(index, bool) or not isinstance(index, int):
            raise ConfigError(f"{what} block indices must be integers, got {index!r}.")
        if not -depth <= index < depth:
            raise ConfigError(
                f"{what} block index {index} is out of range: the encoder has {depth} blocks "
                f"(valid indices 0..{depth - 1}, or -{depth}..-1 from the end)."
            )
        chosen.add(index % depth)
    if not chosen:
        raise ConfigError(f"{what} block list is empty; give at least one index 0..{depth - 1}.")
    return sorted(chosen)


def _resolve_targets(targets: Sequence[str], include_mlp: bool) -> list[str]:
    if isinstance(targets, str):
        targets = [targets]
    unknown = [target for target in targets if target not in TARGET_PATHS]
    if unknown:
        raise ConfigError(
            f"unknown PEFT target(s) {unknown}; choose from {list(TARGET_PATHS)} "
            "(qkv/proj: attention, lin1/lin2: MLP)."
        )
    names = list(dict.fromkeys([*targets, *(MLP_TARGETS if include_mlp else ())]))
    if not names:
        raise ConfigError(f"no PEFT targets given; choose from {list(TARGET_PATHS)}.")
    return names


def _check_lora_settings(rank: int, alpha: float | None, dropout: float) -> None:
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ConfigError(f"LoRA rank must be an integer ≥ 1, got {rank!r}.")
    if alpha is not None and not (isinstance(alpha, int | float) and alpha > 0):
        raise ConfigError(f"LoRA alpha must be > 0 (default: the rank), got {alpha!r}.")
    if not (isinstance(dropout, int | float) and 0 <= dropout < 1):
        raise ConfigError(f"LoRA dropout must lie in [0, 1), got {dropout!r}.")


def _submodule(module: nn.Module, path: str) -> nn.Module | None:
    found: nn.Module | None = module
    for part in path.split("."):
        found = getattr(found, part, None)
        if found is None:
            return None
    return found


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


def _single_or_list(values: Iterable[float]) -> Any:
    distinct = sorted(set(values))
    if not distinct:
        return None
    return distinct[0] if len(distinct) == 1 else distinct


__all__ = [
    "PEFT_PARAMETER_NAMES",
    "TARGET_PATHS",
    "LoRALinear",
    "SVDLinear",
    "apply_lora",
    "apply_svd",
    "has_peft",
    "merge_peft",
    "peft_kind",
    "peft_modules",
    "peft_parameter_names",
    "peft_summary",
]
