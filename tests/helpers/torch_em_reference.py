"""torch_em's UNETR, the decoder micro-sam and MedicoSAM train and publish, as an
independent reference for samforge's semantic decoder.

``torch_em/__init__.py`` imports ``elf`` (not on PyPI) for its data loaders; the model
modules need only torch, so the two packages are stubbed and ``torch_em.model.unetr``
imported alone. Skips the calling test when torch-em is not installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections import OrderedDict

import pytest
import torch


def torch_em_unetr_class():
    if "torch_em.model.unetr" in sys.modules:
        return sys.modules["torch_em.model.unetr"].UNETR
    spec = importlib.util.find_spec("torch_em")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("torch-em is not installed (pip install --no-deps torch-em)")
    root = next(iter(spec.submodule_search_locations))
    for name, path in (("torch_em", root), ("torch_em.model", f"{root}/model")):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [path]
            sys.modules[name] = package
    return importlib.import_module("torch_em.model.unetr").UNETR


def medicosam_unetr(encoder: torch.nn.Module, out_channels: int, *, transposed: bool = False):
    """MedicoSAM's semantic UNETR around a SAM image encoder: SAM statistics, no skip
    connections from the encoder, inputs resized to the encoder's frame (micro-sam's
    ``get_unetr`` settings), with its batch-norm statistics randomised so that eval-mode
    outputs depend on them."""
    unetr = torch_em_unetr_class()(
        backbone="sam",
        encoder=encoder,
        out_channels=out_channels,
        use_sam_stats=True,
        final_activation=None,
        use_skip_connection=False,
        resize_input=True,
        use_conv_transpose=transposed,
    )
    generator = torch.Generator().manual_seed(3)
    for module in unetr.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator))
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return unetr.eval()


def decoder_state(unetr: torch.nn.Module) -> OrderedDict:
    """micro-sam's ``decoder_state``: the UNETR's tensors outside its encoder."""
    return OrderedDict(
        (key, value) for key, value in unetr.state_dict().items() if not key.startswith("encoder")
    )
