"""MONAI's ``UNet`` (2D, 3D) and ``SwinUNETR`` (3D) as semantic models: the baselines
without SAM that every comparison table needs, trained by the same engine and objective.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ...errors import ConfigError
from .base import SemanticModel
from .info import SemanticInfo

# MONAI's tutorial settings for each network (the spleen / BTCV examples).
MONAI_DEFAULTS: dict[str, dict[str, Any]] = {
    "monai:unet": {
        "channels": [16, 32, 64, 128, 256],
        "strides": [2, 2, 2, 2],
        "num_res_units": 2,
        "norm": "batch",
    },
    "monai:swinunetr": {"feature_size": 48},
}
# SwinUNETR halves the patch five times.
SWIN_DIVISOR = 32


class MonaiSemanticModel(SemanticModel):
    """A MONAI network labelling ``info``'s classes; ``forward`` is the network itself.

    Args:
        name: ``"monai:unet"`` or ``"monai:swinunetr"``.
        info: classes, patch size, input channels and intensity rule.
        settings: the network's keyword arguments (MONAI's names); by default
            :data:`MONAI_DEFAULTS`.
    """

    def __init__(
        self, name: str, info: SemanticInfo, settings: dict[str, Any] | None = None
    ) -> None:
        super().__init__()
        if name not in MONAI_DEFAULTS:
            raise ConfigError(
                f"unknown MONAI model {name!r}; choose one of {list(MONAI_DEFAULTS)}."
            )
        self.architecture, self.info = name, info
        self.settings = dict(MONAI_DEFAULTS[name] if settings is None else settings)
        self.network = _build(name, info, self.settings)
        self.provenance = {"source": f"{name} initialised at random"}

    def network_settings(self) -> dict[str, Any]:
        return {"monai": self.settings}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def _build(name: str, info: SemanticInfo, settings: dict[str, Any]) -> nn.Module:
    common: dict[str, Any] = {"in_channels": info.in_channels, "out_channels": info.num_classes}
    if name == "monai:unet":
        from monai.networks.nets import UNet

        divisor = math.prod(settings.get("strides", [2, 2, 2, 2]))
        if any(size % divisor for size in info.patch_size):
            raise ConfigError(
                f"monai:unet with strides {settings.get('strides')} needs patch sizes that are "
                f"multiples of {divisor}; got {info.patch_size}. Choose such a patch_size."
            )

        return UNet(spatial_dims=info.spatial_dims, **common, **settings)
    if info.spatial_dims != 3 or any(size % SWIN_DIVISOR for size in info.patch_size):
        raise ConfigError(
            f"monai:swinunetr labels volumes in patches whose sizes are multiples of "
            f"{SWIN_DIVISOR}; got a {info.spatial_dims}D patch {info.patch_size}."
        )
    from monai.networks.nets import SwinUNETR

    return SwinUNETR(spatial_dims=3, **common, **settings)
