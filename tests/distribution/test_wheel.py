"""The wheel alone is a working samforge: built from this tree, installed without the
source tree, it runs ``samforge demo --quick``. Catches package data (the built-in model,
presets, recipes) that a source checkout has but a wheel would lack."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # --no-build-isolation: the test environment already has setuptools; nothing is fetched.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(REPO_ROOT),
        ],
        check=True,
        cwd=out,
    )
    (built,) = out.glob("samforge-*.whl")
    return built


def test_wheel_ships_the_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "samforge/py.typed",
        "samforge/weights/samforge_nano.pth",  # v1
        "samforge/weights/samforge_nano_v2.pth",
        "samforge/configs/medicosam.yaml",
        "samforge/configs/recipes/samforge_nano.yaml",
        "samforge/server/static/index.html",
        "samforge/server/static/app.js",
    ):
        assert needed in names, f"{needed} is missing from {wheel.name}"
    assert not any(name.startswith(("tests/", "benchmarks/", "experiments/")) for name in names)


@pytest.mark.slow
def test_installed_wheel_runs_the_quick_demo(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
    )
    # The wheel's samforge comes first on the path; the dependencies are the environment's.
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-P", "-c", "import samforge; print(samforge.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=tmp_path,
    ).stdout.strip()
    assert Path(where).is_relative_to(site), f"samforge was imported from {where}, not the wheel"
    demo = subprocess.run(
        [sys.executable, "-P", "-m", "samforge", "demo", "--quick", "--out", "report"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert (tmp_path / "report" / "report.html").stat().st_size > 10_000
