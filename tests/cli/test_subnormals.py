"""The ``samforge`` command computes with subnormal floats flushed to zero (they made CPU
training twice as slow: docs/training.md, "Speed on a CPU"), and a program that runs the
command's ``main`` in its own process gets its setting back afterwards."""

from __future__ import annotations

import subprocess
import sys

import pytest

import samforge.cli
from samforge.subnormals import flushing_subnormals


def test_main_runs_the_command_flushed_and_restores_the_setting(monkeypatch):
    seen = []

    def command() -> None:
        seen.append(flushing_subnormals())
        raise SystemExit(0)

    monkeypatch.setattr(samforge.cli, "app", command)
    assert not flushing_subnormals()
    with pytest.raises(SystemExit):
        samforge.cli.main()
    assert seen == [True]
    assert not flushing_subnormals()


def test_torch_threads_of_the_command_inherit_the_switch():
    """Threads started inside the command flush too (not only the main thread)."""
    probe = (
        "import threading, samforge.cli\n"
        "from samforge.subnormals import flushing_subnormals\n"
        "seen = []\n"
        "def command():\n"
        "    worker = threading.Thread(target=lambda: seen.append(flushing_subnormals()))\n"
        "    worker.start(); worker.join()\n"
        "samforge.cli.app = command\n"
        "samforge.cli.main()\n"
        "print(seen)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[True]"
