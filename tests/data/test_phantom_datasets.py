"""Phantom datasets on disk (:mod:`samforge.data.phantom_datasets`) read back by samforge's
own readers, label for label."""

from __future__ import annotations

import json

import numpy as np
import pytest

from samforge.data import open_dataset
from samforge.data.phantom_datasets import DATASET_JSON, write_phantom_dataset
from samforge.data.phantoms import make_phantom
from samforge.errors import ConfigError


@pytest.mark.parametrize("shape", [(48, 48), (6, 40, 40)])
def test_written_datasets_read_back_with_their_labels(tmp_path, shape):
    dataset = write_phantom_dataset(tmp_path, "mr", shape, count=2, seed=4)
    assert dataset.names == ["mr_000", "mr_001"] and dataset.modality == "mr"
    seeds = json.loads((tmp_path / DATASET_JSON).read_text())["cases"]
    cases = {case.name: case for case in open_dataset(tmp_path)}
    assert sorted(cases) == dataset.names
    for name, case in cases.items():
        image, label, _ = make_phantom("mr", shape=shape, seed=seeds[name]["seed"])
        np.testing.assert_array_equal(case.label, label)
        assert case.image.shape[: len(shape)] == image.shape


def test_no_phantoms_is_refused_before_writing(tmp_path):
    with pytest.raises(ConfigError, match="at least 1"):
        write_phantom_dataset(tmp_path / "none", "ct", (48, 48), count=0)
    assert not (tmp_path / "none").exists()
