"""samforge: Segment Anything (SAM) as a foundation model for medical images.

>>> import samforge
>>> model = samforge.load_model("sam_vit_b")          # or a checkpoint path
>>> predictor = samforge.Predictor(model)
>>> predictor.set_image(image)                         # (H, W) or (H, W, 3), any dtype
>>> result = predictor.predict(boxes=[[40, 60, 120, 140]])
>>> result.masks                                       # (objects, masks, H, W) bool
"""

import os as _os
import sys as _sys

# PyTorch's CPU allocator backs tensors of 2 MB and more with transparent huge pages when
# this is set (pytorch/pytorch#107697), as NumPy does for its arrays by default. Otherwise
# every fresh activation is faulted in 4 KB at a time: decoding 32 boxes in one call, and
# the interactive protocol, took 1.2× as long (docs/performance.md). PyTorch reads it at its
# first allocation, so it only applies when samforge is imported before torch, as in the
# `samforge` command; THP_MEM_ALLOC_ENABLE=0 keeps PyTorch's default.
if "torch" not in _sys.modules:
    _os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

from .errors import SamforgeError
from .inference import Prediction, Predictor, SemanticPredictor
from .models import Sam, SamConfig, build_model, export_official, load_model

__version__ = "0.1.0"

__all__ = [
    "Prediction",
    "Predictor",
    "Sam",
    "SamConfig",
    "SamforgeError",
    "SemanticPredictor",
    "__version__",
    "build_model",
    "export_official",
    "load_model",
]
