"""``samforge serve``: the browser annotator (see :mod:`samforge.server`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from ..server.settings import MIB, ServerSettings

console = Console()


def serve(
    data_dir: Path = typer.Argument(
        Path("."), help="Folder whose images and volumes the page may open (read-only)."
    ),
    model: str = typer.Option(
        "samforge_nano", "--model", "-m", help="Model a session starts with."
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind; non-loopback needs --token."
    ),
    port: int = typer.Option(8000, "--port", "-p"),
    token: str | None = typer.Option(
        None, "--token", envvar="SAMFORGE_TOKEN", help="Secret every request must carry."
    ),
    workspace: Path | None = typer.Option(
        None,
        "--workspace",
        help="Sessions, uploads, saves, embedding cache [DATA_DIR/../.samforge-serve].",
    ),
    allow_origin: list[str] = typer.Option(
        [], "--allow-origin", help="Another origin allowed to change state (a proxy's URL)."
    ),
    max_upload_mb: int = typer.Option(1024, "--max-upload-mb", help="Largest upload, MiB."),
    max_voxels: int = typer.Option(2**28, "--max-voxels", help="Largest image, voxels."),
    extra_model: list[str] = typer.Option([], "--extra-model", help="More models to offer."),
    engine: str = typer.Option(
        "torch", help="torch, or onnxruntime (the model's ONNX graphs, exported on first use)."
    ),
    precision: str = typer.Option(
        "auto",
        help="Image encoder arithmetic: auto (bf16 where the CPU or GPU computes it natively, "
        "else fp32), fp32 (exact, the official model's) or bf16.",
    ),
) -> None:
    """Annotate images and volumes in the browser: boxes, clicks, brush, 3D propagation."""
    import uvicorn

    from ..server import create_app

    data_dir = data_dir.expanduser().resolve()
    settings = ServerSettings(
        data_dir,
        workspace or data_dir.parent / f".samforge-serve-{data_dir.name}",
        model=model,
        host=host,
        port=port,
        token=token,
        allowed_origins=tuple(allow_origin),
        max_upload_bytes=max_upload_mb * MIB,
        max_voxels=max_voxels,
        extra_models=tuple(extra_model),
        engine=engine,
        precision=precision,
    )
    app = create_app(settings)
    url = settings.url + (f"?token={token}" if token else "")
    console.print(
        f"samforge annotator on [bold]{url}[/bold]  (data: {settings.data_dir}, "
        f"state: {settings.workspace}); Ctrl+C stops it.",
        soft_wrap=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
