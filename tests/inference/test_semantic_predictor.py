"""SemanticPredictor: sliding windows stitch to what one pass gives, any input size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

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


def test_bf16_runs_the_network_under_autocast_and_moves_only_boundary_labels():
    """PointwiseNet's classes change at intensities 0.35 and 0.65 (of 0–1): in bf16
    (8 significant bits) only voxels within a few bf16 steps of those boundaries may change
    label; the logits come back in fp32."""
    info = SemanticInfo(2, ("background", "low", "high"), (32, 32), 1, intensity="none")
    model = PointwiseNet(info)
    seen = []
    model.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    image = np.random.default_rng(0).uniform(0, 255, size=(50, 70)).astype(np.float32)
    exact = SemanticPredictor(model).predict(image)
    assert seen[-1] == torch.float32
    halved = SemanticPredictor(model, precision="bf16").predict(image)
    assert seen[-1] == torch.bfloat16  # the convolution ran in bf16
    near = np.abs(image[..., None] / 255 - np.array([0.35, 0.65])).min(axis=-1) < 0.01
    np.testing.assert_array_equal(halved[~near], exact[~near])
    assert (halved == exact).mean() > 0.97
    with pytest.raises(ConfigError, match="precision must be one of"):
        SemanticPredictor(model, precision="fp16")
