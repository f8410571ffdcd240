"""Full runs on real data (../shared/data): HC18 ultrasound and TotalSegmentator CT slices."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from samforge.cli.evaluate import app
from samforge.data import read_case
from samforge.evaluation import (
    InteractiveSettings,
    iter_images,
    read_csv,
    run_interactive2d,
    summarize_interactive,
    write_interactive_report,
)
from samforge.inference import Predictor
from samforge.models import load_model

pytestmark = pytest.mark.real_data
REPORT_FILES = (
    "results.csv",
    "summary.json",
    "report.html",
    "dice_vs_round.png",
    "dice_per_dataset.png",
    "examples.png",
)


def test_hc18_run_through_the_cli(shared_data, tmp_path):
    out = tmp_path / "hc18"
    result = CliRunner().invoke(
        app,
        [
            "interactive2d",
            "-m",
            "samforge_random_tiny",
            "-d",
            str(shared_data / "hc18"),
            "-o",
            str(out),
            "--limit",
            "2",
            "--rounds",
            "2",
            "--start",
            "box",
            "--start",
            "point",
            "--no-progress",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert all((out / name).stat().st_size > 0 for name in REPORT_FILES)
    rows = read_csv(out / "results.csv")
    # One head per image: one object of class 1, filled from the annotated ellipse.
    assert len({row["case"] for row in rows}) == 2
    assert {(row["class_id"], row["num_objects"]) for row in rows} == {(1, 1)}
    summary = json.loads((out / "summary.json").read_text())
    assert {entry["dataset"] for entry in summary["final_dice_per_dataset"]} == {"hc18"}


def test_totalsegmentator_ct_slices(shared_data, tmp_path):
    folder = shared_data / "totalsegmentator"
    case = read_case(folder / "example_ct_sm.nii.gz", folder / "example_seg.nii.gz")
    images = list(iter_images([case], "totalsegmentator", intensity="ct", limit=2))
    assert len(images) == 2 and all(image.label.any() for image in images)
    settings = InteractiveSettings(rounds=2)
    predictors = {"tiny": Predictor(load_model("samforge_random_tiny"))}
    rows, overlays = run_interactive2d(predictors, images, ["box"], settings, show_progress=False)
    assert len({row["class_id"] for row in rows}) > 1  # several organs per slice
    report = write_interactive_report(
        tmp_path, rows, overlays, summarize_interactive(rows, settings), "TotalSegmentator"
    )
    assert report.name == "report.html"
    assert all((tmp_path / name).stat().st_size > 0 for name in REPORT_FILES)
