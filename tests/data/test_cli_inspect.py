"""``samforge data inspect`` prints a table of cases and objects."""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

CLI_DIR = Path(__file__).resolve().parents[2] / "src" / "samforge" / "cli"


@pytest.fixture
def inspect_app():
    """A Typer app with just ``inspect``; imports the module even while ``samforge.cli``'s
    ``__init__`` waits for commands other people are writing."""
    try:
        module = importlib.import_module("samforge.cli.data_inspect")
    except ImportError:
        saved = {k: v for k, v in sys.modules.items() if k.startswith("samforge.cli")}
        package = types.ModuleType("samforge.cli")
        package.__path__ = [str(CLI_DIR)]
        sys.modules["samforge.cli"] = package
        try:
            module = importlib.import_module("samforge.cli.data_inspect")
        finally:
            for key in [k for k in sys.modules if k.startswith("samforge.cli")]:
                del sys.modules[key]
            sys.modules.update(saved)
    app = typer.Typer()
    app.command()(module.inspect)
    return app


def test_inspect_prints_cases_and_objects(tmp_path, inspect_app):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for name, squares in [("alpha", 2), ("beta", 0)]:
        Image.fromarray(np.zeros((30, 40), np.uint8)).save(tmp_path / "images" / f"{name}.png")
        label = np.zeros((30, 40), np.uint8)
        for i in range(squares):
            label[2:8, 2 + 10 * i : 8 + 10 * i] = i + 1
        Image.fromarray(label).save(tmp_path / "masks" / f"{name}.png")
    result = CliRunner().invoke(inspect_app, [str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "alpha" in result.output and "beta" in result.output and "30×40" in result.output
    assert "2 cases of 2, 2 subjects, 2 objects ≥ 20 px" in result.output
    assert "36 / 36 / 36" in result.output  # two 6×6 squares
    limited = CliRunner().invoke(inspect_app, [str(tmp_path), "--limit", "1"])
    assert "1 cases of 2" in limited.output
