"""``samforge evaluate interactive3d``: prompt each object on its central slice, propagate
through the volume, report 3D Dice/HD95/NSD; propagation settings are tuned on
``--val-data`` only, then applied to ``--data``.

Writes ``results.csv`` (one row per object and setting, ``level`` object; on the test data
also one per class, ``level`` class; ``split`` = val for the grid, test for the chosen
setting), ``summary.json`` (test means per object, per class and per class id), two plots
and ``report.html`` into ``--out``. Slice embeddings are cached on disk (``--cache``,
default ``OUT/embeddings``), so a rerun (another grid, another start prompt) does not embed
the volumes again.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..data import choose_split, open_dataset
from ..errors import ConfigError
from ..evaluation import read_csv
from ..evaluation.interactive3d import (
    DEFAULT_BOX_EXTENSIONS,
    DEFAULT_IOU_THRESHOLDS,
    START_PROMPTS_3D,
    Protocol3D,
    micro_sam_grid,
    run_interactive3d,
    settings_grid,
    write_interactive3d_report,
)
from ..evaluation.report import RESULTS_CSV, write_csv
from ..files import locked_folder
from ..prompts.volume_prompts import PROMPT_MODES
from ..workflows.leakage import check_evaluation_overlap
from ..workflows.predictors import load_predictors
from .options import intensity_option, window_option

console = Console()


def interactive3d(
    ctx: typer.Context,
    model: list[str] = typer.Option(
        ..., "--model", "-m", help="Registered model name or checkpoint file; repeatable."
    ),
    data: Path = typer.Option(
        ..., "--data", "-d", exists=True, help="Test volumes with labels (any layout)."
    ),
    val_data: Path = typer.Option(
        ..., "--val-data", exists=True, help="Validation volumes: the only data tuned on."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    split: str | None = typer.Option(
        None, "--split", help="Split of --data where it has named splits (nnU-Net) [test]."
    ),
    allow_overlap: bool = typer.Option(
        False, "--allow-overlap", help="Evaluate a trained model even on its training cases."
    ),
    start: str = typer.Option(
        "box",
        help="Prompt on the central slice: box, points (micro-sam's random positive and "
        "negative point) or point (the innermost pixel).",
    ),
    mode: list[str] = typer.Option(
        list(PROMPT_MODES), "--mode", help="Propagation modes to try; repeatable."
    ),
    iou_threshold: list[float] = typer.Option(
        list(DEFAULT_IOU_THRESHOLDS),
        "--iou-threshold",
        min=0.0,
        max=1.0,
        help="IoU stops to try; repeatable.",
    ),
    box_extension: list[float] = typer.Option(
        list(DEFAULT_BOX_EXTENSIONS),
        "--box-extension",
        min=0.0,
        help="Box extensions to try (fraction < 1, pixels ≥ 1); repeatable.",
    ),
    grid: str = typer.Option(
        "given",
        help="given: the --mode × --iou-threshold × --box-extension values; micro-sam: "
        "micro-sam's grid (5 modes × IoU 0.5–0.9 × extension 0–0.25 by 0.025, 275 settings).",
    ),
    min_size: int = typer.Option(20, min=0, help="Smallest object (3D component) in voxels."),
    connectivity: int = typer.Option(
        3,
        min=1,
        max=3,
        help="Objects' connectivity: 3 (26-connected, medico-sam's), 2 (18) or 1 (6).",
    ),
    max_objects: int | None = typer.Option(
        None, min=1, help="At most this many objects per volume (the largest)."
    ),
    intensity: str = intensity_option(),
    window: str | None = window_option(),
    nsd_tolerance: float = typer.Option(
        2.0, min=0.0, help="NSD tolerance in mm (units of spacing)."
    ),
    cache: Path | None = typer.Option(
        None, help="Embedding cache folder, reused by later runs [OUT/embeddings]."
    ),
    seed: int = typer.Option(0, help="Seed of the random points of --start points."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Interactive 3D: central-slice prompt, propagation, settings tuned on --val-data."""
    if start not in START_PROMPTS_3D:
        raise ConfigError(f"--start {start!r} not understood; use box, points or point.")
    if grid not in ("given", "micro-sam"):
        raise ConfigError(f"--grid {grid!r} not understood; use given or micro-sam.")
    protocol = Protocol3D(
        start, min_size, max_objects, intensity, nsd_tolerance, window, connectivity, seed
    )
    settings = (
        micro_sam_grid()
        if grid == "micro-sam"
        else settings_grid(mode, iou_threshold, box_extension)
    )
    if val_data.resolve() == data.resolve():
        raise ConfigError("--val-data and --data are the same: tune on separate volumes.")
    val_cases = open_dataset(val_data)
    test_cases = open_dataset(data, split=choose_split(data, "auto", split, "test"))
    check_evaluation_overlap(model, [(data.name, test_cases)], allow_overlap)
    ctx.with_resource(locked_folder(out))  # one run per folder: none drops another's rows
    predictors = load_predictors(model, cache or out / "embeddings")
    total = len(predictors) * (len(val_cases) + len(test_cases))
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not progress,
        console=console,
    ) as bar:
        task = bar.add_task("volumes", total=total)
        slices = bar.add_task("slices embedded", total=None, visible=False)

        def embedded(done: int, to_do: int) -> None:
            bar.update(slices, completed=done, total=to_do, visible=done < to_do)

        rows, summary = run_interactive3d(
            predictors,
            val_cases,
            test_cases,
            settings,
            protocol,
            on_case=lambda case: bar.advance(task),
            rows=read_csv(out / RESULTS_CSV),
            checkpoint=lambda rows: write_csv(out / RESULTS_CSV, rows),
            on_embedded=embedded,
        )
    report = write_interactive3d_report(out, rows, summary)
    for row in summary["test_results"]:
        console.print(
            f"{row['model']}: {row['setting']} (tuned on validation) → test Dice "
            f"{row['dice']:.3f} over {row['objects']} objects",
            highlight=False,
        )
    console.print(f"report: {report}", highlight=False, soft_wrap=True)
