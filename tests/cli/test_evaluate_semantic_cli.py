"""``samforge evaluate semantic``: two models side by side on a labelled folder, a run
folder as a model, resume, --classes, and the errors a user can make."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers.synthetic import write_phantom_folder
from samforge.cli.evaluate import app
from samforge.data import read_case
from samforge.data.phantoms import phantom_case
from samforge.data.writers import write_volume_nifti
from samforge.errors import ConfigError, DataError
from samforge.evaluation import read_csv
from samforge.inference import SemanticPredictor
from samforge.models.semantic import (
    MonaiSemanticModel,
    SemanticInfo,
    load_semantic_model,
    save_semantic_model,
)

runner = CliRunner()
# The ultrasound phantoms label four structures.
CLASSES = ("background", "a", "b", "c", "d")
TINY_UNET = {"channels": [4, 8], "strides": [2], "num_res_units": 0}


def save_unet(path, classes=CLASSES, dims=2, seed=0, label_values=None):
    import torch

    torch.manual_seed(seed)
    info = SemanticInfo(dims, classes, (32,) * dims, 1, label_values=label_values)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_semantic_model(MonaiSemanticModel("monai:unet", info, TINY_UNET), path)


@pytest.fixture
def phantoms(tmp_path):
    """Three 96×96 ultrasound phantoms with four labelled structures (images/ + masks/)."""
    return write_phantom_folder(tmp_path / "phantoms")


@pytest.fixture
def predictions(monkeypatch):
    """Counts SemanticPredictor.predict calls."""
    calls = []
    original = SemanticPredictor.predict

    def counting(self, *args, **kwargs):
        calls.append(args[0].shape)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SemanticPredictor, "predict", counting)
    return calls


def invoke(*args):
    result = runner.invoke(
        app, ["semantic", *map(str, args), "--no-progress"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result


def test_two_models_side_by_side_then_resume(phantoms, tmp_path, predictions):
    first = save_unet(tmp_path / "unet_a.pth", seed=0)
    run_folder = tmp_path / "runs" / "unet_b"
    save_unet(run_folder / "model.pth", seed=1)  # what `samforge train` leaves
    out = tmp_path / "eval"
    result = invoke("-m", first, "-m", run_folder, "-d", phantoms, "-o", out)
    assert "mean over classes" in result.output
    rows = read_csv(out / "results.csv")
    assert {r["model"] for r in rows} == {"unet_a", "unet_b"}
    assert len(rows) == 2 * 3 * 4  # models × cases × classes
    summary = json.loads((out / "summary.json").read_text())
    assert [r["model"] for r in summary["per_model"]] == ["unet_a", "unet_b"]
    assert {p.name for p in out.iterdir()} >= {"report.html", "dice.png", "worst_cases.png"}
    # 6 cases segmented, then each model's 2 worst again for the overlays.
    assert len(predictions) == 6 + 4
    invoke("-m", first, "-m", run_folder, "-d", phantoms, "-o", out)
    assert len(predictions) == 10 + 4  # only the overlays: every case was scored already


def test_classes_limit_what_is_scored(phantoms, tmp_path):
    model = save_unet(tmp_path / "m.pth")
    out = tmp_path / "eval"
    invoke("-m", model, "-d", phantoms, "-o", out, "--classes", "c", "--classes", "1")
    rows = read_csv(out / "results.csv")
    assert [(r["class_id"], r["class"]) for r in rows[:2]] == [(3, "c"), (1, "a")]
    assert len(rows) == 3 * 2


def test_user_errors_say_what_to_do(phantoms, tmp_path):
    model = save_unet(tmp_path / "m.pth")
    fewer = save_unet(tmp_path / "fewer.pth", classes=("background", "a", "b"))
    volume_model = save_unet(tmp_path / "v.pth", dims=3)
    (tmp_path / "unfinished").mkdir()
    out = tmp_path / "eval"
    with pytest.raises(ConfigError, match=r"folder without model\.pth"):
        invoke("-m", tmp_path / "unfinished", "-d", phantoms, "-o", out)
    with pytest.raises(ConfigError, match="models m and fewer differ"):
        invoke("-m", model, "-m", fewer, "-d", phantoms, "-o", out)
    with pytest.raises(DataError, match=r"labels \[3, 4\] that are not classes of the model"):
        invoke("-m", fewer, "-d", phantoms, "-o", out)
    with pytest.raises(DataError, match="2D image, but the model segments 3D volumes"):
        invoke("-m", volume_model, "-d", phantoms, "-o", out)
    with pytest.raises(ConfigError, match=r"--classes \['liver'\] are not classes"):
        invoke("-m", model, "-d", phantoms, "-o", out, "--classes", "liver")
    with pytest.raises(DataError, match="has no split 'test'"):
        invoke("-m", model, "-d", phantoms, "-o", out, "--split", "test")


def test_a_2d_model_with_selected_values_is_scored_on_volumes(tmp_path):
    """A 2D model labels each slice of a volume (as ``segment --semantic`` does); trained
    with ``data.classes: [2, 1]`` it is scored against the volumes' spleen (2) and liver (1),
    other structures counting as background, as in its training."""
    folder = tmp_path / "volumes"
    for seed in (1, 2):  # the NIfTI folder layout: name.nii.gz + name_seg.nii.gz
        case = phantom_case("ct", (6, 40, 40), seed=seed)
        affine = np.diag([*reversed(case.spacing), 1.0])
        write_volume_nifti(folder / f"ct{seed}.nii.gz", case.image, affine)
        write_volume_nifti(folder / f"ct{seed}_seg.nii.gz", case.label, affine)
    classes = ("background", "spleen", "liver")
    model = save_unet(tmp_path / "m.pth", classes=classes, label_values=(0, 2, 1))
    invoke("-m", model, "-d", folder, "-o", tmp_path / "eval")
    rows = read_csv(tmp_path / "eval" / "results.csv")
    assert len(rows) == 2 * 2
    predictor = SemanticPredictor(load_semantic_model(model))
    for seed in (1, 2):
        case = read_case(folder / f"ct{seed}.nii.gz", folder / f"ct{seed}_seg.nii.gz")
        predicted = predictor.predict_slices(case.image, modality=case.modality)
        for row in (r for r in rows if r["case"] == f"ct{seed}"):
            truth = case.label == {1: 2, 2: 1}[int(row["class_id"])]
            mine = predicted == int(row["class_id"])
            assert int(row["voxels"]) == truth.sum() > 0
            assert int(row["voxels_predicted"]) == mine.sum()
            dice = 2 * (truth & mine).sum() / (truth.sum() + mine.sum())
            assert float(row["dice"]) == pytest.approx(dice)
