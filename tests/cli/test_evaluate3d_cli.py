"""``samforge evaluate interactive3d``: models named like the other evaluate commands."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from samforge.cli import app
from samforge.data.phantom_datasets import write_phantom_dataset
from samforge.errors import ConfigError
from samforge.evaluation import read_csv
from samforge.models import export_model, load_model

runner = CliRunner()


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    """Validation and test folders of one small CT phantom volume each (nnU-Net layout)."""
    root = tmp_path_factory.mktemp("volumes")
    write_phantom_dataset(root / "val", "ct", (8, 32, 32), count=1, seed=1)
    write_phantom_dataset(root / "test", "ct", (8, 32, 32), count=1, seed=2)
    return root


def two_runs(folder):
    """Two training runs' exports, both named ``model.pth``."""
    model = load_model("samforge_random_tiny")
    return [str(export_model(model, folder / run / "model.pth")) for run in ("a", "b")]


def invoke_3d(models, volumes, out, **kwargs):
    arguments = ["evaluate", "interactive3d", "--data", volumes / "test"]
    arguments += ["--val-data", volumes / "val", "--out", out, "--no-progress"]
    arguments += ["--mode", "box", "--iou-threshold", "0.5", "--box-extension", "0"]
    arguments += ["--max-objects", "1"]
    for model in models:
        arguments += ["--model", model]
    return runner.invoke(app, [str(a) for a in arguments], **kwargs)


def test_two_runs_exports_are_named_by_their_folders(volumes, tmp_path, one_thread):
    out = tmp_path / "eval3d"
    result = invoke_3d(two_runs(tmp_path / "runs"), volumes, out)
    assert result.exit_code == 0, result.output
    rows = read_csv(out / "results.csv")
    assert {row["model"] for row in rows} == {"a/model", "b/model"}
    assert {row["split"] for row in rows} == {"val", "test"}
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["chosen_settings"]) == {"a/model", "b/model"}


def test_a_model_given_twice_is_refused_before_any_work(volumes, tmp_path):
    first, _ = two_runs(tmp_path / "runs")
    out = tmp_path / "eval3d"
    result = invoke_3d([first, first], volumes, out)
    assert isinstance(result.exception, ConfigError)
    assert "given twice" in str(result.exception)
    assert not (out / "results.csv").exists()
