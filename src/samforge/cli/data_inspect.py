"""``samforge data inspect PATH``: what a dataset holds, case by case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.console import Console, JustifyMethod
from rich.progress import track
from rich.table import Table

from ..data import LAYOUTS, Case, object_sizes, open_dataset

console = Console()


def inspect(
    path: Path = typer.Argument(..., help="Dataset folder or file (any layout samforge reads)."),
    layout: str = typer.Option("auto", help=f"One of: {', '.join(LAYOUTS)}."),
    modality: str | None = typer.Option(None, help="Force a modality: ct, mr, us, xray, other."),
    split: str | None = typer.Option(
        None, help="nnU-Net: train/test; MedSegBench: train/val/test."
    ),
    min_size: int = typer.Option(20, min=0, help="Smallest object (pixels/voxels) that counts."),
    limit: int | None = typer.Option(None, min=1, help="Inspect only the first N cases."),
) -> None:
    """Print a table of cases: modality, size, spacing, classes, object counts and sizes.

    Objects are connected components of each class with at least --min-size pixels (voxels
    for volumes), the objects that training and evaluation prompt.
    """
    dataset = open_dataset(path, layout=layout, modality=modality, split=split)
    cases = dataset if limit is None else dataset[:limit]
    table = _table(f"{path} — {dataset.description}", min_size)
    all_sizes: list[int] = []
    for case in track(cases, description="reading", console=console, transient=True):
        row, sizes = _row(case, min_size)
        table.add_row(*row)
        all_sizes.extend(sizes)
    console.print(table)
    subjects = len(set(cases.subjects))
    console.print(
        f"{len(cases)} cases of {len(dataset)}, {subjects} subjects, {len(all_sizes)} "
        f"objects ≥ {min_size} px{_size_summary(all_sizes)}"
    )


def _table(title: str, min_size: int) -> Table:
    table = Table(title=title)
    columns: list[tuple[str, JustifyMethod]] = [
        ("case", "left"),
        ("subject", "left"),
        ("modality", "left"),
        ("size", "right"),
        ("spacing", "right"),
        ("classes", "left"),
        (f"objects ≥{min_size}", "right"),
        ("object size min/median/max", "right"),
    ]
    for name, justify in columns:
        table.add_column(name, justify=justify)
    return table


def _row(case: Case, min_size: int) -> tuple[list[str], list[int]]:
    size = "×".join(str(n) for n in case.image.shape)
    spacing = "×".join(f"{s:.3g}" for s in case.spacing)
    if case.label is None:
        return [case.name, case.subject, case.modality, size, spacing, "—", "—", "—"], []
    counts = object_sizes(case.label, case.objects, min_size)
    sizes = sorted(s for per_class in counts.values() for s in per_class)
    classes = ", ".join(str(c) for c in counts) or "none"
    if len(classes) > 40:
        classes = f"{len(counts)} classes ({min(counts)}–{max(counts)})"
    spread = "—" if not sizes else f"{sizes[0]} / {int(np.median(sizes))} / {sizes[-1]}"
    row = [case.name, case.subject, case.modality, size, spacing, classes, str(len(sizes)), spread]
    return row, sizes


def _size_summary(sizes: list[int]) -> str:
    if not sizes:
        return "."
    return f", median size {int(np.median(sizes))} px."
