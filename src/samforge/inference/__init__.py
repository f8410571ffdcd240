"""Inference: the 2D Predictor and prompt propagation through volumes."""

from .predictor import ImageEmbedding, Prediction, Predictor
from .propagation import PropagationResult, PropagationSettings, propagate

__all__ = [
    "ImageEmbedding",
    "Prediction",
    "Predictor",
    "PropagationResult",
    "PropagationSettings",
    "propagate",
]
