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
    compare: list[str] = typer.Option(
        [],
        "--compare",
        help="Also time this model in the same run and print every step beside the first "
        "model's (repeat the option for more), e.g. --model mobilesam_vit_t --compare "
        "sam_vit_b.",
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
    results: dict[str, list[Timing]] = {}
    for name in [model, *compare]:
        # Each model is timed in full before the next is built.
        predictor = Predictor(_network(name, random_weights), cache_size=0, precision=precision)
        if not results:
            console.print(machine_line(predictor), highlight=False, soft_wrap=True)
        label = f"{name} (random weights)" if random_weights else name
        console.print(f"{name}: {encoder_path(predictor)}", highlight=False, soft_wrap=True)
        results[name] = measure(predictor, image_side, repeats)
        console.print(timing_table(results[name], label, image_side, repeats))
    if compare:
        title = f"{image_side}×{image_side} image, median of {repeats}, one model after the other"
        if random_weights:
            title += ", random weights"
        console.print(comparison_table(results, title))


def _network(name: str, random_weights: bool):
    """The model to time: its file, or its architecture with random weights."""
    if random_weights:
        return build_model(get_model_spec(name).config)
    try:
        return load_model(name)
    except DownloadError as error:
        raise DownloadError(
            f"{error} To time {name}'s architecture without its weights, add --random."
        ) from None


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


def comparison_table(results: dict[str, list[Timing]], title: str) -> Table:
    """Every step's median ms per model, and each later model's time over the first's."""
    first, *others = results
    table = Table(title=title)
    table.add_column("step")
    for label in results:
        table.add_column(f"{label} ms", justify="right")
    for label in others:
        table.add_column(f"{label} / {first}", justify="right")
    steps = zip(*results.values(), strict=True)
    for timings in steps:
        medians = [timing.median for timing in timings]
        table.add_row(
            timings[0].step,
            *(f"{median * 1000:.1f}" for median in medians),
            *(f"{median / medians[0]:.2f}×" for median in medians[1:]),
        )
    return table
