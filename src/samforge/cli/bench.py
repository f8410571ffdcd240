"""``samforge bench``: how fast this machine embeds an image and decodes prompts
(:mod:`samforge.workflows.speed`)."""

from __future__ import annotations

import torch
import typer
from rich.console import Console
from rich.table import Table

from ..errors import ConfigError, DownloadError
from ..inference import Predictor
from ..inference.precision import PRECISIONS
from ..models import build_model, get_model_spec, load_model
from ..workflows.speed import Timing, encoder_path, machine_line, measure


def bench(
    model: str = typer.Option(
        "samforge_nano",
        help="Registry name or checkpoint file (see `samforge models list`).",
    ),
    image_side: int = typer.Option(512, min=16, help="Side of the square test image in pixels."),
    repeats: int = typer.Option(5, min=1, help="Timed repeats per step (after one warm-up call)."),
    threads: int | None = typer.Option(None, min=1, help="Torch CPU threads [torch's default]."),
    precision: str = typer.Option(
        "auto",
        help="Encoder precision: auto (bf16 where the hardware has it natively, else fp32), "
        "fp32 (exact) or bf16.",
    ),
    random_weights: bool = typer.Option(
        False,
        "--random",
        help="Time a registered model's architecture with random weights instead of "
        "fetching its file (the timings do not depend on the weights).",
    ),
) -> None:
    """Time image embedding, one-box decoding and 32 boxes in one call on this machine."""
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision!r} not understood; use one of {PRECISIONS}.")
    if repeats < 1 or image_side < 16:
        raise ConfigError("--repeats must be at least 1 and --image-side at least 16.")
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be at least 1; got {threads}.")
        torch.set_num_threads(threads)
    console = Console()
    if random_weights:
        network = build_model(get_model_spec(model).config)
    else:
        try:
            network = load_model(model)
        except DownloadError as error:
            raise DownloadError(
                f"{error} To time {model}'s architecture without its weights, add --random."
            ) from None
    predictor = Predictor(network, cache_size=0, precision=precision)
    console.print(machine_line(predictor), highlight=False, soft_wrap=True)
    console.print(encoder_path(predictor), highlight=False, soft_wrap=True)
    timings = measure(predictor, image_side, repeats)
    label = f"{model} (random weights)" if random_weights else model
    console.print(timing_table(timings, label, image_side, repeats))


def timing_table(timings: list[Timing], model: str, side: int, repeats: int) -> Table:
    table = Table(title=f"{model}, {side}×{side} image, median of {repeats}")
    for column in ("step", "median ms", "min ms", "ms / object", "objects / s"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for timing in timings:
        per_object = timing.median / timing.objects
        table.add_row(
            timing.step,
            f"{timing.median * 1000:.1f}",
            f"{min(timing.seconds) * 1000:.1f}",
            f"{per_object * 1000:.1f}",
            f"{1 / per_object:.1f}",
        )
    return table
