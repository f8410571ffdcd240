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
