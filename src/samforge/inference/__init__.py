"""Inference: the 2D Predictor and prompt propagation through volumes."""

from .prediction import ImageEmbedding, Prediction
from .predictor import Predictor
from .propagation import PropagationResult, PropagationSettings, propagate

__all__ = [
    "ImageEmbedding",
    "Prediction",
    "Predictor",
    "PropagationResult",
    "PropagationSettings",
    "propagate",
]
