"""``samforge models``: list the registered models, download their checkpoints, export."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..models import export_model, export_onnx, load_model
from ..models.checkpoints import hub, registry

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
            spec.url or _built_in_source(spec),
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
    if spec.init == "package":
        path = hub.packaged_path(spec)
        verified = f"{spec.checksum_algorithm} verified"
        console.print(f"{spec.name} ships with samforge: {path} ({verified})", highlight=False)
        return
    path = hub.fetch(spec, progress=progress)
    check = (
        f"{spec.checksum_algorithm} verified"
        if spec.checksum
        else "no checksum published, not verified"
    )
    console.print(f"{spec.name}: {path} ({check})", highlight=False, soft_wrap=True)


def _built_in_source(spec: registry.ModelSpec) -> str:
    return "ships with samforge" if spec.init == "package" else "built in (random, untrained)"


def _cache_state(spec: registry.ModelSpec) -> str:
    if spec.is_built_in:
        return "built in"
    return "yes" if hub.is_cached(spec) else "no"


@app.command("export")
def export(
    source: str = typer.Argument(..., help="Registry name or checkpoint (e.g. a training .ckpt)."),
    out: Path | None = typer.Argument(
        None, help="File to write: .pth (official layout) or .safetensors."
    ),
    onnx: Path | None = typer.Option(
        None, "--onnx", help="Instead, write ONNX graphs (encoder, decoders) into this folder."
    ),
    single_mask: bool = typer.Option(
        False, "--single-mask", help="With --onnx: decoder.onnx returns one mask (SAM's rule)."
    ),
) -> None:
    """Write a model in its family's public format (SAM's official one for SAM models): e.g.
    the weights of a training checkpoint, for SAM annotation tools or the registry; or, with
    --onnx, as ONNX graphs in SAM's decoder signature, each checked with ONNX Runtime."""
    if (out is None) == (onnx is None):
        raise typer.BadParameter("give either OUT (a file) or --onnx FOLDER, not both or none.")
    model = load_model(source)
    console = Console()
    if onnx is not None:
        with console.status("exporting") as status:
            written = export_onnx(model, onnx, single_mask=single_mask, progress=status.update)
        for graph, error in written.errors.items():
            path = written.path(graph)
            size = path.stat().st_size / 2**20
            line = f"{path}: {size:.1f} MiB, ONNX Runtime vs PyTorch relative error {error:.1e}"
            console.print(line, highlight=False, soft_wrap=True)
        return
    assert out is not None  # one of the two, checked above
    path = export_model(model, out, provenance={"exported_from": str(source)})
    digest = hub.file_digest(path, "sha256")
    size = path.stat().st_size / 2**20
    console.print(f"{path}: {size:.1f} MiB, sha256:{digest}", highlight=False, soft_wrap=True)
