"""``samforge evaluate``: interactive 2D and robustness evaluations with reports.

Runs write ``results.csv`` (long format), ``summary.json``, PNG plots and ``report.html``
into ``--out``. A dataset with named splits (MedSegBench, SA-Med2D-20M, nnU-Net) is evaluated
on its ``test`` split unless ``--split`` says otherwise; a model from a training run folder is
refused on the cases it was trained on (``--allow-overlap`` to insist). A run into an
existing folder resumes: the (model, case, start[, corruption,
severity]) combinations already in ``results.csv`` are skipped, and image embeddings are
cached on disk (``--cache``, default ``OUT/embeddings``), shared by later runs. A run
holds its ``--out`` folder: a second run into it at the same time is refused, naming the
first, so that neither drops the other's rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console

from ..data import CaseList, choose_split, open_dataset
from ..data.corruptions import PAPER_SEVERITY, resolve_corruption_names
from ..errors import ConfigError
from ..evaluation import (
    START_PROMPTS,
    EvalImage,
    InteractiveSettings,
    iter_images,
    read_csv,
    run_interactive2d,
    run_robustness,
    summarize_interactive,
    summarize_robustness,
    write_interactive_report,
    write_robustness_report,
)
from ..evaluation.report import RESULTS_CSV, write_csv
from ..files import locked_folder
from ..workflows.leakage import check_evaluation_overlap
from ..workflows.predictors import load_predictors
from .options import (
    connectivity_2d_option,
    intensity_option,
    limit_option,
    min_size_option,
    rounds_option,
    window_option,
)

app = typer.Typer(
    help="Evaluate models with the published protocols and write CSV, JSON, plots and HTML.",
    no_args_is_help=True,
)

MODEL_HELP = "Registered model name or checkpoint file; repeat to compare models."
DATA_HELP = "Dataset folder (any layout samforge reads); repeat for several datasets."
SPLIT_HELP = "Split of datasets that have them (MedSegBench, SA-Med2D-20M, nnU-Net) [test]."
OVERLAP_HELP = "Evaluate a trained model even on cases its run folder says it trained on."


def _datasets(
    data: list[Path], split: str | None, models: list[str], allow_overlap: bool
) -> list[tuple[str, CaseList]]:
    """(name, cases) of each --data value, its split chosen, checked against training data."""
    datasets = [
        (folder.name, open_dataset(folder, split=choose_split(folder, "auto", split, "test")))
        for folder in data
    ]
    check_evaluation_overlap(models, datasets, allow_overlap)
    return datasets


def _images(
    datasets: list[tuple[str, CaseList]], intensity: str, window: str | None, limit: int | None
) -> Iterator[EvalImage]:
    for name, cases in datasets:
        yield from iter_images(cases, name, intensity=intensity, window=window, limit=limit)


def _starts(values: list[str]) -> list[str]:
    """--start values -> start prompts in order, ``both`` meaning box and point."""
    expanded = [v for value in values for v in (START_PROMPTS if value == "both" else [value])]
    bad = sorted(set(expanded) - set(START_PROMPTS))
    if bad:
        raise ConfigError(f"--start {bad} not understood; use box, point or both.")
    return list(dict.fromkeys(expanded))


def _checkpoint(out: Path):
    def save(rows: list[dict]) -> None:
        write_csv(out / RESULTS_CSV, rows)

    return save


@app.command("interactive2d")
def interactive2d(
    ctx: typer.Context,
    model: list[str] = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    data: list[Path] = typer.Option(..., "--data", "-d", help=DATA_HELP, exists=True),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (resumed if it exists)."),
    split: str | None = typer.Option(None, "--split", help=SPLIT_HELP),
    allow_overlap: bool = typer.Option(False, "--allow-overlap", help=OVERLAP_HELP),
    start: list[str] = typer.Option(
        ["box"], "--start", help="Start prompt: box, point or both; repeatable."
    ),
    rounds: int = rounds_option(),
    use_masks: bool = typer.Option(False, "--use-masks", help="Feed back low-res logits."),
    min_size: int = min_size_option(),
    connectivity: int = connectivity_2d_option(),
    limit: int | None = limit_option(),
    intensity: str = intensity_option(),
    window: str | None = window_option(),
    seed: int = typer.Option(0, min=0, help="Seed of the correction points."),
    cache: Path | None = typer.Option(None, help="Embedding cache folder [OUT/embeddings]."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Box or point start, then corrections; Dice per round for each model."""
    starts = _starts(start)
    settings = InteractiveSettings(
        rounds=rounds, use_masks=use_masks, min_size=min_size, seed=seed, connectivity=connectivity
    )
    ctx.with_resource(locked_folder(out))  # one run per folder: none drops another's rows
    datasets = _datasets(data, split, model, allow_overlap)
    predictors = load_predictors(model, cache or out / "embeddings")
    rows, overlays = run_interactive2d(
        predictors,
        _images(datasets, intensity, window, limit),
        starts,
        settings,
        rows=read_csv(out / RESULTS_CSV),
        checkpoint=_checkpoint(out),
        show_progress=progress,
    )
    summary = summarize_interactive(rows, settings)
    report = write_interactive_report(out, rows, overlays, summary, "Interactive 2D evaluation")
    Console().print(f"report: {report}", highlight=False, soft_wrap=True)


