"""Architectures, configs, the model registry and checkpoint formats."""

from .build import SamModel, build_model
from .checkpoint import export_model, export_official, load_model
from .config import ARCHITECTURES, SamConfig, get_config
from .mask_decoder import DecoderOutput
from .registry import get_model_spec, list_models
from .robust_sam import RobustSam
from .sam import Sam, build_sam
from .sam_unet import SamUNet

__all__ = [
    "ARCHITECTURES",
    "DecoderOutput",
    "RobustSam",
    "Sam",
    "SamConfig",
    "SamModel",
    "SamUNet",
    "build_model",
    "build_sam",
    "export_model",
    "export_official",
    "get_config",
    "get_model_spec",
    "list_models",
    "load_model",
]
