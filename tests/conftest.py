"""Shared fixtures.

Real data lives beside the repository (``../shared/data``) or wherever
``SAMFORGE_SHARED_DATA`` points; tests that need it skip, with the reason, when it is absent.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Lightning (through torchmetrics) probes for torchvision once, at import; importing it here,
# before any test installs the torchvision stand-in of samforge.testing.references (which the
# official and robust references need), makes the probe see the truth (no torchvision)
# instead of a stand-in module without an import spec.
import lightning.pytorch  # noqa: F401
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # makes ``helpers`` importable

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    candidate = Path(os.environ.get("SAMFORGE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder; skips the test when it is absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("real data not found: set SAMFORGE_SHARED_DATA or place it at ../shared/data")
    return path


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: steadier on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
