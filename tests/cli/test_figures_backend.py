"""samforge draws without pyplot and leaves a user's matplotlib backend alone.

Run in a fresh interpreter: the backend is process-wide state, and other tests (or the
libraries they load: torchmetrics imports pyplot) would blur what samforge itself does.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import samforge

SOURCE = Path(samforge.__file__).parent

SCRIPT = r"""
import sys
import traceback
from pathlib import Path

import matplotlib

matplotlib.use("svg")  # the user's choice, made before samforge is imported

SOURCE = sys.argv[1]
importers = []


class WhoImportsPyplot:
    # Records the code that asks for matplotlib.pyplot: the innermost frame outside importlib.
    def find_spec(self, name, path=None, target=None):
        if name == "matplotlib.pyplot":
            frames = [f for f in traceback.extract_stack() if "importlib" not in f.filename]
            importers.append(frames[-2].filename)
        return None


sys.meta_path.insert(0, WhoImportsPyplot())

import numpy as np
from PIL import Image
from typer.testing import CliRunner

import samforge.cli
from samforge.evaluation.interactive3d import write_interactive3d_report

out = Path(sys.argv[2])
Image.fromarray(np.full((32, 32), 90, np.uint8)).save(out / "image.png")
result = CliRunner().invoke(
    samforge.cli.app, ["data", "contact-sheet", str(out / "image.png"), str(out / "sheet.png")]
)
assert result.exit_code == 0, result.output
rows = [{"model": "m", "split": "test", "dice": 0.5, "setting": "box"}]
summary = {
    "validation_grid": [{"model": "m", "setting": "box", "val_dice": 0.5}],
    "chosen_settings": {"m": {"setting": "box"}},
}
write_interactive3d_report(out / "report3d", rows, summary)
assert (out / "sheet.png").stat().st_size > 0
assert (out / "report3d" / "validation_grid.png").stat().st_size > 0
by_samforge = [name for name in importers if name.startswith(SOURCE)]
assert not by_samforge, f"samforge imported matplotlib.pyplot: {by_samforge}"
print("backend", matplotlib.get_backend())
"""


def test_drawing_keeps_the_users_backend_and_never_imports_pyplot(tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(SOURCE.parent), "MPLBACKEND": ""}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(SOURCE), str(tmp_path)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "backend svg"


def test_no_source_file_imports_pyplot_or_sets_a_backend():
    offenders = []
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr == "use" and getattr(node.func.value, "id", "") == "matplotlib":
                    names = ["matplotlib.use"]
            offenders += [
                f"{path.relative_to(SOURCE)}:{node.lineno} {name}"
                for name in names
                if name.startswith("matplotlib.pyplot") or name == "matplotlib.use"
            ]
    assert not offenders
