"""Fine-tune a model for a number of steps and read back its loss history.

The demo, the experiments (and a future server) share this: a training config is built as
a Python dict (:func:`finetune_config`), validated by ``training.load_config`` exactly as a
YAML file would be, and trained; the run folder keeps the usual layout (``config.yaml``,
``logs/metrics.csv``, ``summary.json``, ``model.pth``), so ``samforge train --config
RUN/config.yaml`` repeats a run.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import ConfigError

IF_EXISTS = ("error", "replace", "reuse")


class LossHistory(NamedTuple):
    """``train/loss`` of every logged training step: (N,) steps and (N,) losses."""

    steps: np.ndarray
    losses: np.ndarray

    def window_means(self, fraction: float = 0.1) -> tuple[float, float]:
        """Mean loss over the first and the last ``fraction`` of the logged steps (NaN when
        nothing was logged)."""
        if len(self.losses) == 0:
            return float("nan"), float("nan")
        window = self.window(fraction)
        return float(self.losses[:window].mean()), float(self.losses[-window:].mean())

    def window(self, fraction: float = 0.1) -> int:
        """How many logged steps ``fraction`` of them is (at least one)."""
        return max(1, round(len(self.losses) * fraction))


@dataclass(frozen=True)
class FinetuneResult:
    """A finished run: its folder, exported model, steps, seconds and loss history."""

    run_dir: Path
    export_path: Path
    global_step: int
    seconds: float
    losses: LossHistory


def finetune_config(
    preset: str,
    *,
    name: str,
    model: str,
    train: Sequence[dict[str, Any]],
    output_dir: Path,
    steps: int,
    lr: float,
    seed: int | None = None,
    deterministic: bool | None = None,
) -> dict[str, Any]:
    """A config dict: ``preset`` with the model, the training data sources (as in a YAML
    file's ``data.train``), a constant learning rate and a budget of ``steps`` optimizer
    steps (logged every step, one checkpoint at the end, no progress bar)."""
    trainer: dict[str, Any] = {
        "max_epochs": 1000,  # the step budget ends the run
        "max_steps": steps,
        "log_every_n_steps": 1,
        "checkpoint_every_n_steps": max(steps, 1),
        "progress": False,
    }
    if seed is not None:
        trainer["seed"] = seed
    if deterministic is not None:
        trainer["deterministic"] = deterministic
    return {
        "extends": preset,
        "name": name,
        "model": model,
        "output_dir": str(Path(output_dir).resolve()),
        "data": {"train": [dict(source) for source in train]},
        "optimizer": {"lr": lr, "lr_decay": 1.0},
        "trainer": trainer,
    }


def finetune(config: dict[str, Any], *, if_exists: str = "error") -> FinetuneResult:
    """Train as ``config`` says (a dict as :func:`finetune_config` makes it).

    Args:
        if_exists: what to do when the run folder exists: ``"error"`` (training refuses),
            ``"replace"`` (delete it first) or ``"reuse"`` (a finished run, one with
            ``model.pth`` and ``summary.json``, is read instead of trained again).

    Raises:
        ConfigError: an invalid config, or an existing run with ``if_exists="error"``.
    """
    # Lightning loads only when something trains.
    from ..training import load_config, train

    if if_exists not in IF_EXISTS:
        raise ConfigError(f"if_exists must be one of {IF_EXISTS}; got {if_exists!r}.")
    resolved = load_config(config)
    run_dir = resolved.run_dir
    finished = (run_dir / "model.pth").is_file() and (run_dir / "summary.json").is_file()
    if if_exists == "replace":
        shutil.rmtree(run_dir, ignore_errors=True)
    export_path = run_dir / "model.pth"
    if not (if_exists == "reuse" and finished):
        export_path = train(resolved).export_path or export_path
    return read_run(run_dir, export_path)


def read_run(run_dir: Path, export_path: Path | None = None) -> FinetuneResult:
    """The result of a finished run folder (``summary.json``, ``logs/metrics.csv``; the
    model ``model.pth`` unless ``export_path`` says otherwise)."""
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    return FinetuneResult(
        run_dir=Path(run_dir),
        export_path=export_path or Path(run_dir) / "model.pth",
        global_step=int(summary["global_step"]),
        seconds=float(summary["seconds"]),
        losses=read_loss_history(run_dir),
    )


def read_loss_history(run_dir: Path) -> LossHistory:
    """(steps, train/loss) of every logged training step of a run folder."""
    steps, losses = [], []
    with open(Path(run_dir) / "logs" / "metrics.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("train/loss"):
                steps.append(int(row["step"]))
                losses.append(float(row["train/loss"]))
    return LossHistory(np.array(steps, dtype=int), np.array(losses, dtype=float))
