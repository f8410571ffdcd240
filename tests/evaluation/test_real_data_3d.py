"""``interactive3d`` end to end on real TotalSegmentator volumes: tune on the CT, test on
the MR, with the untrained built-in model (its Dice means nothing; the run must complete
and write every part of the report)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from samforge.cli.evaluate3d import interactive3d
from samforge.data import read_case
from samforge.evaluation import read_csv

pytestmark = pytest.mark.real_data


def linked_dataset(folder, image, label, stem):
    """A NIfTI folder layout (``x.nii.gz`` + ``x_seg.nii.gz``) of symlinks: no copies."""
    folder.mkdir()
    (folder / f"{stem}.nii.gz").symlink_to(image)
    (folder / f"{stem}_seg.nii.gz").symlink_to(label)
    return folder


def test_interactive3d_on_totalsegmentator_ct_and_mr(shared_data, tmp_path):
    source = shared_data / "totalsegmentator"
    ct, ct_seg = source / "example_ct_sm.nii.gz", source / "example_seg.nii.gz"
    mr, mr_seg = source / "example_mr_sm.nii.gz", source / "example_seg_mr.nii.gz"
    # The pairs read as labelled volumes on one grid (what the protocol needs).
    assert read_case(ct, ct_seg).label is not None and read_case(mr, mr_seg).label is not None
    val = linked_dataset(tmp_path / "val", ct, ct_seg, "example_ct")
    test = linked_dataset(tmp_path / "test", mr, mr_seg, "example_mr")
    out = tmp_path / "out"
    app = typer.Typer()
    app.command()(interactive3d)
    arguments = ["--model", "samforge_random_tiny", "--data", str(test), "--val-data", str(val)]
    arguments += ["--out", str(out), "--mode", "box", "--mode", "mask", "--iou-threshold", "0.5"]
    arguments += ["--box-extension", "0", "--max-objects", "2", "--no-progress"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    names = {path.name for path in out.iterdir()}
    assert {"results.csv", "summary.json", "report.html", "validation_grid.png"} <= names
    summary = json.loads((out / "summary.json").read_text())
    assert summary["chosen_settings"]["samforge_random_tiny"]["mode"] in ("box", "mask")
    (test_row,) = summary["test_results"]
    assert test_row["objects"] == 2 and 0.0 <= test_row["dice"] <= 1.0
    assert len(summary["validation_grid"]) == 2
    rows = read_csv(out / "results.csv")
    objects = [row for row in rows if row["level"] == "object"]
    assert len(objects) == 2 * 2 + 2  # 2 CT objects × 2 settings, 2 MR objects
    assert objects[0]["modality"] == "ct" and objects[-1]["modality"] == "mr"
    # The test objects' classes are scored too, once each.
    classes = [row for row in rows if row["level"] == "class"]
    tested = sorted({row["class_id"] for row in objects if row["split"] == "test"})
    assert sorted(row["class_id"] for row in classes) == tested
    assert {(row["split"], row["modality"]) for row in classes} == {("test", "mr")}


def test_same_folder_for_tuning_and_testing_is_refused(shared_data, tmp_path):
    source = shared_data / "totalsegmentator"
    folder = linked_dataset(
        tmp_path / "d", source / "example_mr_sm.nii.gz", source / "example_seg_mr.nii.gz", "mr"
    )
    app = typer.Typer()
    app.command()(interactive3d)
    arguments = ["-m", "samforge_random_tiny", "-d", str(folder), "--val-data", str(folder)]
    result = CliRunner().invoke(app, [*arguments, "-o", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "same" in str(result.exception)
