"""Helpers of the hostile-input suite (tests/hostile/)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from samforge.files import TEMPORARY_PREFIX


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    def refused(self, *words: str) -> None:
        """Exit 2 with one line on stderr that says ``words`` (case-insensitive), no traceback."""
        assert self.code == 2, (self.code, self.stdout, self.stderr)
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), self.stderr
        for word in words:
            assert word.lower() in lines[0].lower(), (word, lines[0])


def run_samforge_process(*args: object, timeout: float = 120, **kwargs) -> Outcome:
    """``python -m samforge ARGS`` in a child process (for what must not hang or leak)."""
    done = subprocess.run(
        [sys.executable, "-m", "samforge", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


BOX = ("--box", 5, 5, 30, 25)


def leftovers(folder: Path) -> list[Path]:
    """Temporary files samforge left in ``folder`` (the lock file is not one)."""
    return [p for p in folder.rglob("*") if p.name.startswith(TEMPORARY_PREFIX)]


# The child reports the high-water mark of its own memory map (VmHWM). Not ru_maxrss:
# Linux carries the forking parent's peak into it across exec, so a big test runner would
# inflate every child's figure.
_MEASURED = """
import atexit, resource, runpy, sys
def report():
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print("peak-rss-kib", peak, file=sys.stderr)
atexit.register(report)
if len(sys.argv) > 1 and sys.argv[1] == "--address-space":
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    del sys.argv[1:3]
sys.argv[0] = "samforge"
runpy.run_module("samforge", run_name="__main__")
"""


def run_measured(
    *args: object, address_space: int | None = None, timeout: float = 300, **kwargs
) -> tuple[Outcome, int]:
    """``samforge ARGS`` in a child process; the outcome (without the measurement line) and
    the child's own peak resident memory in bytes (Linux: /proc/self/status).
    ``address_space`` caps the child's virtual memory (RLIMIT_AS), so that a test of a
    memory bomb cannot take the machine."""
    limit = () if address_space is None else ("--address-space", address_space)
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, *map(str, limit), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
    lines = done.stderr.splitlines()
    peaks = [int(line.split()[1]) for line in lines if line.startswith("peak-rss-kib ")]
    stderr = "".join(line + "\n" for line in lines if not line.startswith("peak-rss-kib "))
    return Outcome(done.returncode, done.stdout, stderr), (peaks[-1] * 1024 if peaks else 0)
