"""``samforge models``: list the registered models and download their checkpoints."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from ..models import hub, registry

app = typer.Typer(
    help="List the registered models and download their checkpoints into the cache.",
    no_args_is_help=True,
)


@app.command("list")
def list_models(
    pattern: str | None = typer.Argument(None, help="Only names matching this glob, e.g. 'sam_*'."),
) -> None:
    """Show every registered model: architecture, input size, preprocessing, cache state."""
    table = Table(title=f"samforge models (cache: {hub.cache_dir() / 'models'})")
    for column in ("name", "architecture", "input", "preprocessing", "cached", "url"):
        table.add_column(column, overflow="fold")
    for name in registry.list_models(pattern):
        spec = registry.get_model_spec(name)
        table.add_row(
            name,
            spec.architecture,
            f"{spec.input_size}²",
            spec.preprocessing,
            _cache_state(spec),
            spec.url or "built in (random, untrained)",
        )
    Console().print(table)


@app.command("fetch")
def fetch(
    name: str = typer.Argument(..., help="Registered model name (see `samforge models list`)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Download a model's checkpoint into the cache and verify its checksum."""
    spec = registry.get_model_spec(name)
    console = Console()
    if spec.init == "random":
        console.print(f"{spec.name} is built in (randomly initialised): nothing to download.")
        return
    path = hub.fetch(spec, progress=progress)
    check = (
        f"{spec.checksum_algorithm} verified"
        if spec.checksum
        else "no checksum published, not verified"
    )
    console.print(f"{spec.name}: {path} ({check})", highlight=False, soft_wrap=True)


def _cache_state(spec: registry.ModelSpec) -> str:
    if spec.init == "random":
        return "built in"
    return "yes" if hub.is_cached(spec) else "no"
