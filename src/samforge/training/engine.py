"""Running a training config on Lightning: model preparation, trainer, resume and export.

A run lives in ``<output_dir>/<name>/``::

    config.yaml            the resolved config (a resumed run must match it)
    checkpoints/           step-NNNNNN.ckpt every N steps and at the end; last.ckpt
    logs/metrics.csv       CSV log; tensorboard/ holds the TensorBoard events
    model.pth              the final model in its family's format (SAM: official; PEFT merged)
    summary.json           steps, time, first/last losses, export path

Checkpoints are written to a temporary file beside their final name and renamed into
place, so a file that exists is complete; they are read back only with
``weights_only=True``.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from ..errors import CheckpointError, ConfigError
from ..files import save_torch_atomically, write_text_atomically
from ..models import build_model, export_model, family_of, get_config, load_model
from ..models.peft import apply_lora, apply_svd, merge_peft
from .config import TrainConfig
from .data_module import SegmentationDataModule
from .freeze import FreezeReport, apply_freeze_policy
from .logs import ResumableCSVLogger
from .module import SamTrainingModule

# Keys that may change between an interrupted run and its resumption.
_RESUMABLE_CHANGES = {
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.progress",
    "trainer.log_every_n_steps",
    "trainer.checkpoint_every_n_steps",
    "trainer.record_weight_digests",
    "data.num_workers",
}


@dataclass
class TrainResult:
    run_dir: Path
    export_path: Path | None
    final_checkpoint: Path
    global_step: int
    freeze: FreezeReport


def prepare_model(config: TrainConfig) -> tuple[torch.nn.Module, FreezeReport]:
    """The model to train: loaded (or converted to SAM-UNet), PEFT layers added, freeze
    policy applied."""
    if config.model.startswith("random:"):
        model = _random_model(config)
    else:
        model = load_model(
            config.model, image_size=config.image_size, preprocessing=config.preprocessing
        )
    if config.convert_to == "sam_unet":
        model = _sam_unet_from(model, config)
    peft = config.peft
    if peft.kind == "lora":
        apply_lora(
            model,
            rank=peft.rank,
            alpha=peft.alpha,
            blocks=peft.blocks,
            include_mlp=peft.include_mlp,
            dropout=peft.dropout,
        )
    elif peft.kind == "svd":
        apply_svd(model, blocks=peft.blocks, include_mlp=peft.include_mlp)
    freeze = config.freeze
    report = apply_freeze_policy(
        model,
        freeze.policy,
        blocks=freeze.blocks,
        trainable=freeze.trainable,
        frozen=freeze.frozen,
    )
    if config.objective.kind == "robust" and not hasattr(model, "decode_with_features"):
        raise ConfigError(
            f"objective.kind 'robust' needs decoder features, which {config.model} lacks."
        )
    if config.objective.kind == "robust" and not family_of(model.config).sam_layout:
        raise ConfigError(
            "objective.kind 'robust' compares SAM-style decoder features; "
            f"{family_of(model.config).name} trains with the iterative objective (SAM-UNet: "
            "preset samunet)."
        )
    return model.train(), report


def _random_model(config: TrainConfig) -> torch.nn.Module:
    """A model of a named architecture, initialised from the run's seed, to train from
    scratch."""
    architecture = get_config(config.model.removeprefix("random:"))
    changes = {"image_size": config.image_size, "preprocessing": config.preprocessing}
    architecture = architecture.with_changes(**{k: v for k, v in changes.items() if v})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.trainer.seed)
        model = build_model(architecture)
    model.provenance = {
        "source": f"random initialisation of {config.model[7:]} (seed {config.trainer.seed})"
    }
    return model


def _sam_unet_from(sam: torch.nn.Module, config: TrainConfig) -> torch.nn.Module:
    """A SAM-UNet whose ViT, prompt encoder and SAM decoder come from ``sam``; the ResNet
    branch from ``resnet_weights`` (torchvision names) or random."""
    resnet = {"resnet50": ("bottleneck", (3, 4, 6, 3)), "resnet34": ("basic", (3, 4, 6, 3))}
    block, layers = resnet[config.resnet]
    target = sam.config.with_changes(family="sam_unet", resnet_block=block, resnet_layers=layers)
    model = build_model(target)
    model.load_sam_weights(sam.state_dict())
    if config.resnet_weights is not None:
        model.load_resnet_weights(_resnet_state(config.resnet_weights))
    model.provenance = {"source": f"SAM-UNet built around {config.model}"}
    return model


def _resnet_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpicklable, truncated, not a torch file
        raise CheckpointError(f"resnet_weights: cannot read {path} ({error}).") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"resnet_weights: {path} is not a state dict of tensors; save a torchvision ResNet's "
            "model.state_dict() with torch.save."
        )
    return state


def train(config: TrainConfig, *, resume: bool = False) -> TrainResult:
    """Train as configured; with ``resume`` continue from the run's last checkpoint.

    Raises:
        ConfigError: a run of that name exists and ``resume`` is off, ``resume`` without a
            checkpoint, or a resumed run whose config differs from the saved one.
    """
    run_dir = config.run_dir
    checkpoint = _resume_checkpoint(config, run_dir) if resume else None
    if checkpoint is None:
        _start_run_folder(config, run_dir)
    L.seed_everything(config.trainer.seed, workers=True, verbose=False)
    model, report = prepare_model(config)
    module = SamTrainingModule(model, config.objective, config.optimizer, config.trainer.seed)
    data = SegmentationDataModule(config.data, model.config.input_transform(), config.trainer.seed)
    trainer = build_trainer(config, run_dir, resume_step=_step_of(checkpoint))
    if trainer.is_global_zero:
        print(f"samforge train: {config.name} — {report}", flush=True)
    started = time.perf_counter()
    # SegmentationDataModule restores the data position itself (its state_dict), so
    # Lightning's warning that a mid-epoch resume repeats data does not apply.
    warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before")
    trainer.fit(module, datamodule=data, ckpt_path=checkpoint, weights_only=True)
    # A full checkpoint: "train longer" resumes from it (it is the newest step file).
    final = run_dir / "checkpoints" / f"step-{trainer.global_step:06d}.ckpt"
    if not final.exists():
        trainer.save_checkpoint(final, weights_only=False)  # with optimiser state: resumable
    export_path = None
    if trainer.is_global_zero:
        trained = module.model
        if config.trainer.strategy == "fsdp":
            trained = _gathered_model(config, final)
        export_path = _export(trained, run_dir / config.export, config)
        _write_summary(run_dir, trainer, export_path, time.perf_counter() - started, report)
    return TrainResult(run_dir, export_path, final, trainer.global_step, report)


def _gathered_model(config: TrainConfig, checkpoint: Path) -> torch.nn.Module:
    """Under FSDP each rank holds a shard; the checkpoint (saved with a full state dict)
    holds the whole model. Not yet exercised on GPUs here."""
    model, _ = prepare_model(config)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    return model


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file in its own folder and renames it into
    place (Lightning's default stages in the system temp folder, which turns the final move
    into a copy when that is another file system); loads with ``weights_only=True``."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        save_torch_atomically(path, checkpoint)

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)


def _quiet_lightning() -> None:
    """Drop two messages that say nothing about the run: Lightning's advertisement for its
    cloud logger, and a deprecation inside Lightning's own use of torch's pytree."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: not str(record.msg).startswith("💡 Tip")
    )
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def build_trainer(config: TrainConfig, run_dir: Path, resume_step: int | None = None) -> L.Trainer:
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
        )
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


