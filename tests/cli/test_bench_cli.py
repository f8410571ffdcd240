"""``samforge bench``: a table of finite timings and the machine it ran on."""

from __future__ import annotations

import math
import re

import torch
from typer.testing import CliRunner

from samforge.cli import app

runner = CliRunner()


def test_bench_prints_the_machine_and_finite_timings():
    threads = torch.get_num_threads()
    try:
        result = runner.invoke(
            app,
            [
                "bench",
                "--model",
                "samforge_random_tiny",
                "--image-side",
                "64",
                "--repeats",
                "1",
                "--threads",
                "1",
                "--precision",
                "fp32",
            ],
            env={"COLUMNS": "200"},
        )
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    assert "1 torch threads" in result.output and torch.__version__ in result.output
    assert "encoder precision fp32" in result.output
    # Which path and why: asked-for fp32, the CPU's bf16 ability, compilation, threads.
    (path,) = [line for line in result.output.splitlines() if "encoder path" in line]
    assert "fp32 (asked for)" in path and "native bf16" in path and "1 CPU threads" in path
    for step in ("embed image", "decode 1 box", "decode 32 boxes"):
        (line,) = [line for line in result.output.splitlines() if step in line]
        numbers = [float(value) for value in re.findall(r"\d+\.\d+", line)]
        assert len(numbers) == 4 and all(math.isfinite(n) and n > 0 for n in numbers), line


def test_bench_rejects_an_unknown_precision():
    result = runner.invoke(app, ["bench", "--precision", "fp8"])
    assert result.exit_code != 0
    assert "fp32" in str(result.exception)


def test_bench_says_why_auto_chose_its_precision(monkeypatch):
    """On a CPU without native bf16 (AVX2), auto falls back to fp32 and says so."""
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    result = runner.invoke(
        app,
        ["bench", "--model", "samforge_random_tiny", "--image-side", "32", "--repeats", "1"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    (path,) = [line for line in result.output.splitlines() if "encoder path" in line]
    assert (
        "fp32 (auto: the CPU emulates bf16 (AVX2)" in path and "native bf16 on this CPU: no" in path
    )
