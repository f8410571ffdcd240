"""``samforge train``: fine-tune a model from a YAML config or a preset."""

from __future__ import annotations

from pathlib import Path

import torch
import typer
from rich.console import Console

from ..training import PRESETS, load_config

console = Console()


def train(
    config: str = typer.Option(
        ...,
        "--config",
        "-c",
        help=f"A YAML config file, or a preset: {', '.join(PRESETS)}.",
    ),
    overrides: list[str] = typer.Option(
        [],
        "--set",
        help="Override one setting, e.g. --set trainer.max_steps=50 (repeatable).",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run from its newest checkpoint."
    ),
    check: bool = typer.Option(
        False, "--check", help="Validate the config and print it resolved; train nothing."
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        min=1,
        help="Torch threads of the training process and of each data loader worker "
        "[default: torch's choice; one per loader worker].",
    ),
) -> None:
    """Fine-tune a SAM-family model (MedicoSAM, MedSAM, RobustMedSAM or SAM-UNet recipe).

    Writes checkpoints, CSV and TensorBoard logs and the final model (SAM tools load it)
    into <output_dir>/<name>/. See docs/training.md.
    """
    resolved = load_config(Path(config) if Path(config).is_file() else config, overrides)
    if check:
        console.print(resolved.to_yaml(), highlight=False)
        return
    from ..training import train as run  # Lightning loads only when training

    if threads is not None:
        torch.set_num_threads(threads)
    result = run(resolved, resume=resume, threads=threads)
    if result.export_path is not None:
        console.print(
            f"[green]done[/]: {result.global_step} steps; model {result.export_path}; "
            f"logs {result.run_dir / 'logs'}",
            highlight=False,
        )
