"""The one place training reads or sets a model's family.

The family is the config field that picks the model class (``SamConfig.decoder``, to be
renamed ``family``); training names it only here.
"""

from __future__ import annotations

from typing import Any

from ..models import SamConfig

SAM_UNET = "sam_unet"


def family_of(model: Any) -> str:
    """The family of a built samforge model: ``"sam"``, ``"robust"`` or ``"sam_unet"``."""
    return str(model.config.decoder)


def with_family(config: SamConfig, family: str, **changes: Any) -> SamConfig:
    """``config`` changed to another family (and any other changes)."""
    return config.with_changes(decoder=family, **changes)
