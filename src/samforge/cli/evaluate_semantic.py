"""``samforge evaluate semantic``: per-class Dice, HD95 and NSD of semantic models.

Each ``--model`` (a semantic checkpoint or a training run folder) segments every case of
each ``--data`` (its ``test`` split where it has named splits, or the ``--subjects``
chosen); writes ``results.csv`` (one row per model, case and class), ``summary.json``
(means per model and per class, each case's mean), the per-class Dice chart, overlays of
each model's worst cases and ``report.html`` into ``--out``. A run into an existing folder
resumes: the (model, dataset, case) combinations already in ``results.csv`` are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..data import Case, CaseList
from ..evaluation import (
    read_csv,
    run_semantic,
    summarize_semantic,
    worst_overlays,
    write_semantic_report,
)
from ..evaluation.report import RESULTS_CSV, write_csv
from ..files import locked_folder
from ..workflows.semantic_eval import (
    evaluation_settings,
    load_segmenters,
    model_files,
    semantic_datasets,
)
from .options import limit_option

MODEL_HELP = (
    "Semantic checkpoint, or a `samforge train` run folder (semantic presets, monai:unet, "
    "monai:swinunetr); repeat to compare models."
)


def semantic(
    ctx: typer.Context,
    model: list[str] = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    data: list[Path] = typer.Option(
        ..., "--data", "-d", exists=True, help="Labelled dataset (any layout); repeatable."
    ),
    out: Path = typer.Option(
        Path("semantic-evaluation"), "--out", "-o", help="Output folder (resumed if it exists)."
    ),
    split: str | None = typer.Option(
        None, "--split", help="Split of datasets that have them (nnU-Net, MedSegBench) [test]."
    ),
    subjects: list[str] | None = typer.Option(
        None, "--subjects", help="Only these subject ids or ranges (HC18: 250-299); repeatable."
    ),
    classes: list[str] | None = typer.Option(
        None, "--classes", help="Score only these classes (names or ids); repeatable [all]."
    ),
    tolerance_mm: float = typer.Option(
        2.0, "--tolerance-mm", min=0.0, help="NSD tolerance in mm (pixels without a pixel size)."
    ),
    overlap: float = typer.Option(
        0.25, min=0.0, max=0.99, help="Overlap of the sliding windows over large inputs."
    ),
    sw_batch_size: int = typer.Option(4, min=1, help="Windows per forward pass."),
    device: str = typer.Option("cpu", help="Torch device of the models (cpu, cuda, ...)."),
    allow_overlap: bool = typer.Option(
        False, "--allow-overlap", help="Evaluate a trained model even on its training cases."
    ),
    limit: int | None = limit_option(),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Semantic segmentation: per-class Dice, HD95 and NSD, per case and mean."""
    files = model_files(model)
    datasets = semantic_datasets(data, split, subjects, files, allow_overlap)
    if limit is not None:
        datasets = [(name, cases[:limit]) for name, cases in datasets]
    segmenters, info = load_segmenters(
        files, overlap=overlap, sw_batch_size=sw_batch_size, device=device
    )
    settings = evaluation_settings(info, classes, tolerance_mm)
    ctx.with_resource(locked_folder(out))  # one run per folder: none drops another's rows
    rows = run_semantic(
        segmenters,
        datasets,
        settings,
        rows=read_csv(out / RESULTS_CSV),
        checkpoint=lambda rows: write_csv(out / RESULTS_CSV, rows),
        show_progress=progress,
    )
    summary = summarize_semantic(rows, settings)
    overlays = worst_overlays(segmenters, _lookup(datasets), rows, settings)
    report = write_semantic_report(out, rows, summary, overlays, settings)
    console = Console()
    table = Table("model", "dataset", "cases", "Dice", "HD95", "NSD", title="mean over classes")
    for row in summary["per_model"]:
        figures = (f"{row[name]:.3f}" for name in ("dice", "hd95", "nsd"))
        table.add_row(row["model"], row["dataset"], str(row["cases"]), *figures)
    console.print(table)
    console.print(f"report: {report}", highlight=False, soft_wrap=True)


def _lookup(datasets: Sequence[tuple[str, CaseList]]):
    """``lookup(dataset, case)`` over the cases of this run (None for others)."""
    index = {
        (name, case): (cases, i) for name, cases in datasets for i, case in enumerate(cases.names)
    }

    def find(dataset: str, case: str) -> Case | None:
        if (dataset, case) not in index:
            return None
        cases, position = index[(dataset, case)]
        return cases[position]

    return find
