"""docs/fidelity.md names, for each reference detail, the test that pins it: every test it
names must exist, so the table cannot point at a test that was renamed or removed."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# `tests/x/test_y.py::test_z` names a test; a bare `::test_z` one of the file named last.
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`")


def test_every_test_the_fidelity_table_names_exists():
    text = (REPO_ROOT / "docs" / "fidelity.md").read_text()
    current, named = None, 0
    for match in REFERENCE.finditer(text):
        path, name = match.groups()
        current = path or current
        assert current is not None, f"{match.group(0)} follows no file"
        source = (REPO_ROOT / current).read_text()
        if name:
            assert f"def {name}(" in source, f"{current}::{name} does not exist"
            named += 1
    assert named >= 40
