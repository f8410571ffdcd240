"""One intensity rule: a volume reaches the model through one mapping, on every path.

``samforge segment`` (one slice and ``--propagate``), :func:`propagate`, the 3D protocol,
the ``evaluate`` commands and the training Dataset get the same intensity options; every
slice any of them feeds the model must be that slice under the one mapping of the whole
volume, ``volume_normalizer(volume, mode, window)``. The settings are chosen so that a
dropped window (soft tissue by default) or a mapping per slice gives other images, so a
path that drifts fails here.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from helpers.fake_models import BoxSam
from samforge.cli import app
from samforge.data import Case, ObjectSegmentationDataset, read_case, volume_normalizer
from samforge.evaluation import iter_images
from samforge.evaluation.interactive3d import Protocol3D, evaluate_case
from samforge.inference import Predictor, PropagationSettings, propagate
from samforge.models.config import VIT_TEST
from samforge.prompts import Prompts

DEPTH, SIZE = 6, 64
OBJECT = (slice(1, 5), slice(20, 40), slice(16, 36))  # slices 1–4, rows 20–39, cols 16–35
BOX = ["16", "20", "36", "40"]  # x0 y0 x1 y1 of the object
# (mode, window) pairs: a window that must not be dropped; percentiles that must be taken
# over the whole volume, not per slice.
OPTIONS = [("ct", "bone"), ("auto", "lung"), ("percentile", None)]

runner = CliRunner()


class InputRecorder(BoxSam):
    """Segments the prompt box and keeps every model-ready image it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        self.inputs.extend(images.clone())
        return super().embed_images(images)


def volume_and_label() -> tuple[np.ndarray, np.ndarray]:
    """(D, H, W) int16 HU-like volume whose slices span different ranges, and its label."""
    rng = np.random.default_rng(0)
    volume = rng.integers(-1000, 200, (DEPTH, SIZE, SIZE)) * np.arange(1, DEPTH + 1)[:, None, None]
    label = np.zeros(volume.shape, dtype=np.uint8)
    label[OBJECT] = 1
    volume[OBJECT] = 900
    return volume.astype(np.int16), label


def model_inputs(volume: np.ndarray, mode: str, window) -> list[torch.Tensor]:
    """What each slice must look like to the model: the volume's one mapping, then the
    model's input transform."""
    mapping = volume_normalizer(volume, mode=mode, window=window)
    transform = VIT_TEST.input_transform()
    return [
        transform.image(torch.from_numpy(mapping(plane)).permute(2, 0, 1)[None])[0]
        for plane in volume
    ]


def slice_of(image: torch.Tensor, expected: list[torch.Tensor]) -> int | None:
    """The index of the slice ``image`` shows as ``expected``, or None."""
    return next(
        (k for k, want in enumerate(expected) if torch.allclose(image, want, atol=1e-4)), None
    )


def slices_fed(images: list[torch.Tensor], expected: list[torch.Tensor]) -> list[int]:
    """The slice index of every image, each of which must be one of ``expected``."""
    found = [slice_of(image, expected) for image in images]
    assert None not in found, "a slice reached the model through another intensity mapping"
    return found


@pytest.fixture
def recorder(monkeypatch) -> InputRecorder:
    model = InputRecorder()
    # segment loads its model in segment_all.predictor_for; every evaluate command
    # through load_predictors.
    for module in ("samforge.cli.segment_all", "samforge.workflows.predictors"):
        monkeypatch.setattr(f"{module}.load_model", lambda name: model)
    return model


@pytest.fixture
def volume_file(tmp_path):
    """The volume and its label as a NIfTI dataset folder (x, y, z on disk)."""
    volume, label = volume_and_label()
    folder = tmp_path / "volumes"
    folder.mkdir()
    nib.save(nib.Nifti1Image(volume.transpose(2, 1, 0), np.eye(4)), folder / "ct.nii.gz")
    nib.save(nib.Nifti1Image(label.transpose(2, 1, 0), np.eye(4)), folder / "ct_seg.nii.gz")
    return folder / "ct.nii.gz"


def options(mode: str, window) -> list[str]:
    return ["--intensity", mode] + ([] if window is None else ["--window", window])


def test_the_options_change_the_images_so_a_drifting_path_is_caught():
    volume, _ = volume_and_label()
    ct_bone, auto_lung = model_inputs(volume, "ct", "bone"), model_inputs(volume, "auto", "lung")
    soft_tissue = model_inputs(volume, "ct", None)  # what a dropped window gives
    assert not torch.allclose(ct_bone[2], soft_tissue[2])
    assert not torch.allclose(auto_lung[2], soft_tissue[2])
    per_slice = volume_normalizer(volume[2], mode="percentile")(volume[2])
    whole = volume_normalizer(volume, mode="percentile")(volume[2])
    assert not np.allclose(per_slice, whole)


