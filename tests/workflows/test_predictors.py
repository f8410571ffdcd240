"""One way to name the models of every evaluation command
(:func:`samforge.workflows.predictors.model_labels`)."""

from __future__ import annotations

import pytest

from samforge.errors import ConfigError
from samforge.workflows.predictors import load_predictors, model_labels


def files(folder, *relative):
    paths = []
    for name in relative:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        paths.append(str(path))
    return paths


def test_a_stem_is_enough_unless_two_files_share_it(tmp_path):
    a, b, other = files(tmp_path, "a/model.pth", "b/model.pth", "c/other.pth")
    assert model_labels([a, b, other, "sam_vit_b"]) == ["a/model", "b/model", "other", "sam_vit_b"]
    assert model_labels([other, a]) == ["other", "model"]


def test_a_model_given_twice_is_refused(tmp_path):
    (a,) = files(tmp_path, "a/model.pth")
    with pytest.raises(ConfigError, match="given twice"):
        model_labels([a, a])
    with pytest.raises(ConfigError, match="given twice"):
        model_labels(["sam_vit_b", "sam_vit_b"])


def test_predictors_share_one_disk_cache(tmp_path):
    predictors = load_predictors(["samforge_random_tiny"], tmp_path / "cache")
    (predictor,) = predictors.values()
    assert list(predictors) == ["samforge_random_tiny"]
    assert predictor.disk_cache is not None
