"""``samforge segment --semantic``: a label map with the input's geometry and the model's
class names. The model (PointwiseNet, tests/helpers/semantic_models.py) labels each voxel by
its intensity alone, so the expected map is known in closed form and the test checks the
plumbing: intensities, sliding windows, NIfTI axes and affine, PNG, the names file."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from helpers.semantic_models import PointwiseNet, expected_labels
from samforge.cli import app
from samforge.errors import PromptError
from samforge.models.semantic import SemanticInfo

runner = CliRunner()
NAMES = ("background", "fat", "muscle")


def use_model(
    monkeypatch, spatial_dims: int, patch: tuple[int, ...], label_values=None
) -> PointwiseNet:
    info = SemanticInfo(spatial_dims, NAMES, patch, 1, intensity="none", label_values=label_values)
    model = PointwiseNet(info)
    monkeypatch.setattr("samforge.cli.segment_semantic.load_semantic_model", lambda path: model)
    return model


@pytest.fixture
def volume_path(tmp_path):
    """A (x=30, y=26, z=9) NIfTI of values in [0, 255] with a rotated, anisotropic affine."""
    data = np.random.default_rng(0).integers(0, 256, size=(30, 26, 9)).astype(np.int16)
    affine = np.array(
        [[0.0, -0.8, 0.0, 100.0], [0.7, 0.0, 0.0, -50.0], [0.0, 0.0, 3.0, 20.0], [0, 0, 0, 1]]
    )
    path = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def run(*args: str):
    return runner.invoke(app, ["segment", *args, "-m", "model.pth", "--semantic"])


@pytest.mark.parametrize(("dims", "patch"), [(3, (4, 16, 16)), (2, (16, 16))])
def test_a_volume_gets_a_label_map_on_its_voxels(monkeypatch, volume_path, tmp_path, dims, patch):
    use_model(monkeypatch, dims, patch)  # 3D: sliding windows; 2D: slice by slice
    output = tmp_path / "labels.nii.gz"
    result = run(str(volume_path), "-o", str(output))
    assert result.exit_code == 0, result.output
    source, written = nib.load(volume_path), nib.load(output)
    np.testing.assert_allclose(written.affine, source.affine)
    # Both in the file's (x, y, z) order: every voxel labelled in place.
    expected = expected_labels(np.asarray(source.dataobj))
    np.testing.assert_array_equal(np.asarray(written.dataobj), expected)
    names = json.loads((tmp_path / "labels.labels.json").read_text())
    assert names == {"0": "background", "1": "fat", "2": "muscle"}
    assert "muscle" in result.output


def test_a_png_gets_a_png_label_map(monkeypatch, tmp_path):
    use_model(monkeypatch, 2, (24, 24))
    image = np.random.default_rng(1).integers(0, 256, size=(37, 50), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "us.png")
    result = run(str(tmp_path / "us.png"), "-o", str(tmp_path / "labels.png"))
    assert result.exit_code == 0, result.output
    written = np.array(Image.open(tmp_path / "labels.png"))
    np.testing.assert_array_equal(written, expected_labels(image))


def test_a_model_trained_on_selected_values_writes_those_values(monkeypatch, volume_path, tmp_path):
    """A model trained with ``data.classes: [5, 6]`` (TotalSegmentator's liver and stomach)
    labels in the dataset's values, 5 and 6, and its names file says which is which."""
    use_model(monkeypatch, 3, (4, 16, 16), label_values=(0, 5, 6))
    output = tmp_path / "labels.nii.gz"
    result = run(str(volume_path), "-o", str(output))
    assert result.exit_code == 0, result.output
    expected = np.array([0, 5, 6])[expected_labels(np.asarray(nib.load(volume_path).dataobj))]
    np.testing.assert_array_equal(np.asarray(nib.load(output).dataobj), expected)
    names = json.loads((tmp_path / "labels.labels.json").read_text())
    assert names == {"0": "background", "5": "fat", "6": "muscle"}


@pytest.mark.parametrize(("precision", "dtype"), [("fp32", "float32"), ("bf16", "bfloat16")])
def test_precision_reaches_the_network(monkeypatch, volume_path, tmp_path, precision, dtype):
    model = use_model(monkeypatch, 3, (4, 16, 16))
    seen = set()
    model.register_forward_hook(lambda module, inputs, output: seen.add(str(output.dtype)))
    result = run(str(volume_path), "-o", str(tmp_path / "l.nii.gz"), "--precision", precision)
    assert result.exit_code == 0, result.output
    assert seen == {f"torch.{dtype}"}


def test_prompts_are_refused_with_semantic(monkeypatch, volume_path, tmp_path):
    use_model(monkeypatch, 3, (4, 16, 16))
    result = run(str(volume_path), "-o", str(tmp_path / "x.nii.gz"), "--slice", "3")
    assert isinstance(result.exception, PromptError) and "no prompts" in str(result.exception)
    assert not (tmp_path / "x.nii.gz").exists()
