"""``samforge segment`` end to end: prompts in, a mask file with the input's geometry out.

The box model (``BoxSam``, tests/helpers/fake_models.py) segments exactly the prompted box, so the
expected mask is known in closed form and the test checks the command's plumbing: slice
selection, x/y order, NIfTI axis mapping, affine and header, PNG size.
"""

from __future__ import annotations

import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from helpers.fake_models import BoxSam
from samforge.cli import app
from samforge.models import export_official, load_model
from samforge.models.config import VIT_TEST

runner = CliRunner()


@pytest.fixture
def oracle(monkeypatch):
    model = BoxSam(VIT_TEST).eval()
    monkeypatch.setattr("samforge.cli.segment_all.load_model", lambda name: model)
    return model


@pytest.fixture
def volume_path(tmp_path):
    """A (x=48, y=40, z=6) CT-like NIfTI with a rotated, anisotropic affine."""
    data = np.random.default_rng(0).normal(40, 30, size=(48, 40, 6)).astype(np.int16)
    affine = np.array(
        [[0.0, -0.8, 0.0, 100.0], [0.7, 0.0, 0.0, -50.0], [0.0, 0.0, 3.0, 20.0], [0, 0, 0, 1]]
    )
    path = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def test_box_on_a_volume_slice_lands_on_the_same_voxels(oracle, volume_path, tmp_path):
    output = tmp_path / "mask.nii.gz"
    result = runner.invoke(
        app,
        [
            "segment",
            str(volume_path),
            "--slice",
            "4",
            "--box",
            "5",
            "6",
            "30",
            "21",
            "--model",
            "oracle",
            "-o",
            str(output),
        ],
    )
    assert result.exit_code == 0, result.output
    source, written = nib.load(volume_path), nib.load(output)
    np.testing.assert_allclose(written.affine, source.affine)
    assert written.shape == source.shape
    mask = np.asarray(written.dataobj)
    expected = np.zeros(source.shape, dtype=bool)
    expected[5:30, 6:21, 4] = True  # x = first NIfTI axis (i), y = second (j), slice = k
    np.testing.assert_array_equal(mask > 0, expected)


def test_several_boxes_give_several_labels_on_a_png(oracle, tmp_path):
    image = np.random.default_rng(1).integers(0, 255, size=(50, 70, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(image).save(path)
    output = tmp_path / "labels.png"
    result = runner.invoke(
        app,
        [
            "segment",
            str(path),
            "--box",
            "2",
            "3",
            "20",
            "30",
            "--box",
            "40",
            "10",
            "69",
            "45",
            "--model",
            "oracle",
            "-o",
            str(output),
        ],
    )
    assert result.exit_code == 0, result.output
    labels = np.asarray(Image.open(output))
    assert labels.shape == (50, 70) and set(np.unique(labels)) == {0, 1, 2}
    # The oracle answers on SAM's 4×-downsampled grid, so box corners may blur by a pixel.
    for value, (x0, y0, x1, y1) in ((1, (2, 3, 20, 30)), (2, (40, 10, 69, 45))):
        expected = np.zeros((50, 70), dtype=bool)
        expected[y0:y1, x0:x1] = True
        found = labels == value
        assert (found & expected).sum() / (found | expected).sum() > 0.97
        assert not (found & ~expected).any()


def test_a_single_point_segments_around_the_point(oracle, tmp_path):
    path = tmp_path / "gray.png"
    Image.fromarray(np.zeros((64, 96), dtype=np.uint8)).save(path)
    output = tmp_path / "point.png"
    result = runner.invoke(
        app, ["segment", str(path), "--point", "70", "20", "--model", "oracle", "-o", str(output)]
    )
    assert result.exit_code == 0, result.output
    ys, xs = np.nonzero(np.asarray(Image.open(output)))
    assert abs(xs.mean() - 70) < 2 and abs(ys.mean() - 20) < 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "no prompt"),
        (["--box", "1", "2", "3"], "--box takes 4 numbers"),
        (["--label", "1"], "--label must follow a --point"),
        (["--point", "1", "2", "--label", "7"], "--label must be 1"),
        (
            ["--point", "1", "2", "--box", "0", "0", "5", "5", "--box", "1", "1", "9", "9"],
            "at most one --box",
        ),
    ],
)
def test_prompt_arguments_are_checked(oracle, volume_path, tmp_path, arguments, message):
    result = runner.invoke(
        app,
        [
            "segment",
            str(volume_path),
            "--slice",
            "1",
            *arguments,
            "--model",
            "oracle",
            "-o",
            str(tmp_path / "m.nii.gz"),
        ],
    )
    assert result.exit_code != 0
    assert message in str(result.exception)
    assert not (tmp_path / "m.nii.gz").exists()


def test_the_command_reports_user_errors_in_one_line_and_writes_nothing(volume_path, tmp_path):
    checkpoint = export_official(load_model("samforge_random_tiny"), tmp_path / "tiny.pth")
    output = tmp_path / "never.nii.gz"
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from samforge.cli import main; main()",
            "segment",
            str(volume_path),
            "--box",
            "1",
            "1",
            "9",
            "9",
            "--model",
            str(checkpoint),
            "-o",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert "volume of 6 slices: choose one with --slice" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not output.exists()


def test_a_real_checkpoint_file_segments_a_volume_slice(volume_path, tmp_path):
    checkpoint = export_official(load_model("samforge_random_tiny"), tmp_path / "tiny.pth")
    output = tmp_path / "mask.nii.gz"
    result = runner.invoke(
        app,
        [
            "segment",
            str(volume_path),
            "--slice",
            "2",
            "--box",
            "3",
            "3",
            "40",
            "30",
            "--model",
            str(checkpoint),
            "-o",
            str(output),
        ],
    )
    assert result.exit_code == 0, result.output
    mask = np.asarray(nib.load(output).dataobj)
    assert mask.shape == (48, 40, 6)
    assert not mask[..., [0, 1, 3, 4, 5]].any()  # only the prompted slice is written
