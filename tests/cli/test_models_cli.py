"""``samforge models``: the registry as a user sees it."""

from __future__ import annotations

from typer.testing import CliRunner

from samforge.cli import app
from samforge.models import list_models

runner = CliRunner()


def test_models_list_shows_every_registered_model():
    result = runner.invoke(app, ["models", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in list_models():
        assert name in result.output


def test_fetch_of_an_unknown_name_says_what_exists():
    result = runner.invoke(app, ["models", "fetch", "sam_vit_q"])
    assert result.exit_code != 0
    assert "sam_vit_b" in str(result.exception) + result.output
