"""Report files: CSV round trip, JSON without NaN, a self-contained HTML page."""

from __future__ import annotations

import json

import numpy as np
from matplotlib.figure import Figure

from samforge.evaluation import read_csv, write_report
from samforge.evaluation.plots import Overlay, plot_overlays
from samforge.evaluation.report import image_level


def test_write_report_writes_all_three_files(tmp_path):
    figure = Figure()
    figure.subplots().plot([0, 1])
    figure.savefig(tmp_path / "line.png")
    rows = [
        {"model": "a", "case": "007", "round": 1, "dice": 0.5, "use_masks": False},
        {"model": "a", "case": "007", "round": 2, "dice": 0.75, "use_masks": False},
    ]
    summary = {"table": [{"model": "a", "dice": 0.625}], "missing": float("nan")}
    out = tmp_path / "report"
    html_path = write_report(out, rows, summary, {"line": tmp_path / "line.png"}, "T <1>")
    assert html_path == out / "report.html"
    assert read_csv(out / "results.csv") == rows  # "007" stays text, numbers come back
    assert json.loads((out / "summary.json").read_text())["missing"] is None
    page = html_path.read_text()
    assert "T &lt;1&gt;" in page and "data:image/png;base64," in page and "0.6250" in page
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "results.csv", "summary.json"]


def test_image_level_averages_classes_within_an_image_first():
    rows = [
        {"model": "m", "case": "x", "round": 1, "class_id": 1, "dice": 1.0},
        {"model": "m", "case": "x", "round": 1, "class_id": 2, "dice": 0.0},
        {"model": "m", "case": "x", "round": 1, "class_id": 3, "dice": 0.5},
        {"model": "m", "case": "y", "round": 1, "class_id": 1, "dice": 0.2},
    ]
    per_image = {row["case"]: row["dice"] for row in image_level(rows, ("model",))}
    assert per_image == {"x": 0.5, "y": 0.2}


def test_overlay_grid(tmp_path):
    label = np.zeros((32, 32), dtype=np.int64)
    label[8:20, 8:20] = 1
    example = Overlay(np.full((32, 32, 3), 100.0), label, np.roll(label, 3), "x")
    path = plot_overlays([example] * 5, tmp_path / "grid.png", columns=3)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