@pytest.mark.parametrize(("mode", "window"), OPTIONS)
def test_segment_and_propagate_commands_map_the_volume_once(
    recorder, volume_file, tmp_path, mode, window
):
    volume = read_case(volume_file).image
    np.testing.assert_array_equal(volume, volume_and_label()[0])
    expected = model_inputs(volume, mode, window)
    command = ["segment", str(volume_file), "-m", "x", *options(mode, window)]
    one_slice = runner.invoke(
        app, [*command, "--slice", "3", "--box", *BOX, "-o", str(tmp_path / "a.nii.gz")]
    )
    assert one_slice.exit_code == 0, one_slice.output
    assert slices_fed(recorder.inputs, expected) == [3]
    recorder.inputs.clear()
    arguments = ["--propagate", "--mode", "box", "--slice", "3", "--box", *BOX]
    through = runner.invoke(app, [*command, *arguments, "-o", str(tmp_path / "b.nii.gz")])
    assert through.exit_code == 0, through.output
    assert sorted(slices_fed(recorder.inputs, expected)) == list(range(DEPTH))


@pytest.mark.parametrize(("mode", "window"), OPTIONS)
def test_propagation_and_the_3d_protocol_map_the_volume_once(mode, window):
    volume, label = volume_and_label()
    expected = model_inputs(volume, mode, window)
    model = InputRecorder()
    box = Prompts.from_user(boxes=[int(v) for v in BOX])
    predictor = Predictor(model, intensity=mode, window=window)
    propagate(predictor, volume, {3: box}, PropagationSettings("box"))
    assert sorted(slices_fed(model.inputs, expected)) == list(range(DEPTH))

    model = InputRecorder()
    case = Case(volume, label, (2.0, 1.0, 1.0), np.eye(4), "ct", "ct")
    protocol = Protocol3D(intensity=mode, window=window)
    rows = evaluate_case(Predictor(model), case, [PropagationSettings("box")], protocol)
    assert rows[0]["prompt_slice"] == 2
    assert sorted(set(slices_fed(model.inputs, expected))) == list(range(DEPTH))


@pytest.mark.parametrize(("mode", "window"), OPTIONS)
def test_evaluation_images_and_training_items_map_the_volume_once(mode, window):
    volume, label = volume_and_label()
    expected = model_inputs(volume, mode, window)
    case = Case(volume, label, (2.0, 1.0, 1.0), np.eye(4), "ct", "ct")
    transform = VIT_TEST.input_transform()
    images = list(iter_images([case], "d", intensity=mode, window=window))
    inputs = [
        transform.image(torch.from_numpy(image.rgb).permute(2, 0, 1)[None])[0] for image in images
    ]
    assert slices_fed(inputs, expected) == [1, 2, 3, 4]
    items = ObjectSegmentationDataset(
        [case], n_obj=1, min_size=20, intensity=mode, window=window, transform=transform
    )
    assert slices_fed([item["image"] for item in items], expected) == [1, 2, 3, 4]


@pytest.mark.parametrize(("mode", "window"), OPTIONS[:2])
def test_every_evaluate_command_passes_the_window_on(recorder, volume_file, tmp_path, mode, window):
    expected = model_inputs(read_case(volume_file).image, mode, window)
    data = ["-m", "x", "-d", str(volume_file.parent), *options(mode, window), "--no-progress"]
    two_d = ["evaluate", "interactive2d", *data, "--rounds", "1", "-o", str(tmp_path / "2d")]
    result = runner.invoke(app, two_d)
    assert result.exit_code == 0, result.output
    assert sorted(slices_fed(recorder.inputs, expected)) == [1, 2, 3, 4]

    recorder.inputs.clear()
    sweep = ["evaluate", "robustness", *data, "--rounds", "1", "--types", "gaussian_noise"]
    result = runner.invoke(app, [*sweep, "-o", str(tmp_path / "robust")])
    assert result.exit_code == 0, result.output
    clean = [slice_of(image, expected) for image in recorder.inputs]
    assert sorted(k for k in clean if k is not None) == [1, 2, 3, 4]  # the uncorrupted pass
    assert clean.count(None) == 4  # one corrupted view of each

    recorder.inputs.clear()
    validation = tmp_path / "val"
    validation.mkdir()
    for path in volume_file.parent.iterdir():
        (validation / path.name).symlink_to(path)
    grid = ["--mode", "box", "--iou-threshold", "0.5", "--box-extension", "0"]
    three_d = ["evaluate", "interactive3d", *data, "--val-data", str(validation), *grid]
    result = runner.invoke(app, [*three_d, "-o", str(tmp_path / "3d")])
    assert result.exit_code == 0, result.output
    assert set(slices_fed(recorder.inputs, expected)) == set(range(DEPTH))
