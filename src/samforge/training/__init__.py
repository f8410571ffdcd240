"""Fine-tuning SAM-family models: the config, the objectives, freeze and PEFT policies,
and the Lightning engine that runs them.

``load_config``, ``PRESETS`` and ``TrainConfig`` load without Lightning; ``train`` and
``TrainResult`` import it when first used. The objective interface and registry (a new
objective is one file) are in :mod:`samforge.training.objectives`.
"""

from __future__ import annotations

from typing import Any

from .config import PRESETS, TrainConfig, load_config

__all__ = ["PRESETS", "TrainConfig", "TrainResult", "load_config", "train"]


def __getattr__(name: str) -> Any:
    if name in ("train", "TrainResult"):
        from . import engine  # Lightning loads only when training

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
