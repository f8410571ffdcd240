"""The Lightning DataModule of training: cases from the config, batches of objects.

Data order is a pure function of (seed, epoch, rank), and the DataModule's state (saved in
every checkpoint) records how many batches of the current epoch were trained. A resumed run
skips exactly those batches, so an interrupted and resumed run sees the same batches as an
uninterrupted one. The sampler shards the order across ranks itself (Lightning's
``use_distributed_sampler`` is off), the way ``DistributedSampler`` does.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.seed import pl_worker_init_function
from torch.utils.data import DataLoader, Sampler

from ..data import ObjectSegmentationDataset, collate_objects
from ..preprocessing import ModelInputTransform
from .config import DataConfig, DataSource
from .sources import Role, collect_cases
from .volume_slices import VolumeSliceDataset, WithAdjacentSlices, collate_with_slices


class EpochDataset(Protocol):
    """What the sampler needs of a dataset: a length and a hook for the epoch."""

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None: ...


class ResumableSampler(Sampler[int]):
    """Indices of one rank for one epoch: a seeded permutation, padded to a multiple of the
    world size, every ``world_size``-th index from ``rank``; the first ``skip`` batches of
    the resumed epoch are left out."""

    def __init__(
        self,
        dataset: EpochDataset,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        follow_epoch: bool = True,
    ) -> None:
        self.dataset, self.batch_size = dataset, batch_size
        self.seed, self.rank, self.world_size, self.shuffle = seed, rank, world_size, shuffle
        # Validation keeps epoch 0: the same objects and views every time, so its losses
        # compare across epochs (Lightning calls set_epoch on validation samplers too).
        self.follow_epoch = follow_epoch
        self.epoch = 0
        self.resume_epoch, self.skip_batches = -1, 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        if self.follow_epoch:
            self.epoch = int(epoch)
            self.dataset.set_epoch(epoch)

    def resume(self, epoch: int, batches_done: int) -> None:
        self.resume_epoch, self.skip_batches = int(epoch), int(batches_done)

    def _rank_indices(self) -> list[int]:
        total = len(self.dataset)
        if self.shuffle:
            seed = int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0])
            order = torch.randperm(total, generator=torch.Generator().manual_seed(seed)).tolist()
        else:
            order = list(range(total))
        # Every rank gets the same number of items (repeating the order as needed, also for
        # a dataset smaller than the world), or DDP would wait forever for a missing batch.
        per_rank = -(-total // self.world_size)
        order = (order * -(-per_rank * self.world_size // total))[: per_rank * self.world_size]
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        indices = self._rank_indices()
        if self.epoch == self.resume_epoch:
            indices = indices[self.skip_batches * self.batch_size :]
            self.resume_epoch = -1  # only the epoch that was interrupted is shortened
        return iter(indices)

    def __len__(self) -> int:
        return -(-len(self.dataset) // self.world_size)


class SegmentationDataModule(L.LightningDataModule):
    """Training (and optional validation) batches for :class:`SamTrainingModule`.

    Args:
        config: the ``data`` section of the training config.
        transform: the model's input transform (``model.config.input_transform()``).
        seed: seed of data order and object sampling.
        threads: torch threads of each loader worker (``samforge train --threads``); None
            keeps torch's one thread per worker.
    """

    # How items become batches; the semantic data module stacks them (PyTorch's default).
    collate_fn: Any = staticmethod(collate_objects)

    def __init__(
        self,
        config: DataConfig,
        transform: ModelInputTransform | None,
        seed: int = 0,
        threads: int | None = None,
    ) -> None:
        super().__init__()
        self.config, self.transform, self.seed = config, transform, seed
        self.threads = threads
        self.train_set: Any = None  # the dataset of _dataset
        self.val_set: Any = None
        self._sampler: ResumableSampler | None = None
        self._resume_state: dict[str, int] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = self._dataset(self.config.train, "train", self.seed)
            if self.config.val:
                self.val_set = self._dataset(self.config.val, "val", self.seed + 1)

    def _dataset(self, sources: Sequence[DataSource], role: Role, seed: int) -> EpochDataset:
        assert self.transform is not None  # given for prompted training
        images = self._images(sources, role, seed)
        volumes = self.config.volumes
        if role == "val" or volumes is None:
            return images
        # One volume slice beside each 2D item: the propagation objective trains on both.
        self.collate_fn = collate_with_slices
        slices = VolumeSliceDataset(volumes, self.transform, len(images), seed)
        return WithAdjacentSlices(images, slices)

    def _images(
        self, sources: Sequence[DataSource], role: Role, seed: int
    ) -> ObjectSegmentationDataset:
        assert self.transform is not None
        return ObjectSegmentationDataset(
            collect_cases(sources, role),
            n_obj=self.config.n_obj,
            min_size=self.config.min_size,
            connectivity=self.config.connectivity,
            seed=seed,
            classes=self.config.classes,
            intensity=self.config.intensity,
            window=self.config.window,
            transform=self.transform,
            degradations=self.config.degradations,
            severity=self.config.severity,
            object_sampling=self.config.object_sampling,
        )

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            raise RuntimeError("call setup() before asking for the training loader")
        rank, world = self._rank_and_world()
        self._sampler = ResumableSampler(
            self.train_set, self.config.batch_size, self.seed, rank, world
        )
        if self._resume_state is not None:
            self._sampler.resume(**self._resume_state)
            self._resume_state = None
        return self._loader(self.train_set, self._sampler)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []
        rank, world = self._rank_and_world()
        # Each rank validates its shard; the logged metrics are averaged across ranks.
        sampler = ResumableSampler(
            self.val_set,
            self.config.batch_size,
            self.seed,
            rank,
            world,
            shuffle=False,
            follow_epoch=False,
        )
        return self._loader(self.val_set, sampler)

    def _threaded_workers(self) -> bool:
        return self.config.num_workers > 0 and self.threads is not None and self.threads > 1

    def _rank_and_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer else (0, 1)

    def _loader(self, dataset: Any, sampler: Sampler) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.config.batch_size,
            sampler=sampler,
            collate_fn=self.collate_fn,
            num_workers=self.config.num_workers,
            persistent_workers=False,
            worker_init_fn=None
            if self.threads is None
            else functools.partial(_init_worker, threads=self.threads),
            # A worker forked from a process whose OpenMP pool has run hangs when it starts
            # a pool of its own (GNU libgomp is not fork-safe); one from a fresh forkserver
            # process does not. torch's default of one thread per worker never starts one.
            multiprocessing_context="forkserver" if self._threaded_workers() else None,
        )

    def state_dict(self) -> dict[str, Any]:
        """Where in the data the run is: saved in checkpoints by Lightning."""
        trainer = self.trainer
        if trainer is None:
            return {}
        # Private: Lightning has no public count of the batches trained in the current
        # epoch outside a batch hook (where it passes batch_idx), and checkpoints are
        # written outside them.
        # Lightning annotates the tracker's base class; the batch progress tracks
        # processed batches too (a _ProcessedTracker).
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        batches_done = progress.processed  # type: ignore[attr-defined]
        return {"epoch": trainer.current_epoch, "batches_done": batches_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self._resume_state = {
                "epoch": int(state["epoch"]),
                "batches_done": int(state["batches_done"]),
            }


def _init_worker(worker_id: int, threads: int) -> None:
    """A loader worker's start: torch's DataLoader sets one thread per worker; use the
    run's count instead. Lightning's own worker seeding (which an explicit
    ``worker_init_fn`` replaces) runs too."""
    torch.set_num_threads(threads)
    pl_worker_init_function(worker_id)
