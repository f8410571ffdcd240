"""``samforge bench``: how fast this machine embeds an image and decodes prompts."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import typer
from rich.console import Console
from rich.table import Table

from ..errors import ConfigError
from ..inference.predictor import PRECISIONS, Predictor
from ..models import load_model

BATCH_OBJECTS = 32


@dataclass(frozen=True)
class Timing:
    """Seconds of the repeats of one step (after one warm-up call), per object too."""

    step: str
    seconds: list[float]
    objects: int = 1

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def bench(
    model: str = typer.Option(
        "samforge_nano",
        help="Registry name or checkpoint file (see `samforge models list`).",
    ),
    image_side: int = typer.Option(512, help="Side of the square test image in pixels."),
    repeats: int = typer.Option(5, help="Timed repeats per step (after one warm-up call)."),
    threads: int | None = typer.Option(None, help="Torch CPU threads [torch's default]."),
    precision: str = typer.Option("auto", help="Encoder precision: auto, fp32 or bf16."),
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
    predictor = Predictor(load_model(model), cache_size=0, precision=precision)
    console.print(machine_line(predictor), highlight=False, soft_wrap=True)
    timings = measure(predictor, image_side, repeats)
    console.print(timing_table(timings, model, image_side, repeats))


def machine_line(predictor: Predictor) -> str:
    """CPU, threads, torch version, device and the precision in effect."""
    device = predictor.device
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = f"{cpu_name()} ({torch.backends.cpu.get_cpu_capability()})"
    return (
        f"machine: {hardware}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, device {device}, encoder precision {predictor.precision}"
    )


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(predictor: Predictor, side: int, repeats: int) -> list[Timing]:
    """Embedding, one box and ``BATCH_OBJECTS`` boxes on a random side×side RGB image."""
    image = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    box = np.array([0.2, 0.3, 0.6, 0.7]) * side
    shifts = np.linspace(-0.15, 0.15, BATCH_OBJECTS)[:, None] * side
    boxes = np.clip(box[None] + shifts, 0, side - 1)
    embed = Timing("embed image", time_calls(lambda: predictor.set_image(image), repeats))
    # set_image left the embedding in place: decoding reuses it.
    one = Timing("decode 1 box → mask", time_calls(lambda: predictor.predict(boxes=box), repeats))
    many = Timing(
        f"decode {BATCH_OBJECTS} boxes, one call",
        time_calls(lambda: predictor.predict(boxes=boxes), repeats),
        BATCH_OBJECTS,
    )
    return [embed, one, many]


def time_calls(function: Callable[[], object], repeats: int) -> list[float]:
    """Seconds of ``repeats`` calls after one untimed warm-up call."""
    with torch.inference_mode():
        function()
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            function()
            seconds.append(time.perf_counter() - start)
    return seconds


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
