"""A CSV log that survives ``--resume``.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when it starts, so a resumed
run would lose every metric logged before the interruption. This logger (on Lightning's
public ``Logger`` interface) keeps the rows of the steps the checkpoint covers and drops the
later ones, which the resumed run logs again. The file has Lightning's layout: one row per
log call, the columns sorted by name, ``step`` among them.
"""

from __future__ import annotations

import csv
import io
from argparse import Namespace
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from ..files import write_text_atomically


class ResumableCSVLogger(Logger):
    """``<run_dir>/logs/metrics.csv``, written at every log call so that a kill loses no
    row a checkpoint covers; with ``resume_step`` the rows logged before that step are kept
    and later logs are appended to them."""

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        super().__init__()
        self.path = Path(run_dir) / "logs" / "metrics.csv"
        self.resume_step = resume_step
        self.columns: list[str] = []
        self.started = False  # the file is started at the first log call, on rank 0 only

    @property
    def name(self) -> str:
        return "logs"

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return str(self.path.parent)

    @rank_zero_only
    def log_hyperparams(
        self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any
    ) -> None:
        """Nothing to do: the run folder's config.yaml holds every setting."""

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        if not self.started:
            self._start()
        row = {
            key: value.item() if isinstance(value, torch.Tensor) else value
            for key, value in metrics.items()
        }
        row["step"] = step
        if set(row) - set(self.columns):
            # A new column: the header changes, so the whole file is written again.
            self.columns = sorted(set(self.columns) | set(row))
            self._rewrite([*self._rows(), row])
            return
        with self.path.open("a", newline="") as file:  # appended: the log grows per step
            csv.DictWriter(file, fieldnames=self.columns).writerow(row)

    def _start(self) -> None:
        """A fresh file, or on resume the rows of the steps before ``resume_step``."""
        kept: list[dict[str, str]] = []
        if self.resume_step is not None and self.path.is_file():
            with self.path.open(newline="") as file:
                reader = csv.DictReader(file)
                self.columns = list(reader.fieldnames or [])
                kept = [row for row in reader if _step(row) < self.resume_step]
        self._rewrite(kept)
        self.started = True

    def _rows(self) -> list[dict[str, str]]:
        with self.path.open(newline="") as file:
            return list(csv.DictReader(file))

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=self.columns)
        if self.columns:
            writer.writeheader()
        writer.writerows(rows)
        write_text_atomically(self.path, text.getvalue())


def _step(row: dict[str, str]) -> float:
    """The step of a row; a row cut short by a kill sorts after every checkpoint."""
    try:
        return int(row["step"])
    except (TypeError, ValueError):
        return float("inf")
