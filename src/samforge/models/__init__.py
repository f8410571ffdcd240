"""Architectures, configs, the model registry and checkpoint formats.

- :mod:`.sam`: SAM's components and the :class:`Sam` model;
- :mod:`.families`: one record per family (SAM, SAM-Med2D, RobustSAM, SAM-UNet) and the
  modules only that family has;
- :mod:`.checkpoints`: reading, shape inference, loading, export, registry, hub, fusion;
- :mod:`.onnx`: export to ONNX graphs (SAM's ONNX decoder signature), checked with ONNX
  Runtime;
- :mod:`.config`: :class:`SamConfig` and the named architectures; :mod:`.peft`: LoRA and
  singular-value tuning.

Code outside ``samforge.models`` imports the names below from here.
"""

from .checkpoints.export import export_model, export_official
from .checkpoints.fusion import fuse_modules
from .checkpoints.loading import load_model
from .checkpoints.registry import get_model_spec, list_models
from .config import ARCHITECTURES, SamConfig, get_config
from .families import SamModel, build_model, family_of
from .families.robustsam.model import RobustSam
from .families.sam_unet.model import SamUNet
from .onnx.export import OnnxExport, export_onnx
from .sam.mask_decoder import DecoderOutput
from .sam.model import PromptableModel, Sam

__all__ = [
    "ARCHITECTURES",
    "DecoderOutput",
    "OnnxExport",
    "PromptableModel",
    "RobustSam",
    "Sam",
    "SamConfig",
    "SamModel",
    "SamUNet",
    "build_model",
    "export_model",
    "export_official",
    "export_onnx",
    "family_of",
    "fuse_modules",
    "get_config",
    "get_model_spec",
    "list_models",
    "load_model",
]
