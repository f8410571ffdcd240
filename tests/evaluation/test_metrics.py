"""Metrics on closed-form cases, and against MONAI's implementations."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from samforge.errors import InputImageError
from samforge.evaluation import dice, hd95, iou, normalized_surface_distance

monai_metrics = pytest.importorskip("monai.metrics")


def shifted_squares(n: int, k: int, ndim: int = 2, axis: int = -1):
    """Two n-wide squares (cubes), the second shifted by k pixels along ``axis``."""
    shape = (n + k + 10,) * ndim
    a = np.zeros(shape, dtype=bool)
    a[(slice(5, 5 + n),) * ndim] = True
    return a, np.roll(a, k, axis=axis)


def monai_hd95(a, b, spacing):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tensors = [torch.from_numpy(x)[None, None] for x in (a, b)]
        return float(
            monai_metrics.compute_hausdorff_distance(*tensors, percentile=95, spacing=spacing)
        )


def monai_nsd(a, b, tolerance, spacing):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tensors = [torch.from_numpy(x)[None, None].float() for x in (a, b)]
        return float(
            monai_metrics.compute_surface_dice(
                *tensors, [tolerance], spacing=spacing, include_background=True
            )
        )


@pytest.mark.parametrize("k", [1, 3, 6])
def test_dice_and_iou_of_shifted_squares(k):
    n = 20
    a, b = shifted_squares(n, k)
    # Overlap n·(n−k), each square n².
    assert dice(a, b) == pytest.approx((n - k) / n)
    assert iou(a, b) == pytest.approx(n * (n - k) / (2 * n * n - n * (n - k)))


@pytest.mark.parametrize("k", [1, 3, 6])
@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.7, 2.5), (3.0, 0.5)])
def test_hd95_of_shifted_squares_is_the_shift(k, spacing):
    # Every surface pixel is at most k columns from the other surface, and the whole left
    # (right) side, far more than 5% of the surface, is exactly k columns away.
    a, b = shifted_squares(20, k)
    assert hd95(a, b, spacing) == pytest.approx(k * spacing[1])
    assert hd95(a, b, spacing) == pytest.approx(monai_hd95(a, b, spacing))


def test_hd95_of_cubes_shifted_along_an_anisotropic_slice_axis():
    a, b = shifted_squares(12, 2, ndim=3, axis=0)
    spacing = (3.0, 0.8, 0.8)
    assert hd95(a, b, spacing) == pytest.approx(2 * 3.0)
    assert hd95(a, b, spacing) == pytest.approx(monai_hd95(a, b, spacing))


@pytest.mark.parametrize("tolerance", [0.5, 1.0, 2.0, 4.0])
@pytest.mark.parametrize("spacing", [(1.0, 1.0), (2.0, 0.5)])
def test_nsd_matches_monai(tolerance, spacing):
    rng = np.random.default_rng(0)
    a, b = np.zeros((2, 48, 40), dtype=bool)
    a[8:30, 5:25] = True
    b[10:35, 9:31] = True
    b[rng.random(b.shape) < 0.02] = True  # speckles: many small surfaces
    ours = normalized_surface_distance(a, b, tolerance, spacing)
    assert ours == pytest.approx(monai_nsd(a, b, tolerance, spacing), abs=1e-6)
    assert hd95(a, b, spacing) == pytest.approx(monai_hd95(a, b, spacing))


def test_nsd_of_shifted_squares_jumps_at_the_shift():
    a, b = shifted_squares(20, 3)
    assert normalized_surface_distance(a, b, 3.0) == 1.0
    assert normalized_surface_distance(a, b, 2.9) < 1.0


def test_empty_mask_conventions():
    empty, full = np.zeros((8, 8), bool), np.ones((8, 8), bool)
    assert dice(empty, empty) == iou(empty, empty) == 1.0
    assert dice(empty, full) == iou(full, empty) == 0.0
    assert hd95(empty, empty) == 0.0 and math.isinf(hd95(empty, full))
    assert normalized_surface_distance(empty, empty, 1.0) == 1.0
    assert normalized_surface_distance(full, empty, 1.0) == 0.0


def test_bad_inputs_are_explained():
    with pytest.raises(InputImageError, match="same shape"):
        dice(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(InputImageError, match="spacing"):
        hd95(np.ones((4, 4)), np.ones((4, 4)), spacing=(1.0,))
