"""Wrapping a model's encoder layers in PEFT layers: :func:`apply_lora`, :func:`apply_svd`,
and the block and layer selection that freeze policies share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from torch import nn

from ...errors import ConfigError
from .layers import PEFT_LAYERS, LoRALinear, PeftKind, SVDLinear, check_lora_settings
from .merging import peft_kind

# Linear layers that can be wrapped, by short name -> path inside an encoder block.
TARGET_PATHS: dict[str, str] = {
    "qkv": "attn.qkv",
    "proj": "attn.proj",
    "lin1": "mlp.lin1",
    "lin2": "mlp.lin2",
}
ATTENTION_TARGETS = ("qkv", "proj")
MLP_TARGETS = ("lin1", "lin2")


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
    check_lora_settings(rank, alpha, dropout)
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


def _submodule(module: nn.Module, path: str) -> nn.Module | None:
    found: nn.Module | None = module
    for part in path.split("."):
        found = getattr(found, part, None)
        if found is None:
            return None
    return found
