"""The layers of docs/architecture.md, checked on the source: imports point down only, and no
two samforge modules import each other at load time, directly or around a circle.

The imports are read from the source with ``ast`` (nothing is imported), so a lazy import
inside a function counts for the layer rule too: it still makes the lower layer depend on
the higher one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "samforge"

# Lower number = lower floor. A module may import its own layer's modules and anything
# below; layers on one floor (models and data, inference and training) never import
# each other.
FLOORS = {
    "errors": 0,
    "files": 1,
    "preprocessing": 1,
    "subnormals": 1,
    "models": 2,
    "data": 2,
    "prompts": 3,
    "inference": 4,
    "training": 4,
    "evaluation": 5,
    "testing": 6,
    "workflows": 7,
    "server": 8,
    "cli": 9,  # `samforge serve` starts the server
    "__init__": 10,
    "__main__": 10,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def layer(module: str) -> str:
    """``samforge.models.sam.model`` -> ``models``; the package itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imported_modules(module: str, *, top_level_only: bool) -> set[str]:
    """The samforge modules that ``module`` imports (``from pkg import name`` counts as
    ``pkg.name`` when that is a module, else as ``pkg``)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else target)
    return {name for name in found if name in MODULES and name != module}


def test_every_module_is_on_a_floor():
    assert {layer(module) for module in MODULES} <= set(FLOORS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_layers(module):
    own = layer(module)
    wrong = []
    for target in sorted(imported_modules(module, top_level_only=False)):
        other = layer(target)
        if other == own:
            continue
        if FLOORS[other] >= FLOORS[own]:
            wrong.append(f"{target} ({other}, floor {FLOORS[other]})")
    assert not wrong, f"{module} ({own}, floor {FLOORS[own]}) imports upward or sideways: {wrong}"


def test_no_import_circles():
    graph = {module: imported_modules(module, top_level_only=True) for module in MODULES}
    # A package's __init__ runs before its submodules, so a submodule importing its own
    # package's __init__ is a circle only if that __init__ (transitively) imports it back;
    # the search below finds exactly those.
    circles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)
