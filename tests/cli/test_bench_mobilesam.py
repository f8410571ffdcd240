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
