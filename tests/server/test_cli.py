"""``samforge serve`` on the command line: what it refuses before starting anything."""

from __future__ import annotations

from typer.testing import CliRunner

from helpers.fake_models import BoxSam
from samforge.cli import app
from samforge.errors import ConfigError, DataError
from samforge.server.models import ModelPool
from samforge.server.settings import ServerSettings


def test_serve_refuses_other_addresses_without_a_token(tmp_path):
    result = CliRunner().invoke(app, ["serve", str(tmp_path), "--host", "0.0.0.0"])
    assert isinstance(result.exception, ConfigError)
    assert "--token" in str(result.exception)


def test_serve_refuses_a_missing_data_folder(tmp_path):
    result = CliRunner().invoke(app, ["serve", str(tmp_path / "nowhere")])
    assert isinstance(result.exception, DataError)
    assert "does not exist" in str(result.exception)


def test_serve_is_listed_with_its_options():
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--model", "--host", "--token", "--max-upload-mb", "--max-voxels"):
        assert option in result.output


def test_serve_takes_the_engine_and_precision(tmp_path):
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert "--engine" in result.output and "--precision" in result.output
    for option, value in (("--engine", "tensorrt"), ("--precision", "fp16")):
        result = CliRunner().invoke(app, ["serve", str(tmp_path), option, value])
        assert isinstance(result.exception, ConfigError)
        assert value in str(result.exception)


def test_sessions_run_in_the_servers_precision_and_share_one_encoder(tmp_path):
    """Every session's Predictor takes the server's precision, and all of them embed
    through one engine: one bf16 encoder copy per model, not one per session."""
    settings = ServerSettings(tmp_path, tmp_path / "work", model="box", precision="bf16")
    pool = ModelPool(settings, loader=lambda name: BoxSam().eval())
    first, second = pool.predictor("box"), pool.predictor("box")
    assert first.precision == second.precision == "bf16"
    assert first.encoder is second.encoder
    exact = ModelPool(ServerSettings(tmp_path, tmp_path / "w2", model="box", precision="fp32"))
    exact.loader = lambda name: BoxSam().eval()
    assert exact.predictor("box").precision == "fp32"
