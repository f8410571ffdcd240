"""The LightningModule around the objectives: optimiser, schedule, logging, seeding.

The objectives themselves are plain PyTorch (:mod:`.objective`, :mod:`.robust`); this
module only feeds them batches and a generator. The generator of each batch is seeded by
(seed, batch number of the run, rank), so a resumed run draws the same prompts as an
uninterrupted one and ranks draw different ones.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch

from .config import ObjectiveConfig, OptimizerConfig
from .objective import SemanticLoss, iterative_prompting_loss
from .robust import robust_loss


class SamTrainingModule(L.LightningModule):
    """Trains a samforge model with the iterative-prompting or the robust objective.

    Args:
        model: the model, with its freeze policy and PEFT layers already applied.
        objective: the ``objective`` section of the config.
        optimizer: the ``optimizer`` section.
        seed: seed of the prompt sampling.
        semantic_loss: optional joint semantic loss (MedicoSAM's ``e_sem``).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        objective: ObjectiveConfig,
        optimizer: OptimizerConfig,
        seed: int = 0,
        semantic_loss: SemanticLoss | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.objective, self.optimizer_config, self.seed = objective, optimizer, seed
        # The objective's settings, validated with the config before training started.
        self.settings = objective.settings()
        # A semantic head (nn.Module) registers as a submodule, so it trains with the model.
        self.semantic_loss = semantic_loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        batch_number = self.trainer.fit_loop.epoch_loop.batch_progress.total.ready
        generator = self._generator(batch_number, self.global_rank)
        logs = self._losses(batch, generator)
        self._log("train", logs, batch)
        return logs["loss"]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        # Fixed prompts per validation batch, so validation losses compare across epochs.
        generator = self._generator(-1 - batch_idx, 0)
        self._log("val", self._losses(batch, generator), batch)

    def _losses(self, batch: dict[str, Any], generator: torch.Generator) -> dict[str, torch.Tensor]:
        if self.objective.kind == "robust":
            out = robust_loss(
                self.model,
                batch["image"],
                batch["degraded_image"],
                batch["masks"],
                self.settings,
                generator,
            )
            return {
                "loss": out.loss,
                "segmentation_loss": out.segmentation_loss,
                "feature_loss": out.feature_loss,
                "token_loss": out.token_loss,
            }
        out = iterative_prompting_loss(
            self.model,
            batch["image"],
            batch["masks"],
            self.settings,
            generator,
            self.semantic_loss,
            input_sizes=batch["input_size"],
        )
        logs = {
            "loss": out.loss,
            "mask_loss": out.mask_loss,
            "iou_loss": out.iou_loss,
            "dice_first": out.round_dice[0],
            "dice_last": out.round_dice[-1],
        }
        if out.semantic_loss is not None:
            logs["semantic_loss"] = out.semantic_loss
        return logs

    def _log(self, stage: str, logs: dict[str, torch.Tensor], batch: dict[str, Any]) -> None:
        size = len(batch["image"])
        for name, value in logs.items():
            self.log(
                f"{stage}/{name}",
                value.detach(),
                prog_bar=name in ("loss", "dice_last"),
                batch_size=size,
                sync_dist=stage == "val",
            )

    def _generator(self, batch_number: int, rank: int) -> torch.Generator:
        entropy = [self.seed, batch_number + 2**31, rank]  # SeedSequence takes no negatives
        seed = int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)
        return torch.Generator().manual_seed(seed)

    def configure_optimizers(self) -> dict[str, Any]:
        parameters = [p for p in self.parameters() if p.requires_grad]
        config = self.optimizer_config
        optimizer_class = torch.optim.AdamW if config.name == "adamw" else torch.optim.Adam
        optimizer = optimizer_class(parameters, lr=config.lr, weight_decay=config.weight_decay)
        schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": schedule, "interval": "epoch"},
        }
