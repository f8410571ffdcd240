"""``samforge demo``: the built-in demonstration (:mod:`samforge.workflows.demo`) with a
spinner per step, a summary table and the path of the report.

``--model samforge_random_tiny`` runs the same steps on an untrained model, and says so.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from ..errors import ConfigError
from ..workflows.demo import DEMO_MODEL, UNTRAINED_MODELS, headline_rows, run_demo

console = Console()

__all__ = ["demo"]


def demo(
    out: Path = typer.Option(Path("demo-report"), "--out", "-o", help="Folder for all outputs."),
    model: str = typer.Option(DEMO_MODEL, "--model", "-m", help="Registry name or checkpoint."),
    quick: bool = typer.Option(False, "--quick", help="A smaller run of every step (< 1 min)."),
    candidate: str | None = typer.Option(
        None, "--candidate", help="A second model (file or name) run on the same 2D and 3D tasks."
    ),
) -> None:
    """Evaluate, propagate in 3D, stress with corruptions, fine-tune and evaluate again."""
    if model in UNTRAINED_MODELS:
        console.print(
            Panel(
                f"[bold]{model}[/] is randomly initialised and untrained: this run shows the "
                "pipeline, not segmentation quality. The trained built-in model is "
                "samforge_nano (the default).",
                style="yellow",
            )
        )
    result = run_demo(_writable(out), model, quick, observer=_ConsoleSteps(), candidate=candidate)
    console.print(_table(result.summary))
    console.print(f"report: {result.report}; summary: {result.summary_path}", highlight=False)


class _ConsoleSteps:
    """A spinner while a step runs, then a check mark with its seconds."""

    def running(self, title: str) -> AbstractContextManager[object]:
        return console.status(f"{title} ...")

    def finished(self, title: str, seconds: float) -> None:
        console.print(f"[green]✓[/] {title} [dim]({seconds:.1f} s)[/]", highlight=False)


def _writable(out: Path) -> Path:
    """The out folder, created; a one-line error when it cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".samforge-demo-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ConfigError(
            f"cannot write the demo's outputs into {out}: {error.strerror or error}; "
            "choose another folder with --out."
        ) from None
    return out


def _table(summary: dict) -> Table:
    table = Table(
        title=f"samforge demo: {summary['model']}" + (" (quick)" if summary["quick"] else "")
    )
    for column in ("step", "measure", "value"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for row in headline_rows(summary):
        table.add_row(row["step"], row["measure"], f"{row['value']:.3f}")
    return table
