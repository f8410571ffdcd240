"""SAM-Med2D: SAM with an adapter in every ViT block (``image_encoder.blocks.{i}.Adapter.*``,
:mod:`samforge.models.sam.adapter`), fine-tuned at 256² with its own preprocessing.

It is SAM's family with ``SamConfig.encoder_adapter`` set: the adapters belong to the image
encoder, which any family's encoder can carry. Its code saves and loads
``{"model": state}``.
"""

from __future__ import annotations

import re
from typing import Any

from ..sam.model import Sam
from .record import ModelFamily, StateDict

ADAPTER_KEY = re.compile(r"^image_encoder\.blocks\.\d+\.Adapter\.")
# The first linear layer of the channel gate: (dim · adapter_mlp_ratio, dim).
_ADAPTER_GATE = re.compile(r"^image_encoder\.blocks\.\d+\.Adapter\.channel\.0\.weight$")


def is_adapter_key(key: str) -> bool:
    return ADAPTER_KEY.match(key) is not None


def adapter_fields(state: StateDict) -> dict[str, Any]:
    """``encoder_adapter`` and the adapters' ``adapter_mlp_ratio``, from the gate's shape."""
    fields: dict[str, Any] = {"encoder_adapter": True}
    gate = next((tensor for key, tensor in state.items() if _ADAPTER_GATE.match(key)), None)
    if gate is not None and gate.ndim == 2:
        fields["adapter_mlp_ratio"] = gate.shape[0] / gate.shape[1]
    return fields


SAMMED2D = ModelFamily(
    name="SAM-Med2D",
    family="sam",
    model_class=Sam,
    owns_key=is_adapter_key,
    config_fields=adapter_fields,
    export_layout="model",
    preprocessing="sammed2d",
)
