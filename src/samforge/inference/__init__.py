"""Inference: the 2D Predictor, prompt propagation through volumes, semantic labelling."""

from .prediction import ImageEmbedding, Prediction
from .predictor import Predictor
from .propagation import PropagationResult, PropagationSettings, propagate
from .semantic import SemanticPredictor

__all__ = [
    "ImageEmbedding",
    "Prediction",
    "Predictor",
    "PropagationResult",
    "PropagationSettings",
    "SemanticPredictor",
    "propagate",
]
