"""SemanticPredictor: sliding windows stitch to what one pass gives, any input size."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.semantic_models import PointwiseNet
from samforge import SemanticPredictor
from samforge.errors import ConfigError, InputImageError
from samforge.models.semantic import MonaiSemanticModel, SemanticInfo


def blobs(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Smooth random intensities (a CT-like int16 range), so labels form regions."""
    from scipy.ndimage import gaussian_filter

    noise = np.random.default_rng(seed).normal(size=shape)
    return (gaussian_filter(noise, 2.0) * 4000).astype(np.int16)


def volume_info(patch: tuple[int, ...]) -> SemanticInfo:
    return SemanticInfo(len(patch), ("background", "low", "high"), patch, 1, "percentile")


@pytest.mark.parametrize(
    ("shape", "patch"),
    [((20, 40, 36), (8, 16, 16)), ((53, 71), (24, 32))],  # odd sizes: partial windows
)
def test_sliding_windows_give_one_pass_labels(shape, patch):
    image = blobs(shape)
    windowed = PointwiseNet(volume_info(patch))
    whole = PointwiseNet(volume_info(shape))  # the same weights, one window = the input
    labels = SemanticPredictor(windowed, overlap=0.5, sw_batch_size=3).predict(image)
    one_pass = SemanticPredictor(whole).predict(image)
    assert labels.shape == shape and labels.dtype == np.uint8
    assert len(np.unique(one_pass)) == 3  # the comparison sees every class
    np.testing.assert_array_equal(labels, one_pass)


def test_inputs_smaller_than_the_patch_are_padded():
    image = blobs((5, 12, 10))
    labels = SemanticPredictor(PointwiseNet(volume_info((8, 16, 16)))).predict(image)
    assert labels.shape == (5, 12, 10)


def test_a_trained_shape_network_labels_rgb_images_of_any_size():
    info = SemanticInfo(2, ("background", "organ"), (32, 32), 3, "uint8")
    model = MonaiSemanticModel("monai:unet", info)
    rgb = np.random.default_rng(0).integers(0, 255, (45, 70, 3), dtype=np.uint8)
    labels = SemanticPredictor(model).predict(rgb, spacing=(0.5, 0.5))
    assert labels.shape == (45, 70) and set(np.unique(labels)) <= {0, 1}


def test_bad_inputs_are_refused():
    predictor = SemanticPredictor(PointwiseNet(volume_info((8, 16, 16))))
    with pytest.raises(InputImageError, match="D, H, W"):
        predictor.predict(np.zeros((16, 16)))
    with pytest.raises(InputImageError, match="spacing"):
        predictor.predict(np.zeros((4, 16, 16)), spacing=(1.0, 1.0))
    with pytest.raises(ConfigError, match="overlap"):
        SemanticPredictor(predictor.model, overlap=1.0)
