"""What ``samforge bench`` measures: image embedding, one box and many boxes in one call,
on a random image, with a Predictor as a user would make it."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np
import torch

from ..inference import Predictor
from ..inference.precision import cpu_has_native_bf16
from ..testing.timing import machine_description, time_calls

BATCH_OBJECTS = 32


@dataclass(frozen=True)
class Timing:
    """Seconds of the repeats of one step (after one warm-up call); ``objects`` decoded per
    call."""

    step: str
    seconds: list[float]
    objects: int = 1

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def measure(predictor: Predictor, side: int, repeats: int) -> list[Timing]:
    """Embedding, one box and :data:`BATCH_OBJECTS` boxes on a random side×side RGB image."""
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


def machine_line(predictor: Predictor) -> str:
    """The machine, the device the predictor runs on and its encoder precision."""
    return (
        f"machine: {machine_description(predictor.device)}, device {predictor.device}, "
        f"encoder precision {predictor.precision}"
    )


def encoder_path(predictor: Predictor) -> str:
    """Which path the image encoder takes and why: the precision and the reason for it,
    whether the CPU has native bf16, whether the encoder is compiled, the CPU threads."""
    choice = predictor.precision_choice
    native = "yes" if cpu_has_native_bf16() else "no (emulated)"
    return (
        f"encoder path: {choice.precision} ({choice.reason}); native bf16 on this CPU: "
        f"{native}; torch.compile: no (eager kernels); {torch.get_num_threads()} CPU threads"
    )
