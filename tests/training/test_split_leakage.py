"""Issue 14, item 3: a MedSegBench file's splits stay apart in training and evaluation.

The dataset is a MedSegBench ``{name}_{size}.npz`` in its published layout (keys
``{split}_images`` and ``{split}_label`` for train, val and test; see
:mod:`samforge.data.readers.medsegbench`), each image holding one square object.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from samforge.cli.evaluate import app as evaluate_app
from samforge.data import open_dataset
from samforge.errors import ConfigError, DataError
from samforge.preprocessing import ModelInputTransform
from samforge.training import load_config, train
from samforge.training.data_module import SegmentationDataModule
from samforge.workflows.leakage import check_evaluation_overlap

from .test_engine import tiny_config

COUNTS = {"train": 4, "val": 2, "test": 3}


@pytest.fixture()
def busi(tmp_path: Path) -> Path:
    arrays = {}
    for split, count in COUNTS.items():
        images = np.zeros((count, 32, 32), np.uint8)
        labels = np.zeros((count, 32, 32), np.uint8)
        for index in range(count):
            images[index, 6 + index : 20 + index, 8:24] = 200
            labels[index, 6 + index : 20 + index, 8:24] = 1
        arrays[f"{split}_images"], arrays[f"{split}_label"] = images, labels
    path = tmp_path / "busi_128.npz"
    np.savez(path, **arrays)
    return path


def _config(tmp_path: Path, train_source: dict, val_source: dict | None = None, **data):
    values = tiny_config(tmp_path, trainer__max_steps=1)
    values["data"].update(train=[train_source], **data)
    if val_source is not None:
        values["data"]["val"] = [val_source]
    return load_config(values)


def _names(config, role: str) -> list[str]:
    module = SegmentationDataModule(config.data, ModelInputTransform(64, "sam"), seed=0)
    module.setup()
    dataset = module.train_set if role == "train" else module.val_set
    assert dataset is not None
    return dataset.cases.names


def test_training_sources_read_their_own_split(busi, tmp_path):
    config = _config(tmp_path, {"path": str(busi)}, {"path": str(busi)})
    assert _names(config, "train") == [f"busi_train_{i:05d}" for i in range(4)]
    assert _names(config, "val") == [f"busi_val_{i:05d}" for i in range(2)]
    chosen = _config(tmp_path, {"path": str(busi), "split": "test"})
    assert _names(chosen, "train") == [f"busi_test_{i:05d}" for i in range(3)]
    with pytest.raises(DataError, match=r"no split 'holdout'.*train, val, test"):
        _names(_config(tmp_path, {"path": str(busi), "split": "holdout"}), "train")


def test_validating_on_training_cases_is_refused_unless_allowed(busi, tmp_path):
    source = {"path": str(busi), "split": "train"}
    with pytest.raises(ConfigError, match=r"shares 4 case.*allow_overlap"):
        train(_config(tmp_path, {"path": str(busi)}, source))
    allowed = _config(tmp_path, {"path": str(busi)}, source, allow_overlap=True)
    assert _names(allowed, "val") == _names(allowed, "train")


def test_evaluation_takes_the_test_split_and_refuses_a_models_training_cases(busi, tmp_path):
    run = tmp_path / "runs" / "run"
    run.mkdir(parents=True)
    config = _config(tmp_path, {"path": str(busi)})
    (run / "config.yaml").write_text(config.to_yaml())
    (run / "model.pth").write_bytes(b"")  # refused before it is loaded
    arguments = ["interactive2d", "-m", str(run / "model.pth"), "-d", str(busi)]
    with pytest.raises(ConfigError, match=r"trained on 4 of the 4 cases.*--allow-overlap"):
        CliRunner().invoke(
            evaluate_app,
            [*arguments, "-o", str(tmp_path / "out"), "--split", "train"],
            catch_exceptions=False,
        )
    for split in ("val", "test"):  # the other splits pass
        cases = open_dataset(busi, split=split)
        check_evaluation_overlap([str(run / "model.pth")], [("busi", cases)])
    # By default the test split is evaluated: a registered model on 3 test images.
    out = tmp_path / "default"
    result = CliRunner().invoke(
        evaluate_app,
        [
            "interactive2d",
            "-m",
            "samforge_random_tiny",
            "-d",
            str(busi),
            "-o",
            str(out),
            "--rounds",
            "1",
            "--no-progress",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    with open(out / "results.csv", newline="") as handle:
        evaluated = {row["case"] for row in csv.DictReader(handle)}
    assert evaluated == {f"busi_test_{i:05d}" for i in range(3)}
