"""``samforge segment VOLUME --propagate``: prompts on one or more slices in, the object's
3D mask out, as NIfTI with the input's affine, shape and axis order.

The object oracle (``ObjectOracleSam``, tests/helpers/fake_models.py) returns the true
object under the prompt in each slice, so the written mask must be the object itself, voxel
for voxel, in the file's (i, j, k) = (x, y, z) order.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from helpers.fake_models import ObjectOracleSam
from helpers.synthetic import bent_tube, disc, image_of
from samforge.cli import app
from samforge.errors import ConfigError, InputImageError, PromptError

runner = CliRunner()
AFFINE = np.array(
    [[0.0, -0.8, 0.0, 100.0], [0.7, 0.0, 0.0, -50.0], [0.0, 0.0, 3.0, 20.0], [0, 0, 0, 1]]
)


def save_volume(path, label_zyx: np.ndarray):
    """Write the oracle's image of a (z, y, x) label as a NIfTI (x, y, z) array."""
    nib.save(nib.Nifti1Image(image_of(label_zyx).transpose(2, 1, 0), AFFINE), path)
    return path


def box_of(mask2d: np.ndarray) -> list[str]:
    rows, cols = np.nonzero(mask2d)
    return [str(v) for v in (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)]


@pytest.fixture
def oracle(monkeypatch):
    model = ObjectOracleSam()
    monkeypatch.setattr("samforge.cli.segment_all.load_model", lambda name: model)
    return model


def segment(path, output, *arguments, model="oracle"):
    return runner.invoke(
        app, ["segment", str(path), "--propagate", *arguments, "-m", model, "-o", str(output)]
    )


@pytest.mark.parametrize("mode", ["box", "points_and_mask"])
def test_propagated_mask_is_the_object_in_the_files_geometry(oracle, tmp_path, mode):
    tube = bent_tube(depth=12)
    source = save_volume(tmp_path / "tube.nii.gz", tube)
    output = tmp_path / "mask.nii.gz"
    result = segment(source, output, "--slice", "6", "--box", *box_of(tube[6]), "--mode", mode)
    assert result.exit_code == 0, result.output
    written, original = nib.load(output), nib.load(source)
    np.testing.assert_allclose(written.affine, original.affine)
    assert written.shape == original.shape == (64, 64, 12)
    np.testing.assert_array_equal(np.asarray(written.dataobj), tube.transpose(2, 1, 0))
    assert "12 slices segmented (0–11)" in result.output


def test_two_prompted_slices_each_with_its_own_prompts(oracle, tmp_path):
    # A thick cylinder (slices 0–9) then a thin one (10–19): the IoU stop keeps each front
    # in its own part, so both parts appear only because both slices were prompted.
    label = np.zeros((20, 64, 64), dtype=np.uint8)
    label[:10][:, disc((64, 64), (30, 34), 9)] = 1
    label[10:][:, disc((64, 64), (30, 34), 3)] = 1
    source = save_volume(tmp_path / "two.nii.gz", label)
    output = tmp_path / "mask.nii.gz"
    centre = ["--point", "30", "34"]
    arguments = ["--slice", "3", "--box", *box_of(label[3]), "--slice", "15", *centre]
    result = segment(source, output, *arguments, "--iou-threshold", "0.5")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.asarray(nib.load(output).dataobj), label.transpose(2, 1, 0))
    # One prompt only: the thin part is not reached.
    single = segment(source, output, "--slice", "3", "--box", *box_of(label[3]))
    assert single.exit_code == 0, single.output
    assert not np.asarray(nib.load(output).dataobj)[:, :, 10:].any()


def test_untrained_model_writes_a_mask_with_the_inputs_geometry(tmp_path):
    tube = bent_tube(depth=8)
    source = save_volume(tmp_path / "tube.nii.gz", tube)
    output = tmp_path / "mask.nii.gz"
    result = segment(
        source, output, "--slice", "4", "--box", *box_of(tube[4]), model="samforge_random_tiny"
    )
    assert result.exit_code == 0, result.output
    written = nib.load(output)
    np.testing.assert_allclose(written.affine, AFFINE)
    assert written.shape == (64, 64, 8)
    assert set(np.unique(np.asarray(written.dataobj))) <= {0, 1}


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        (["--box", "1", "1", "9", "9"], InputImageError, "choose one with --slice"),
        (["--slice", "2"], PromptError, "no prompt given for --slice 2"),
        (["--slice", "x", "--box", "1", "1", "9", "9"], PromptError, "--slice takes"),
        (["--slice", "9", "--box", "1", "1", "9", "9"], InputImageError, "outside the volume"),
        (
            ["--slice", "2", "--box", "1", "1", "9", "9", "--box", "2", "2", "8", "8"],
            PromptError,
            "at most one --box per slice",
        ),
        (
            ["--box", "1", "1", "9", "9", "--slice", "2", "--slice", "4", "--point", "3", "3"],
            PromptError,
            "come before the first --slice",
        ),
        (["--slice", "2", "--box", "1", "1", "9", "9", "--mode", "boxes"], ConfigError, "mode"),
        (
            ["--slice", "2", "--box", "1", "1", "9", "9", "--slice", "2", "--point", "3", "3"],
            PromptError,
            "slices [2, 2] repeat",
        ),
        (["--slice", "2", "--box", "1", "1", "99", "9"], PromptError, "outside the 64×64"),
    ],
)
def test_bad_propagation_arguments_raise_and_write_nothing(
    oracle, tmp_path, arguments, error, message
):
    source = save_volume(tmp_path / "v.nii.gz", bent_tube(depth=6))
    output = tmp_path / "never.nii.gz"
    result = segment(source, output, *arguments)
    assert isinstance(result.exception, error), result.output
    assert message in str(result.exception)
    assert not output.exists()


def test_propagate_refuses_a_2d_image(oracle, tmp_path):
    from PIL import Image

    path = tmp_path / "image.png"
    Image.fromarray(np.zeros((20, 30), dtype=np.uint8)).save(path)
    result = segment(path, tmp_path / "m.png", "--box", "1", "1", "9", "9")
    assert isinstance(result.exception, InputImageError)
    assert "needs a volume" in str(result.exception)
