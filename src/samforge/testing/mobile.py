"""MobileSAM's reference code (the ``mobile_sam`` package, from PyPI's ``mobilesam-mirror``)
as an independent reference.

Its TinyViT module imports four names from ``timm`` (``DropPath``, ``to_2tuple``,
``trunc_normal_``, ``register_model``), and ``timm`` drags in torchvision; when ``timm`` is
absent, :func:`install_timm_stand_in` puts a minimal one into ``sys.modules`` with the
semantics MobileSAM relies on at inference (drop path is the identity in eval mode and at
rate 0, which MobileSAM builds with). Its predictor takes the same torchvision stand-in as
the official package (:mod:`.references`). The package is imported on the first call.
"""

from __future__ import annotations

import collections.abc
import importlib.util
import sys
import types
from types import ModuleType
from typing import Any

import torch
from torch import nn

from .official import randomize_parameters
from .references import import_reference
from .robust import randomize_batch_norm_statistics

INSTALL = "pip install --no-deps mobilesam-mirror==1.0.0"


class _DropPath(nn.Module):
    """timm's DropPath for what MobileSAM runs: the identity in eval mode."""

    def __init__(self, drop_prob: float | None = None) -> None:
        super().__init__()
        self.drop_prob = drop_prob or 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.drop_prob > 0:
            raise NotImplementedError("the timm stand-in only runs drop path in eval mode")
        return x


def _to_2tuple(value: Any) -> tuple[Any, Any]:
    if isinstance(value, collections.abc.Iterable) and not isinstance(value, str):
        first, second = tuple(value)
        return first, second
    return value, value


def _register_model(function: Any) -> Any:
    return function


def install_timm_stand_in() -> None:
    """Put a minimal ``timm`` into ``sys.modules`` if the real one is absent."""
    # Already imported (the real one, or this stand-in, which has no import spec)?
    if "timm" in sys.modules or importlib.util.find_spec("timm") is not None:
        return
    timm = types.ModuleType("timm")
    models = types.ModuleType("timm.models")
    layers = types.ModuleType("timm.models.layers")
    registry = types.ModuleType("timm.models.registry")
    layers.__dict__.update(
        DropPath=_DropPath, to_2tuple=_to_2tuple, trunc_normal_=nn.init.trunc_normal_
    )
    registry.__dict__.update(register_model=_register_model)
    models.__dict__.update(layers=layers, registry=registry)
    timm.__dict__.update(models=models)
    sys.modules.update(
        {
            "timm": timm,
            "timm.models": models,
            "timm.models.layers": layers,
            "timm.models.registry": registry,
        }
    )


def import_mobile_sam() -> ModuleType:
    """The ``mobile_sam`` package (timm and torchvision stand-ins installed if needed).

    Raises:
        ReferenceUnavailableError: it is not installed.
    """
    install_timm_stand_in()
    return import_reference("mobile_sam", INSTALL)


def build_mobile_sam(seed: int = 0) -> torch.nn.Module:
    """MobileSAM as its own ``build_sam_vit_t`` builds it (TinyViT-5M at 1024²), with every
    parameter, attention bias and batch-norm statistic random (seeded), in eval mode.

    TinyViT's attention caches its bias table when switched to eval mode, so ``eval()`` is
    called after the weights are drawn (and must be after any later ``load_state_dict``).
    """
    mobile_sam = import_mobile_sam()
    torch.manual_seed(seed)
    sam = mobile_sam.build_sam_vit_t()
    randomize_parameters(sam, seed)
    randomize_batch_norm_statistics(sam, seed)
    generator = torch.Generator().manual_seed(seed + 2)
    with torch.no_grad():
        for name, parameter in sam.named_parameters():
            # O(1) attention biases and batch-norm scales, so both visibly shape the output.
            if name.endswith("attention_biases"):
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
            elif name.endswith("bn.weight"):
                parameter.copy_(1 + 0.1 * torch.randn(parameter.shape, generator=generator))
    return sam.eval()


def mobile_sam_predictor(sam: torch.nn.Module) -> Any:
    """MobileSAM's ``SamPredictor`` of a MobileSAM model."""
    return import_mobile_sam().SamPredictor(sam)
