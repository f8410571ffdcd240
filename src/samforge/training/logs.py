"""A CSV log that survives ``--resume``.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when it starts, so a resumed
run would lose every metric logged before the interruption. This logger keeps the rows of
the steps the checkpoint covers and drops the later ones, which the resumed run logs again.
"""

from __future__ import annotations

import csv
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment


class ResumableCSVLogger(CSVLogger):
    """``<save_dir>/logs/metrics.csv``; with ``resume_step`` the rows logged before that step
    are kept and later logs are appended to them."""

    def __init__(self, save_dir: Path, resume_step: int | None = None) -> None:
        # Written at every log call, so that a kill loses no row a checkpoint covers.
        super().__init__(save_dir, name="logs", version="", flush_logs_every_n_steps=1)
        self._resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(self.log_dir, self._resume_step)
        return self._experiment


class _ContinuingWriter(ExperimentWriter):
    def __init__(self, log_dir: str, resume_step: int | None) -> None:
        self._resume_step = resume_step
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if self._resume_step is None or not path.is_file():
            super()._check_log_dir_exists()
            return
        with path.open(newline="") as file:
            reader = csv.DictReader(file)
            fields = list(reader.fieldnames or [])
            kept = [row for row in reader if int(row["step"]) < self._resume_step]
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=fields)
            writer.writeheader()
            writer.writerows(kept)
        # Appending needs the existing header: Lightning rewrites the file whenever it
        # sees keys it does not know yet.
        self.metrics_keys = fields
