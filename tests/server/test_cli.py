"""``samforge serve`` on the command line: what it refuses before starting anything."""

from __future__ import annotations

from typer.testing import CliRunner

from samforge.cli import app
from samforge.errors import ConfigError, DataError


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
