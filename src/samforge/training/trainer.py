"""The Lightning Trainer of a run: strategy, precision, callbacks, loggers, checkpoint IO."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import TensorBoardLogger

from .callbacks import AtomicCheckpointIO, CheckpointAtMaxSteps, WeightDigests
from .config import TrainConfig
from .logs import ResumableCSVLogger
from .run_folder import checkpoint_path


def build_trainer(config: TrainConfig, run_dir: Path, resume_step: int | None = None) -> L.Trainer:
    """The trainer of ``config`` writing into ``run_dir``; ``resume_step`` is the step of
    the checkpoint a resumed run starts from (the CSV log keeps the rows before it)."""
    _quiet_lightning()
    settings = config.trainer
    callbacks: list[Callback] = [
        ModelCheckpoint(
            dirpath=run_dir / "checkpoints",
            filename="step-{step:06d}",
            every_n_train_steps=settings.checkpoint_every_n_steps,
            save_top_k=-1,
            save_last=True,
            auto_insert_metric_name=False,
        ),
        CheckpointAtMaxSteps(
            lambda step: checkpoint_path(run_dir, step), settings.checkpoint_every_n_steps
        ),
    ]
    if settings.progress:
        callbacks.append(RichProgressBar(leave=True))
    if settings.record_weight_digests:
        callbacks.append(WeightDigests(run_dir / "digests"))
    return L.Trainer(
        default_root_dir=run_dir,
        max_epochs=settings.max_epochs,
        max_steps=settings.max_steps,
        accelerator=settings.accelerator,
        devices=settings.devices,
        num_nodes=settings.num_nodes,
        strategy=_strategy(settings.strategy, settings.accelerator),
        precision=settings.precision,
        accumulate_grad_batches=settings.accumulate_grad_batches,
        gradient_clip_val=config.optimizer.grad_clip,
        log_every_n_steps=settings.log_every_n_steps,
        check_val_every_n_epoch=settings.val_every_n_epochs,
        limit_val_batches=None if config.data.val else 0,
        num_sanity_val_steps=0,
        deterministic=settings.deterministic,
        enable_progress_bar=settings.progress,
        enable_model_summary=False,
        use_distributed_sampler=False,  # SegmentationDataModule shards the data itself
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        logger=[
            ResumableCSVLogger(run_dir, resume_step),
            TensorBoardLogger(run_dir, name="tensorboard", version="", default_hp_metric=False),
        ],
    )


def _quiet_lightning() -> None:
    """Drop two messages that say nothing about the run: Lightning's advertisement for its
    cloud logger, and a deprecation inside Lightning's own use of torch's pytree."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: not str(record.msg).startswith("💡 Tip")
    )
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def _strategy(name: str, accelerator: str) -> Any:
    if name in ("ddp", "ddp_spawn"):
        from lightning.pytorch.strategies import DDPStrategy

        on_cpu = accelerator == "cpu" or not torch.cuda.is_available()
        start: Literal["spawn", "popen"] = "spawn" if name == "ddp_spawn" else "popen"
        # A step prompts with a box or with points, with or without a mask, so some prompt
        # embeddings get no gradient in some steps (and ranks draw differently).
        return DDPStrategy(
            process_group_backend="gloo" if on_cpu else None,
            start_method=start,
            find_unused_parameters=True,
        )
    if name == "fsdp":
        from lightning.pytorch.strategies import FSDPStrategy

        # One full state dict in the checkpoint: resumable on any number of GPUs and
        # exportable to the official format.
        return FSDPStrategy(state_dict_type="full")
    return name
