"""Running a training config on Lightning: ``train()`` and its result.

The parts, each in its own module: the model to train (:mod:`.model_setup`), the objective
(:mod:`.objectives`), the data (:mod:`.data_module`), the run folder and resumption
(:mod:`.run_folder`), the trainer (:mod:`.trainer`) and the export (:mod:`.export`).
Checkpoints are written to a temporary file beside their final name and renamed into
place, so a file that exists is complete; they are read back only with
``weights_only=True``.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L

from ..models import PromptableModel
from ..models.semantic import SemanticModel
from ..subnormals import subnormals_flushed
from .config import TrainConfig
from .data_module import SegmentationDataModule
from .export import export_joint_decoder, export_trained, gathered_model
from .freeze import FreezeReport
from .model_setup import prepare_model
from .module import SamTrainingModule
from .objectives import build_objective
from .run_folder import (
    checkpoint_path,
    resume_checkpoint,
    start_run_folder,
    step_of,
    write_summary,
)
from .semantic_data import SemanticDataModule
from .sources import check_no_overlap
from .trainer import build_trainer


@dataclass
class TrainResult:
    run_dir: Path
    export_path: Path | None
    final_checkpoint: Path
    global_step: int
    freeze: FreezeReport


def train(config: TrainConfig, *, resume: bool = False, threads: int | None = None) -> TrainResult:
    """Train as configured; with ``resume`` continue from the run's last checkpoint.
    ``threads``: torch threads of the data loader workers (the caller sets its own).

    Raises:
        ConfigError: a run of that name exists and ``resume`` is off, ``resume`` without a
            checkpoint, a resumed run whose config differs from the saved one, validation
            cases that are training cases (unless ``data.allow_overlap``), or a model the
            objective cannot train.
    """
    check_no_overlap(config.data)
    run_dir = config.run_dir
    checkpoint = resume_checkpoint(config, run_dir) if resume else None
    if checkpoint is None:
        start_run_folder(config, run_dir)
    L.seed_everything(config.trainer.seed, workers=True, verbose=False)
    model, report = prepare_model(config)
    objective = build_objective(config.objective)
    objective.check_model(model)
    module = SamTrainingModule(model, objective, config.optimizer, config.trainer.seed)
    data: SegmentationDataModule
    if isinstance(model, SemanticModel):
        info = model.info
        data = SemanticDataModule(
            config.data,
            info.patch_size,
            info.in_channels,
            info.num_classes,
            config.trainer.seed,
            threads,
        )
    else:
        transform = model.config.input_transform()
        data = SegmentationDataModule(config.data, transform, config.trainer.seed, threads)
    trainer = build_trainer(config, run_dir, resume_step=step_of(checkpoint))
    if trainer.is_global_zero:
        print(f"samforge train: {config.name} — {report}", flush=True)
    started = time.perf_counter()
    # SegmentationDataModule restores the data position itself (its state_dict), so
    # Lightning's warning that a mid-epoch resume repeats data does not apply.
    warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before")
    if checkpoint is not None:  # a resumed run's checkpoint folder holds its checkpoints
        warnings.filterwarnings("ignore", message="Checkpoint directory .* is not empty")
    with subnormals_flushed():  # subnormal gradients slow x86 CPUs (samforge.subnormals)
        trainer.fit(module, datamodule=data, ckpt_path=checkpoint, weights_only=True)
    # A full checkpoint: "train longer" resumes from it (it is the newest step file). A run
    # that reached max_steps saved it already (CheckpointAtMaxSteps).
    final = checkpoint_path(run_dir, trainer.global_step)
    if not final.exists():
        trainer.save_checkpoint(final, weights_only=False)  # with optimiser state: resumable
    export_path = None
    if trainer.is_global_zero:
        trained: PromptableModel | SemanticModel = model
        if config.trainer.strategy == "fsdp":
            trained = gathered_model(config, final)
        export_path = export_trained(trained, run_dir / config.export, config)
        joint = run_dir / f"{Path(config.export).stem}_semantic.pth"
        export_joint_decoder(trained, objective, joint, config)  # with objective.e_sem
        write_summary(run_dir, trainer, export_path, time.perf_counter() - started, report)
    return TrainResult(run_dir, export_path, final, trainer.global_step, report)
