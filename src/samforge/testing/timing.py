"""Timing and machine description shared by ``samforge bench``, the benchmarks and the
experiments.

Timings on a shared machine are noisy: every function here calls what it times once
untimed first, then alternates between the functions it compares, so that load from other
processes falls on all of them alike, and reports medians.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence

import torch

from ..models import SamConfig, get_config
from ..models.config import VIT_TEST
from .official import OFFICIAL_ARCHITECTURES

# The official builder's arguments for samforge's VIT_TEST encoder: a quick check of a script.
SMALL_ARCHITECTURE = dict(embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,))
BENCHMARK_ARCHITECTURES = (*OFFICIAL_ARCHITECTURES, "vit_test")


def benchmark_architecture(name: str) -> tuple[SamConfig, dict]:
    """samforge's config and the official builder's arguments for ``name`` (one of
    :data:`BENCHMARK_ARCHITECTURES`; ``vit_test`` is a tiny encoder)."""
    if name == "vit_test":
        return VIT_TEST, SMALL_ARCHITECTURE
    return get_config(name), OFFICIAL_ARCHITECTURES[name]


def alternating_medians(
    functions: Mapping[str, Callable[[], object]], repeats: int
) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per function, after one warm-up call each, timed in turn.

    CPU seconds of this process leave out time spent waiting for a core that another
    process holds, which wall seconds include on a shared machine.
    """
    for function in functions.values():
        function()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            wall, cpu = time.perf_counter(), time.process_time()
            function()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {
        name: (
            statistics.median(wall for wall, _ in values),
            statistics.median(cpu for _, cpu in values),
        )
        for name, values in times.items()
    }


def paired_medians(
    reference: Callable[[], object], ours: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Median wall seconds of the reference and of ours, timed alternately."""
    seconds = alternating_medians({"reference": reference, "ours": ours}, repeats)
    return seconds["reference"][0], seconds["ours"][0]


def time_calls(function: Callable[[], object], repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` calls under ``torch.inference_mode``, after one untimed
    warm-up call."""
    with torch.inference_mode():
        function()
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            function()
            seconds.append(time.perf_counter() - start)
    return seconds


def cpu_name() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(device: torch.device | str = "cpu") -> str:
    """One line: the hardware ``device`` runs on, cores, torch threads and versions."""
    device = torch.device(device)
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = f"{cpu_name()} ({torch.backends.cpu.get_cpu_capability()})"
    return (
        f"{hardware}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, Python {platform.python_version()}"
    )


# A benchmark worker's answer: one line on stdout (anything else it prints is left alone).
WORKER_RESULT = "RESULT "


class WorkerFailed(RuntimeError):
    """A benchmark worker exited with an error or printed no result."""

    def __init__(self, returncode: int, stderr: str) -> None:
        self.returncode, self.stderr = returncode, stderr
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        super().__init__(f"exit {returncode}: {last}")


def print_worker_result(result: dict) -> None:
    """Answer :func:`run_worker` from inside the worker."""
    print(WORKER_RESULT + json.dumps(result), flush=True)


def run_worker(command: Sequence[str]) -> dict:
    """Run a benchmark's worker command in a fresh process (its peak memory is its own)
    and return the dict it printed with :func:`print_worker_result`.

    Raises:
        WorkerFailed: the worker exited with an error or printed no result.
    """
    done = subprocess.run(list(command), capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(WORKER_RESULT)]
    if done.returncode or not lines:
        raise WorkerFailed(done.returncode, done.stderr)
    result: dict = json.loads(lines[-1][len(WORKER_RESULT) :])
    return result
