"""What the trainer runs besides the module: callbacks (weight digests, the checkpoint at
``max_steps``) and the checkpoint IO plugin."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ..files import save_torch_atomically


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file in its own folder and renames it into
    place (Lightning's default stages in the system temp folder, which turns the final move
    into a copy when that is another file system); loads with ``weights_only=True``."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        save_torch_atomically(path, checkpoint)

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)


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
        # One line appended per step: the log grows as the run does, like metrics.csv.
        with open(self.folder / f"rank{trainer.global_rank}.jsonl", "a") as handle:
            handle.write(line + "\n")


class CheckpointAtMaxSteps(Callback):
    """Saves ``step-NNNNNN.ckpt`` in the batch that reaches ``max_steps``.

    A checkpoint saved after ``fit`` returns records the epoch that ``max_steps`` cut
    short as complete, so a run resumed from it to train longer would skip the rest of
    that epoch's batches; saved here, it resumes like any checkpoint of the run.

    Args:
        path_of_step: where the checkpoint of a step goes.
        every_n_steps: the step interval of the run's ModelCheckpoint, which saves a
            multiple of it itself (a second file would get a ``-v1`` name).
    """

    def __init__(self, path_of_step: Callable[[int], Path], every_n_steps: int) -> None:
        self.path_of_step, self.every_n_steps = path_of_step, every_n_steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        # The run stops after this batch, so this saves once. Every rank calls it (rank 0
        # writes, the others wait): a rank that skipped it would leave the others waiting.
        if step == trainer.max_steps > 0 and step % self.every_n_steps:
            # Full (optimiser and loops too): resumable. Lightning logs a notice otherwise.
            trainer.save_checkpoint(self.path_of_step(step), weights_only=False)
