"""``samforge data inspect`` prints a table of cases and objects."""

from __future__ import annotations

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from samforge.cli import app


def test_inspect_prints_cases_and_objects(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for name, squares in [("alpha", 2), ("beta", 0)]:
        Image.fromarray(np.zeros((30, 40), np.uint8)).save(tmp_path / "images" / f"{name}.png")
        label = np.zeros((30, 40), np.uint8)
        for i in range(squares):
            label[2:8, 2 + 10 * i : 8 + 10 * i] = i + 1
        Image.fromarray(label).save(tmp_path / "masks" / f"{name}.png")
    result = CliRunner().invoke(app, ["data", "inspect", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "alpha" in result.output and "beta" in result.output and "30×40" in result.output
    assert "2 cases of 2, 2 subjects, 2 objects ≥ 20 px" in result.output
    assert "36 / 36 / 36" in result.output  # two 6×6 squares
    limited = CliRunner().invoke(app, ["data", "inspect", str(tmp_path), "--limit", "1"])
    assert "1 cases of 2" in limited.output
