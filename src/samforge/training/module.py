"""The LightningModule around an objective: optimiser, schedule, logging, seeding.

The objectives themselves are plain PyTorch (:mod:`.objectives`); this module only feeds
them batches and a generator. The generator of each batch is seeded by (seed, batch number
of the run, rank), so a resumed run draws the same prompts as an uninterrupted one and
ranks draw different ones.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import nn

from .config import OptimizerConfig
from .freeze import keep_frozen_norms_in_eval
from .objectives import Objective


class SamTrainingModule(L.LightningModule):
    """Trains a samforge model with any registered objective.

    Args:
        model: the model (a promptable SAM-family model, or a semantic model for a
            semantic objective), with its freeze policy and PEFT layers already applied.
        objective: the objective (:func:`samforge.training.objectives.build_objective`).
        optimizer: the ``optimizer`` section of the config.
        seed: seed of the prompt sampling.
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        optimizer: OptimizerConfig,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.model = model
        # A submodule: whatever the objective trains besides the model trains with it.
        self.objective = objective
        self.optimizer_config, self.seed = optimizer, seed

    def train(self, mode: bool = True) -> SamTrainingModule:
        """Training mode that keeps frozen batch norms' statistics fixed
        (:func:`samforge.training.freeze.keep_frozen_norms_in_eval`)."""
        super().train(mode)
        if mode:
            keep_frozen_norms_in_eval(self.model)
        return self

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        number = self._batch_number(batch_idx)
        generator = self._generator(number, self.global_rank)
        # "step" counts from 0 (first_prompt "alternate" starts from a point, as micro-sam)
        logs = self.objective.losses(self.model, {**batch, "step": number - 1}, generator)
        self._log("train", logs, batch)
        return logs["loss"]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        # Fixed prompts per validation batch, so validation losses compare across epochs.
        generator = self._generator(-1 - batch_idx, 0)
        logs = self.objective.losses(self.model, {**batch, "step": batch_idx}, generator)
        self._log("val", logs, batch)

    def _batch_number(self, batch_idx: int) -> int:
        """1 + the number of training batches before this one in the run. Every epoch has
        ``num_training_batches`` batches (the sampler gives every rank the same number), and
        Lightning restores ``batch_idx`` on resume, so this counts across a resumption."""
        per_epoch = int(self.trainer.num_training_batches)
        return self.trainer.current_epoch * per_epoch + batch_idx + 1

    def _log(self, stage: str, logs: dict[str, torch.Tensor], batch: dict[str, Any]) -> None:
        size = len(batch["image"])
        for name, value in logs.items():
            self.log(
                f"{stage}/{name}",
                value.detach(),
                prog_bar=name in self.objective.progress_bar,
                batch_size=size,
                sync_dist=stage == "val",
            )

    def _generator(self, batch_number: int, rank: int) -> torch.Generator:
        entropy = [self.seed, batch_number + 2**31, rank]  # SeedSequence takes no negatives
        seed = int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)
        return torch.Generator().manual_seed(seed)

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        parameters = [p for p in self.parameters() if p.requires_grad]
        config = self.optimizer_config
        optimizer_class = torch.optim.AdamW if config.name == "adamw" else torch.optim.Adam
        optimizer = optimizer_class(parameters, lr=config.lr, weight_decay=config.weight_decay)
        schedule: torch.optim.lr_scheduler.LRScheduler
        if config.lr_milestones is not None:  # SAM-UNet: ×0.5 after epochs 5 and 10
            schedule = torch.optim.lr_scheduler.MultiStepLR(
                optimizer, milestones=config.lr_milestones, gamma=config.lr_decay
            )
        else:
            schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": schedule, "interval": "epoch"},
        }
