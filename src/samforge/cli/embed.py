"""``samforge embed``: precompute the embeddings of a whole dataset into a disk cache,
data-parallel over devices and nodes (Lightning)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from ..data import IntensitySettings
from ..inference.disk_cache import DiskEmbeddingCache
from ..inference.precision import DEFAULT_PRECISION
from .options import intensity_option, window_option

console = Console()


def embed(
    data: Path = typer.Argument(..., help="Dataset folder or file (any layout samforge reads)."),
    model: str = typer.Option("samforge_nano", "--model", "-m", help="Registry name or file."),
    cache: Path = typer.Option(
        Path("embeddings"), "--cache", help="Disk cache folder (shared by processes and runs)."
    ),
    devices: str = typer.Option("1", help="Devices per node: a number, or 'auto'."),
    num_nodes: int = typer.Option(1, "--num-nodes", min=1, help="Machines (Lightning DDP)."),
    accelerator: str = typer.Option("auto", help="auto, cpu or gpu."),
    strategy: str = typer.Option(
        "auto", help="auto (ddp_spawn for CPU processes, ddp for GPUs/nodes), ddp, ddp_spawn."
    ),
    split: str | None = typer.Option(None, help="The dataset split to embed (default: all)."),
    precision: str = typer.Option(
        DEFAULT_PRECISION,
        help="Encoder arithmetic: auto (bf16 where the CPU or GPU computes it natively), fp32 "
        "or bf16; a Predictor finds the cached embeddings only with the same precision.",
    ),
    intensity: str = intensity_option(),
    window: str | None = window_option(),
) -> None:
    """Embed every image (every slice of every volume) of DATA into the --cache folder.

    A later Predictor, evaluation or annotator session given the same cache, model and
    intensity settings finds each embedding there instead of computing it; rerunning
    embeds only what is missing.
    """
    IntensitySettings(intensity, window)  # a typo fails before any work
    # Lightning costs two seconds and 170 MiB: only this command imports it.
    from ..workflows.embedding import EmbeddingJob, embed_dataset

    job = EmbeddingJob(
        str(data), model, str(cache), intensity, window, split=split, precision=precision
    )
    before = len(DiskEmbeddingCache(cache)) if cache.is_dir() else 0
    started = time.perf_counter()
    embed_dataset(
        job,
        devices=int(devices) if devices.isdigit() else devices,
        num_nodes=num_nodes,
        accelerator=accelerator,
        strategy=strategy,
    )
    seconds = time.perf_counter() - started
    after = len(DiskEmbeddingCache(cache))
    console.print(
        f"{after - before} new embeddings in {seconds:.1f} s; {after} in {cache} "
        "(images already there were not recomputed)"
    )
