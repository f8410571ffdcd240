"""The ``samforge`` command turns on PyTorch's huge-page allocation for large tensors
(``THP_MEM_ALLOC_ENABLE``, read by PyTorch at its first allocation): decoding many objects
and the interactive protocol measured 1.2× faster with it (docs/performance.md). A user's
own setting wins, and a process that imported torch first is left as it is."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "import os, {first}; print(os.environ.get('THP_MEM_ALLOC_ENABLE'))"


def _run(first: str, **environment: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    env.update(environment)
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(first=first)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_samforge_first_turns_huge_pages_on():
    assert _run("samforge") == "1"


def test_the_users_setting_wins():
    assert _run("samforge", THP_MEM_ALLOC_ENABLE="0") == "0"


def test_a_process_that_imported_torch_first_is_left_alone():
    assert _run("torch, samforge") == "None"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="transparent huge pages: Linux")
def test_large_tensors_are_backed_by_huge_pages_where_the_kernel_allows_them():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as settings:
            mode = settings.read()
    except OSError:
        pytest.skip("this kernel has no transparent huge pages")
    if "[never]" in mode:
        pytest.skip("transparent huge pages are switched off on this machine")
    probe = (
        "import samforge, torch\n"
        "kept = [torch.ones(2**24) for _ in range(2)]\n"  # two 64 MiB tensors, touched
        "print(sum(int(line.split()[1]) for line in open('/proc/self/smaps')"
        " if line.startswith('AnonHugePages')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 64 * 1024  # kB: at least one tensor's worth
