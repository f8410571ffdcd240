"""Issue 15, items 4 and 5: a dataset's index never leads samforge outside the dataset,
and an ``.npz`` with Python objects inside is refused, never unpickled.

Item 4's index is SA-Med2D-20M's ``image2label_*.json`` in the shape SAM-Med2D publishes it
(``data_demo/image2label_train.json``: paths from the repository root, the index's parent);
the hostile entries climb out with ``..``, are absolute, or leave through a symbolic link.
Item 5's file is a MedSegBench ``{name}_{size}.npz`` (keys ``{split}_images``,
``{split}_label``) whose label array was saved with ``dtype=object``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samforge.data import open_dataset
from samforge.errors import DataError, SamforgeError


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture()
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    """(repository root holding data_demo/, a secret outside it that a hostile index names)."""
    root = tmp_path / "SAM-Med2D"
    _png(root / "data_demo/images/amos_0006_90.png", np.zeros((16, 16), np.uint8))
    mask = np.zeros((16, 16), np.uint8)
    mask[2:10, 2:10] = 255
    _png(root / "data_demo/masks/amos_0006_90_liver_000.png", mask)
    secret = tmp_path / "outside" / "secret.png"
    _png(secret, np.full((16, 16), 255, np.uint8))
    return root, secret


def _index(root: Path, masks: list[str]) -> Path:
    index = root / "data_demo" / "image2label_train.json"
    index.write_text(json.dumps({"data_demo/images/amos_0006_90.png": masks}))
    return index


@pytest.mark.parametrize(
    "entry",
    [
        "data_demo/masks/../../../outside/secret.png",  # climbs out with ..
        "ABSOLUTE",  # an absolute path to the secret
    ],
)
def test_an_index_entry_outside_the_dataset_is_refused_by_name(dataset, entry):
    root, secret = dataset
    entry = str(secret) if entry == "ABSOLUTE" else entry
    _index(root, ["data_demo/masks/amos_0006_90_liver_000.png", entry])
    with pytest.raises(DataError) as caught:
        open_dataset(root / "data_demo")[0]
    assert entry in str(caught.value) and "outside" in str(caught.value)


def test_a_symbolic_link_out_of_the_dataset_is_refused_before_reading(dataset):
    root, secret = dataset
    link = root / "data_demo" / "masks" / "amos_0006_90_spleen_000.png"
    os.symlink(secret, link)
    entry = "data_demo/masks/amos_0006_90_spleen_000.png"
    _index(root, ["data_demo/masks/amos_0006_90_liver_000.png", entry])
    cases = open_dataset(root / "data_demo")  # naming it is fine, reading it is not
    with pytest.raises(DataError, match="symbolic link") as caught:
        cases[0]
    assert entry in str(caught.value)


def test_a_link_that_stays_inside_the_dataset_is_read(dataset):
    root, _ = dataset
    link = root / "data_demo" / "masks" / "amos_0006_90_copy_000.png"
    os.symlink(root / "data_demo/masks/amos_0006_90_liver_000.png", link)
    _index(root, ["data_demo/masks/amos_0006_90_copy_000.png"])
    case = open_dataset(root / "data_demo")[0]
    assert case.objects is not None and int(case.objects[0].mask.sum()) == 64


def _object_npz(path: Path) -> Path:
    images = np.zeros((2, 8, 8), np.uint8)
    labels = np.empty(2, dtype=object)  # ragged masks, pickled by np.savez
    labels[0], labels[1] = np.ones((8, 8), np.uint8), np.ones((4, 4), np.uint8)
    np.savez(path, train_images=images, train_label=labels)
    return path


def test_an_npz_holding_python_objects_is_refused(tmp_path):
    path = _object_npz(tmp_path / "busi_128.npz")
    with pytest.raises(SamforgeError, match="Python objects") as caught:
        cases = open_dataset(path)
        cases[0]
    assert "train_label" in str(caught.value)


def test_data_inspect_on_an_object_npz_exits_with_a_message(tmp_path):
    # In a child process: the crash this guards against (exit 139) would kill pytest.
    path = _object_npz(tmp_path / "busi_128.npz")
    code = "from samforge.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, "data", "inspect", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Python objects" in result.stderr and "Traceback" not in result.stderr