def _strategy(name: str, accelerator: str) -> Any:
    if name in ("ddp", "ddp_spawn"):
        from lightning.pytorch.strategies import DDPStrategy

        on_cpu = accelerator == "cpu" or not torch.cuda.is_available()
        start = "spawn" if name == "ddp_spawn" else "popen"
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


class WeightDigests(Callback):
    """After every optimiser step, each rank appends a digest of its parameters to
    ``digests/rank<r>.jsonl``: replicas that stay in sync write identical digests."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        import xxhash

        if (batch_idx + 1) % trainer.accumulate_grad_batches:
            return  # a micro-batch of gradient accumulation: no optimiser step yet

        digest = xxhash.xxh3_128()
        for name, tensor in sorted(pl_module.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        self.folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"step": trainer.global_step, "digest": digest.hexdigest()})
        with open(self.folder / f"rank{trainer.global_rank}.jsonl", "a") as handle:
            handle.write(line + "\n")


def _export(model: torch.nn.Module, path: Path, config: TrainConfig) -> Path:
    """The trained model in its family's public format (the official SAM format for SAM
    models), PEFT deltas merged into dense weights."""
    merged = merge_peft(copy.deepcopy(model)).eval()
    provenance = {
        "trained_by": "samforge train",
        "run": config.name,
        "base_model": config.model,
        "objective": config.objective.model_dump(mode="json"),
        "peft": config.peft.kind,
        "freeze": config.freeze.policy,
    }
    return export_model(merged, path, provenance=provenance)


def _start_run_folder(config: TrainConfig, run_dir: Path) -> None:
    checkpoints = run_dir / "checkpoints"
    if checkpoints.exists() and any(checkpoints.iterdir()):
        raise ConfigError(
            f"{run_dir} already holds a run with checkpoints. Pass --resume to continue it, "
            "or choose another `name` / `output_dir`."
        )
    if rank_zero_only.rank == 0:  # Lightning's global rank, read from the launcher's env
        _write_text(run_dir / "config.yaml", config.to_yaml())


def _resume_checkpoint(config: TrainConfig, run_dir: Path) -> Path:
    """The checkpoint with the highest step: every present file is complete (they are
    renamed into place), and the step in the name orders them on any file system."""
    folder = run_dir / "checkpoints"
    numbered = (re.fullmatch(r"step-(\d+)\.ckpt", p.name) for p in folder.glob("step-*.ckpt"))
    steps = {int(m.group(1)): folder / m.group(0) for m in numbered if m}
    if not steps:
        raise ConfigError(
            f"--resume: {folder} holds no checkpoint, so there is nothing to resume; start "
            "the run without --resume."
        )
    last = steps[max(steps)]
    saved_file = run_dir / "config.yaml"
    if saved_file.is_file():
        saved = yaml.safe_load(saved_file.read_text())
        changed = _differences(saved, config.model_dump(mode="json"))
        changed = [key for key in changed if key not in _RESUMABLE_CHANGES]
        if changed:
            raise ConfigError(
                f"--resume: the config differs from the one {run_dir.name} started with, at "
                f"{', '.join(changed)}; resume with the saved config ({saved_file}) or start a "
                "new run."
            )
    return last


def _step_of(checkpoint: Path | None) -> int | None:
    return None if checkpoint is None else int(checkpoint.stem.removeprefix("step-"))


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [
            d for key in keys for d in _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        ]
    return [] if old == new else [prefix.rstrip(".")]


def _write_summary(
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
    _write_text(run_dir / "summary.json", json.dumps(summary, indent=2))


def _write_text(path: Path, text: str) -> None:
    write_text_atomically(path, text)
