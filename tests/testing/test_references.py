""":mod:`samforge.testing`: references load lazily, and say how to install a missing one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import samforge
from samforge.errors import SamforgeError
from samforge.models.config import VIT_TEST
from samforge.testing import ReferenceUnavailableError
from samforge.testing.references import import_reference
from samforge.testing.timing import benchmark_architecture, machine_description, paired_medians


def test_a_missing_reference_names_the_install_command():
    with pytest.raises(ReferenceUnavailableError, match="pip install no-such-reference") as error:
        import_reference("samforge_no_such_reference", "pip install no-such-reference")
    assert isinstance(error.value, SamforgeError)


def test_importing_samforge_testing_imports_no_reference_package():
    code = (
        "import sys\n"
        "import samforge.testing.official, samforge.testing.robust, samforge.testing.timing\n"
        "loaded = [m for m in ('segment_anything', 'robust_segment_anything', 'torchvision')"
        " if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    source = Path(samforge.__file__).parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(source)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_paired_medians_warm_up_then_alternate():
    calls = []
    reference, ours = paired_medians(lambda: calls.append("r"), lambda: calls.append("o"), 3)
    assert calls == ["r", "o"] * 4  # one warm-up call each, then three timed rounds in turn
    assert reference >= 0 and ours >= 0


def test_benchmark_architecture_and_machine():
    config, arch = benchmark_architecture("vit_test")
    assert config == VIT_TEST and arch["embed_dim"] == VIT_TEST.encoder_embed_dim
    assert "torch threads" in machine_description()
