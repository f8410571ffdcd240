"""Folding PEFT deltas back into dense weights (:func:`merge_peft`) and reading what PEFT
a model holds (:func:`peft_kind`, :func:`peft_summary`, ...)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import torch
from torch import nn

from ...errors import ConfigError
from .layers import PEFT_LAYERS, PEFT_PARAMETER_NAMES, LoRALinear, PeftKind

ModuleT = TypeVar("ModuleT", bound=nn.Module)


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


def _single_or_list(values: Iterable[float]) -> Any:
    distinct = sorted(set(values))
    if not distinct:
        return None
    return distinct[0] if len(distinct) == 1 else distinct
