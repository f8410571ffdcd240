"""The matrix form of ``ModelInputTransform.masks`` against the resizes it replaces."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers.official import build_official_sam
from samforge.preprocessing import ModelInputTransform, resize_matrix, resized_shape

# (H, W): square, non-square both ways, larger than the 1024² frame, tiny, one pixel wide.
ORIGINAL_SIZES = [(512, 512), (300, 700), (700, 300), (1500, 1100), (5, 3), (1, 9)]


def two_step_reference(low_res: torch.Tensor, size: tuple[int, int], frame: int) -> torch.Tensor:
    """SAM's postprocessing written out: up to the frame, crop the padding, down to size."""
    new_h, new_w = resized_shape(*size, frame)
    full = F.interpolate(low_res, (frame, frame), mode="bilinear", align_corners=False)
    return F.interpolate(full[..., :new_h, :new_w], size, mode="bilinear", align_corners=False)


@pytest.mark.parametrize("size", ORIGINAL_SIZES)
def test_sam_masks_match_the_two_resizes(size):
    low_res = torch.randn(2, 3, 256, 256, generator=torch.Generator().manual_seed(0)) * 10
    masks = ModelInputTransform(1024, "sam").masks(low_res, size)
    expected = two_step_reference(low_res, size, 1024)
    assert masks.shape == (2, 3, *size)
    torch.testing.assert_close(masks, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [(512, 512), (300, 700), (5, 3)])
def test_sam_masks_match_official_postprocess_masks(size):
    official = build_official_sam(embed_dim=16, depth=1, num_heads=1, global_attn_indexes=(0,))
    low_res = torch.randn(1, 1, 256, 256, generator=torch.Generator().manual_seed(1)) * 10
    input_size = resized_shape(*size, 1024)
    with torch.no_grad():
        expected = official.postprocess_masks(low_res, input_size, size)
    masks = ModelInputTransform(1024, "sam").masks(low_res, size)
    torch.testing.assert_close(masks, expected, atol=1e-5, rtol=0)
    # The binary masks agree wherever the logit is not within rounding of the threshold.
    clear = expected.abs() > 1e-4
    assert torch.equal((masks > 0)[clear], (expected > 0)[clear])


@pytest.mark.parametrize("convention", ["medsam", "sammed2d"])
@pytest.mark.parametrize("size", [(512, 512), (300, 700), (3, 5)])
def test_stretching_conventions_match_their_resizes(convention, size):
    """SAM-Med2D resizes logits to the frame, then to the original (``postprocess_masks``);
    MedSAM resizes the sigmoid of the logits straight to the original (its inference
    script), so the sigmoid of samforge's logits must be those probabilities."""
    transform = ModelInputTransform(256, convention)
    low_res = torch.randn(2, 1, 64, 64, generator=torch.Generator().manual_seed(2)) * 4
    masks = transform.masks(low_res, size)
    if convention == "medsam":
        probabilities = torch.sigmoid(low_res)
        expected = F.interpolate(probabilities, size, mode="bilinear", align_corners=False)
        torch.testing.assert_close(torch.sigmoid(masks), expected, atol=1e-5, rtol=0)
        clear = (expected - 0.5).abs() > 1e-5
        assert torch.equal((masks > 0)[clear], (expected > 0.5)[clear])
        return
    full = F.interpolate(low_res, (256, 256), mode="bilinear", align_corners=False)
    expected = F.interpolate(full, size, mode="bilinear", align_corners=False)
    torch.testing.assert_close(masks, expected, atol=1e-5, rtol=0)


def test_resize_matrix_rows_are_interpolation_weights():
    matrix = resize_matrix(256, 1024, 1000, 500)
    assert matrix.shape == (500, 256)
    torch.testing.assert_close(matrix.sum(dim=1), torch.ones(500))
    assert (matrix >= 0).all()
    # Each output row reads a short neighbourhood of the low-resolution grid.
    assert int((matrix > 0).sum(dim=1).max()) <= 4


def test_gradients_flow_through_the_matrices():
    low_res = torch.randn(1, 1, 256, 256, requires_grad=True)
    ModelInputTransform(1024, "sam").masks(low_res, (100, 80)).sum().backward()
    assert low_res.grad is not None and torch.isfinite(low_res.grad).all()
