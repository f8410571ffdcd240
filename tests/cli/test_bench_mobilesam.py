"""``samforge bench --model mobilesam_vit_t``: registered weights that are not in the cache
are fetched (never faked); where they cannot be, the error says so and points at
``--random``, which times the architecture with random weights."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from helpers.registry import isolate_registry
from samforge.cli import app
from samforge.errors import DownloadError
from samforge.models import get_model_spec
from samforge.models.checkpoints import registry

runner = CliRunner()


@pytest.fixture(autouse=True)
def offline_mobilesam(monkeypatch, tmp_path):
    """An empty cache, and MobileSAM's URL on a closed port of 127.0.0.1 (no network)."""
    isolate_registry(monkeypatch, tmp_path / "cache")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = replace(get_model_spec("mobilesam_vit_t"), url=f"http://127.0.0.1:{port}/x.pt")
    registry.register_model(spec, overwrite=True)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


ARGUMENTS = ["bench", "--model", "mobilesam_vit_t", "--image-side", "64", "--repeats", "1"]
ARGUMENTS += ["--threads", "1", "--precision", "fp32"]


def test_bench_without_the_weights_fails_clearly_and_writes_nothing(tmp_path):
    result = runner.invoke(app, ARGUMENTS, env={"COLUMNS": "300"})
    # The command raises; samforge's entry point prints it as one line and exits with 2.
    assert isinstance(result.exception, DownloadError), result.output
    message = str(result.exception)
    assert "could not download mobilesam_vit_t" in message and message.endswith("add --random.")
    models = tmp_path / "cache" / "models"
    assert not models.exists() or not any(models.iterdir())


def test_bench_random_times_the_tiny_vit_architecture():
    result = runner.invoke(app, [*ARGUMENTS, "--random"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "mobilesam_vit_t (random weights)" in result.output
    assert "embed image" in result.output and "decode 32 boxes" in result.output


def test_bench_compare_prints_every_step_beside_the_first_model():
    """``--compare`` times a second model in the same run: each model's own table, then one
    with both medians per step and their ratio, which must agree with the two tables."""
    arguments = [*ARGUMENTS, "--random", "--compare", "samforge_random_tiny"]
    result = runner.invoke(app, arguments, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert sum("encoder path" in line for line in lines) == 2
    header = next(line for line in lines if "samforge_random_tiny / mobilesam_vit_t" in line)
    assert "mobilesam_vit_t ms" in header and "samforge_random_tiny ms" in header
    for step in ("embed image", "decode 1 box", "decode 32 boxes"):
        rows = [line for line in lines if step in line]
        # each model's own table (median, min, per object, objects/s), then the comparison
        assert len(rows) == 3, rows
        first, second = (float(row.split("│")[2]) for row in rows[:2])
        cells = [cell.strip() for cell in rows[2].split("│")]
        assert float(cells[2]) == pytest.approx(first, abs=0.051)
        assert float(cells[3]) == pytest.approx(second, abs=0.051)
        assert float(cells[4].rstrip("×")) == pytest.approx(second / first, rel=0.05, abs=0.01)
