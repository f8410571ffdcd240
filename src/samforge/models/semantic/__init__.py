"""Semantic segmentation models: every pixel or voxel gets one of the model's classes.

- :class:`SemanticInfo`: classes, spatial dims, patch size, input channels, intensity rule;
- :class:`SemanticModel`: the interface (``forward``: ``(B, in_channels, *patch_size)``
  intensities in [0, 1] -> ``(B, classes, *patch_size)`` logits);
- :class:`SamSemanticModel2d` (UNETR decoder on a SAM-family encoder, MedicoSAM's),
  :class:`SamSemanticModel3d` (depth adapters, MA-SAM style), :class:`MonaiSemanticModel`
  (MONAI's UNet and SwinUNETR baselines);
- :func:`load_semantic_model`, :func:`save_semantic_model`, :func:`export_sam_part`.
"""

from .base import SemanticModel
from .checkpoints import export_sam_part, load_semantic_model, save_semantic_model
from .depth import DepthAdapter, SamSemanticModel3d
from .info import SemanticInfo
from .monai_nets import MONAI_DEFAULTS, MonaiSemanticModel
from .sam2d import SamSemanticModel2d
from .unetr import UNETRDecoder, UNETRLayout

__all__ = [
    "MONAI_DEFAULTS",
    "DepthAdapter",
    "MonaiSemanticModel",
    "SamSemanticModel2d",
    "SamSemanticModel3d",
    "SemanticInfo",
    "SemanticModel",
    "UNETRDecoder",
    "UNETRLayout",
    "export_sam_part",
    "load_semantic_model",
    "save_semantic_model",
]
