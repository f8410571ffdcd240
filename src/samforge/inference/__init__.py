"""Inference: the 2D Predictor (and, later, volume propagation and semantic inference)."""

from .predictor import ImageEmbedding, Prediction, Predictor

__all__ = ["ImageEmbedding", "Prediction", "Predictor"]
