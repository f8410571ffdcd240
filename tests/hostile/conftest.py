"""The hostile-input suite (issue 15): each test feeds samforge what a careless or hostile
user would, the way users do (the ``samforge`` entry point, or the Python API), and checks
that nothing is lost, nothing is read that should not be, and a user error is one line on
stderr with exit status 2."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.fake_models import BoxSam
from helpers.hostile import Outcome
from samforge.cli import main
from samforge.models.config import VIT_TEST


@pytest.fixture
def samforge(monkeypatch, capsys):
    """Run ``samforge ARGS`` in this process through its real entry point (``main``)."""

    def run(*args: object) -> Outcome:
        monkeypatch.setattr(sys, "argv", ["samforge", *map(str, args)])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


@pytest.fixture
def box_model(monkeypatch):
    """``segment --model anything`` gets the box oracle: it segments exactly the box."""
    model = BoxSam(VIT_TEST).eval()
    monkeypatch.setattr("samforge.cli.segment_all.load_model", lambda name: model)
    return model


def write_grey_png(path: Path) -> Path:
    image = np.random.default_rng(0).integers(0, 255, size=(40, 60), dtype=np.uint8)
    Image.fromarray(image).save(path)
    return path


@pytest.fixture
def png(tmp_path) -> Path:
    """A 40×60 grey PNG."""
    return write_grey_png(tmp_path / "scan.png")


@pytest.fixture(scope="module")
def png_path(tmp_path_factory) -> Path:
    """A 40×60 grey PNG shared by a module's tests (never written to)."""
    return write_grey_png(tmp_path_factory.mktemp("image") / "scan.png")


def _mount_tmpfs(folder: Path, options: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    return done.returncode == 0


def _unmount(folder: Path) -> None:
    gc.collect()  # a library's file object left open by the failed write holds the mount
    subprocess.run(["umount", "--lazy", str(folder)], check=True)


@pytest.fixture
def read_only_folder(tmp_path) -> Iterator[Path]:
    """An empty folder nobody may write into: mode 0555, or for root (whom modes do not
    stop) a read-only tmpfs; skips where root cannot mount."""
    folder = tmp_path / "read-only"
    if os.geteuid() != 0:
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if not _mount_tmpfs(folder, "ro,size=64k"):
        pytest.skip("running as root without permission to mount a read-only tmpfs")
    yield folder
    _unmount(folder)


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 64 KiB tmpfs (a disk that fills up for real); skips where it cannot be mounted."""
    folder = tmp_path / "small-disk"
    if os.geteuid() != 0 or not _mount_tmpfs(folder, "size=64k"):
        pytest.skip("mounting a small tmpfs needs root")
    yield folder
    _unmount(folder)
