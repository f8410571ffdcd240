"""From cases to protocol-ready images: slicing, normalisation, limits, unlabelled data."""

from __future__ import annotations

import numpy as np
import pytest

from samforge.data import Case
from samforge.data.phantoms import make_phantom
from samforge.errors import DataError
from samforge.evaluation import iter_images


def volume_case() -> Case:
    image, label, info = make_phantom("ct", shape=(6, 48, 48), seed=0)
    label = label.copy()
    label[0] = 0  # a slice without foreground: not an image of the protocol
    return Case(image, label, info["spacing"], None, "ct", "vol")


def test_volumes_become_their_foreground_slices_with_one_mapping():
    case = volume_case()
    images = list(iter_images([case], "phantoms", intensity="ct"))
    assert [image.name for image in images] == [f"vol_z{k:03d}" for k in range(1, 6)]
    for k, image in enumerate(images, start=1):
        assert image.rgb.shape == (48, 48, 3) and image.rgb.dtype == np.float32
        np.testing.assert_array_equal(image.label, case.label[k])
        # The soft-tissue window (W 400, L 40) maps −160 HU to 0 and 240 HU to 255.
        expected = np.clip((case.image[k].astype(np.float32) + 160) * 255 / 400, 0, 255)
        np.testing.assert_allclose(image.rgb[..., 0], expected, atol=1e-3)
        assert image.dataset == "phantoms" and image.modality == "ct"


def test_limit_counts_images_across_cases():
    images = list(iter_images([volume_case(), volume_case()], "p", intensity="ct", limit=7))
    assert len(images) == 7


def test_a_dataset_without_labels_is_an_error():
    image = np.zeros((32, 32), dtype=np.uint8)
    with pytest.raises(DataError, match="no case with a label"):
        list(iter_images([Case(image, None, (1.0, 1.0), None, "us", "x")], "unlabelled"))
