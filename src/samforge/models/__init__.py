"""Architectures, configs, the model registry and checkpoint formats."""

from .checkpoint import export_official, load_model
from .config import ARCHITECTURES, SamConfig, get_config
from .registry import get_model_spec, list_models
from .sam import Sam, build_sam

__all__ = [
    "ARCHITECTURES",
    "Sam",
    "SamConfig",
    "build_sam",
    "export_official",
    "get_config",
    "get_model_spec",
    "list_models",
    "load_model",
]
