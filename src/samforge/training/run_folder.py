"""A run's folder: starting it, finding the checkpoint to resume, the summary.

A run lives in ``<output_dir>/<name>/``::

    config.yaml            the resolved config (a resumed run must match it)
    checkpoints/           step-NNNNNN.ckpt every N steps and at the end; last.ckpt
    logs/metrics.csv       CSV log; tensorboard/ holds the TensorBoard events
    model.pth              the final model in its family's format (SAM: official; PEFT merged)
    summary.json           steps, time, first/last losses, export path
"""

from __future__ import annotations

import json
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.utilities import rank_zero_only

from ..errors import ConfigError
from ..files import write_text_atomically
from .config import TrainConfig
from .freeze import FreezeReport

# Keys that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = {
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.progress",
    "trainer.log_every_n_steps",
    "trainer.checkpoint_every_n_steps",
    "trainer.record_weight_digests",
    "trainer.activation_checkpointing",  # the same results, in less memory
    "data.num_workers",
}


def start_run_folder(config: TrainConfig, run_dir: Path) -> None:
    """Refuse a folder that holds a run already; write the resolved config into it."""
    checkpoints = run_dir / "checkpoints"
    if checkpoints.exists() and any(checkpoints.iterdir()):
        raise ConfigError(
            f"{run_dir} already holds a run with checkpoints. Pass --resume to continue it, "
            "or choose another `name` / `output_dir`."
        )
    # Lightning's global rank, read from the launcher's env; Lightning sets the attribute
    # on the function at import, so its annotations do not declare it.
    if rank_zero_only.rank == 0:  # type: ignore[attr-defined]
        write_text_atomically(run_dir / "config.yaml", config.to_yaml())


def resume_checkpoint(config: TrainConfig, run_dir: Path) -> Path:
    """The newest checkpoint that reads: the highest step (the step in the name orders them
    on any file system) whose file is a whole zip archive. Files are renamed into place
    complete, but a disk can fill or a copy be cut: a checkpoint that does not read is
    skipped with a warning naming it and the one resumed from instead."""
    folder = run_dir / "checkpoints"
    numbered = (re.fullmatch(r"step-(\d+)\.ckpt", p.name) for p in folder.glob("step-*.ckpt"))
    steps = {int(m.group(1)): folder / m.group(0) for m in numbered if m}
    if not steps:
        raise ConfigError(
            f"--resume: {folder} holds no checkpoint, so there is nothing to resume; start "
            "the run without --resume."
        )
    _check_saved_config(config, run_dir)
    newest = [steps[step] for step in sorted(steps, reverse=True)]
    readable = next((path for path in newest if _reads(path)), None)
    if readable is None:
        raise ConfigError(
            f"--resume: no checkpoint in {folder} reads (all {len(newest)} are truncated or "
            "corrupt); start a new run."
        )
    if readable != newest[0]:
        skipped = ", ".join(path.name for path in newest[: newest.index(readable)])
        warnings.warn(
            f"--resume: {skipped} in {folder} do(es) not read (truncated or corrupt); "
            f"resuming from {readable.name} instead.",
            stacklevel=2,
        )
    return readable


def _check_saved_config(config: TrainConfig, run_dir: Path) -> None:
    """Refuse a resume whose config differs from the saved one, or whose saved one is
    unreadable (it is what the run's checkpoints were trained with)."""
    saved_file = run_dir / "config.yaml"
    if not saved_file.is_file():
        return
    try:
        saved = yaml.safe_load(saved_file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        problem = str(error).splitlines()[0]
        saved = None
    else:
        problem = f"it holds a {type(saved).__name__}, not settings"
    if not isinstance(saved, dict):
        raise ConfigError(
            f"--resume: the run's saved config {saved_file} does not read ({problem}); "
            "restore it from the config you started the run with, or start a new run."
        )
    changed = _differences(saved, config.model_dump(mode="json"))
    changed = [key for key in changed if key not in RESUMABLE_CHANGES]
    if changed:
        raise ConfigError(
            f"--resume: the config differs from the one {run_dir.name} started with, at "
            f"{', '.join(changed)}; resume with the saved config ({saved_file}) or start a "
            "new run."
        )


def _reads(checkpoint: Path) -> bool:
    """Whether ``checkpoint`` is a whole ``torch.save`` zip archive (every member's CRC
    checked; nothing unpickled)."""
    try:
        with zipfile.ZipFile(checkpoint) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError, ValueError):
        return False


def step_of(checkpoint: Path | None) -> int | None:
    """The step in a checkpoint's file name (``step-000042.ckpt`` -> 42)."""
    return None if checkpoint is None else int(checkpoint.stem.removeprefix("step-"))


def checkpoint_path(run_dir: Path, step: int) -> Path:
    """Where the checkpoint of ``step`` is saved."""
    return run_dir / "checkpoints" / f"step-{step:06d}.ckpt"


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [
            d for key in keys for d in _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        ]
    return [] if old == new else [prefix.rstrip(".")]


def write_summary(
    run_dir: Path,
    trainer: L.Trainer,
    export_path: Path | None,
    seconds: float,
    report: FreezeReport,
) -> None:
    metrics = {key: float(value) for key, value in trainer.logged_metrics.items()}
    summary = {
        "global_step": trainer.global_step,
        "epochs": trainer.current_epoch,
        "seconds": round(seconds, 2),
        "export": None if export_path is None else str(export_path),
        "trainable_parameters": report.trainable,
        "frozen_parameters": report.frozen,
        "last_metrics": metrics,
    }
    write_text_atomically(run_dir / "summary.json", json.dumps(summary, indent=2))
