"""The documentation site builds in strict mode (a broken link, a missing page or a
docstring the API reference cannot render fails), and its API reference holds the public
names a user starts from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_site_builds_strictly_with_the_api_reference(tmp_path):
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stdout + built.stderr
    top = (site / "api" / "samforge" / "index.html").read_text()
    for name in ("samforge.load_model", "samforge.Predictor", "samforge.export_official"):
        assert f'id="{name}"' in top, f"{name} is missing from the API reference"
    models = (site / "api" / "models" / "index.html").read_text()
    assert 'id="samforge.models.SamConfig"' in models
    assert "Unreleased" in (site / "changelog" / "index.html").read_text()
