"""Every ``samforge`` command pays for what the CLI imports at start: the heavy engines are
imported by the commands that use them (Lightning by ``embed`` and ``train``, FastAPI by
``serve``). Importing them at start cost two seconds and 170 MiB per call, which pushed
``segment`` on a 5000² image over the memory bound of docs/reliability.md."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["lightning", "fastapi", "onnxruntime", "monai"])
def test_the_command_line_starts_without_the_heavy_engines(module):
    probe = f"import sys, samforge.cli; print({module!r} in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False", f"samforge.cli imports {module} at start"
