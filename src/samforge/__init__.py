"""samforge: Segment Anything (SAM) as a foundation model for medical images.

>>> import samforge
>>> model = samforge.load_model("sam_vit_b")          # or a checkpoint path
>>> predictor = samforge.Predictor(model)
>>> predictor.set_image(image)                         # (H, W) or (H, W, 3), any dtype
>>> result = predictor.predict(boxes=[[40, 60, 120, 140]])
>>> result.masks                                       # (objects, masks, H, W) bool
"""

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
