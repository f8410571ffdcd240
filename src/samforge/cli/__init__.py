"""The ``samforge`` command."""

from __future__ import annotations

import sys
import warnings

import typer
from rich.console import Console

from ..errors import SamforgeError
from ..subnormals import subnormals_flushed
from . import (
    bench,
    data_inspect,
    data_synthetic,
    demo,
    embed,
    evaluate,
    evaluate3d,
    evaluate_semantic,
    fuse,
    models,
    segment,
    serve,
    train,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="samforge",
    help="Segment Anything for medical images: load, segment, fine-tune, fuse, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command(
    "segment",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)(segment.segment)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("bench")(bench.bench)
app.command("embed")(embed.embed)
app.command("train")(train.train)
app.command("fuse")(fuse.fuse)
app.add_typer(models.app, name="models")

evaluate.app.command("interactive3d")(evaluate3d.interactive3d)
evaluate.app.command("semantic")(evaluate_semantic.semantic)
app.add_typer(evaluate.app, name="evaluate")

data_app = typer.Typer(
    help="Inspect, corrupt and synthesise medical image data.", no_args_is_help=True
)
data_app.command("inspect")(data_inspect.inspect)
data_app.command("corrupt")(data_synthetic.corrupt)
data_app.command("phantom")(data_synthetic.phantom)
data_app.command("contact-sheet")(data_synthetic.contact_sheet)
app.add_typer(data_app, name="data")


def main() -> None:
    """Entry point: user errors print as one clear message and exit with status 2;
    warnings as one line each."""
    warnings.showwarning = _print_warning
    try:
        # Before torch starts its threads, which inherit the switch: subnormal gradients
        # made CPU training twice as slow (samforge.subnormals).
        with subnormals_flushed():
            app()
    except SamforgeError as error:
        # soft_wrap: one line however long, not wrapped at the console width
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(2)


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings say what happened and what samforge does about it: the user needs the
    message, not the source line that raised it."""
    Console(stderr=True, soft_wrap=True).print(f"[yellow]warning:[/] {message}", highlight=False)