@app.command("robustness")
def robustness(
    ctx: typer.Context,
    model: list[str] = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    data: list[Path] = typer.Option(..., "--data", "-d", help=DATA_HELP, exists=True),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (resumed if it exists)."),
    split: str | None = typer.Option(None, "--split", help=SPLIT_HELP),
    allow_overlap: bool = typer.Option(False, "--allow-overlap", help=OVERLAP_HELP),
    types: list[str] | None = typer.Option(
        None, "--types", help="Corruption names or groups (mri, ultrasound, ..., all) [all]."
    ),
    severities: list[int] = typer.Option(
        [PAPER_SEVERITY], "--severities", help="Severities 1–5 (3 = paper); repeatable."
    ),
    start: str = typer.Option(
        "box",
        help="Start prompt: box, point, or random_points (RobustMedSAM's evaluation: "
        "--num-points random positive points per object).",
    ),
    num_points: int = typer.Option(3, min=1, help="Points of the random_points start."),
    rounds: int = rounds_option(),
    min_size: int = min_size_option(),
    connectivity: int = connectivity_2d_option(),
    limit: int | None = limit_option(),
    intensity: str = intensity_option(),
    window: str | None = window_option(),
    cache: Path | None = typer.Option(None, help="Embedding cache folder [OUT/embeddings]."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """The interactive protocol on clean and corrupted images: clean vs degraded Dice."""
    corruptions = resolve_corruption_names(types or None)
    bad = sorted(s for s in severities if not 1 <= s <= 5)
    if bad:
        raise ConfigError(f"--severities {bad} out of range; use 1–5 (3 = the paper's setting).")
    settings = InteractiveSettings(
        start=start,
        rounds=rounds,
        min_size=min_size,
        num_points=num_points,
        connectivity=connectivity,
    )
    datasets = _datasets(data, split, model, allow_overlap)
    ctx.with_resource(locked_folder(out))  # one run per folder: none drops another's rows
    predictors = load_predictors(model, cache or out / "embeddings")
    rows = run_robustness(
        predictors,
        _images(datasets, intensity, window, limit),
        corruptions,
        sorted(set(severities)),
        settings,
        rows=read_csv(out / RESULTS_CSV),
        checkpoint=_checkpoint(out),
        show_progress=progress,
    )
    report = write_robustness_report(out, rows, summarize_robustness(rows), "Robustness")
    Console().print(f"report: {report}", highlight=False, soft_wrap=True)
