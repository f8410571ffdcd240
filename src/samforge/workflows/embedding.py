"""Embedding precompute for a whole dataset, data-parallel through Lightning.

``Trainer.predict`` hands each process (device, node) its share of the dataset's cases; each
process embeds its cases with a :class:`~samforge.inference.Predictor` writing the shared
disk cache (:class:`~samforge.inference.disk_cache.DiskEmbeddingCache`), so any later
Predictor with that cache, the evaluations and the annotator find every embedding. Entries
are named by content and written atomically, so processes never collide, a case another
process (or an earlier run) already embedded is a cache hit, and an interrupted run resumes
where it stopped.

Each case is embedded as samforge embeds it everywhere else: a 2D image with
``set_image(image, mapping=settings.case_mapping(case))``, a volume slice by slice with
``embed_volume(volume, mapping=...)``, one mapping per volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from ..data import CaseList, IntensitySettings, open_dataset
from ..inference import Predictor
from ..inference.disk_cache import DiskEmbeddingCache
from ..inference.precision import DEFAULT_PRECISION
from ..models import load_model


@dataclass(frozen=True)
class EmbeddingJob:
    """What to embed and where: ``data`` (any layout ``open_dataset`` reads, with its
    ``split``), the ``model`` (registry name or file), the cache folder, the intensity
    settings and the encoder ``precision``; ``volume_batch`` slices per encoder call."""

    data: str
    model: str
    cache: str
    intensity: str = "auto"
    window: str | tuple[float, float] | None = None
    split: str | None = None
    precision: str = DEFAULT_PRECISION  # the Predictor's, so later predictors find the cache
    volume_batch: int = 4


class _CaseNumbers(Dataset):
    """The case numbers 0..n−1: each process opens the dataset itself and reads only the
    cases the sampler gives it."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> int:
        return index


class EmbeddingModule(L.LightningModule):
    """Embeds the cases whose numbers ``predict_step`` receives into the disk cache.

    ``predict_step`` returns, per case, ``(name, images embedded now, images in the case)``.
    """

    def __init__(self, job: EmbeddingJob) -> None:
        super().__init__()
        self.job = job
        self.model = load_model(job.model)
        self._predictor: Predictor | None = None
        self._cases: CaseList | None = None

    def predictor(self) -> Predictor:
        # Made on first use, inside the process and after Lightning moved the model.
        if self._predictor is None:
            job = self.job
            self._predictor = Predictor(
                self.model,
                intensity=job.intensity,
                window=job.window,
                cache_size=0,
                disk_cache=DiskEmbeddingCache(job.cache),
                precision=job.precision,
            )
            self._cases = open_dataset(job.data, split=job.split)
        return self._predictor

    def predict_step(self, batch: list[int], batch_idx: int) -> list[tuple[str, int, int]]:
        predictor = self.predictor()
        settings = IntensitySettings(self.job.intensity, self.job.window)
        done = []
        for number in batch:
            assert self._cases is not None  # opened with the predictor
            case = self._cases[number]
            mapping = settings.case_mapping(case)
            if case.is_volume:
                computed = predictor.embed_volume(
                    case.image, mapping=mapping, batch_size=self.job.volume_batch
                )
                predictor.cache.clear()  # embed_volume grew it to the volume's depth
                done.append((case.name, computed, int(case.image.shape[0])))
            else:
                misses = predictor.disk_cache.misses  # type: ignore[union-attr]
                predictor.set_image(case.image, mapping=mapping)
                computed = predictor.disk_cache.misses - misses  # type: ignore[union-attr]
                done.append((case.name, computed, 1))
        return done


def embed_dataset(
    job: EmbeddingJob,
    *,
    devices: int | str = 1,
    num_nodes: int = 1,
    accelerator: str = "auto",
    strategy: str = "auto",
    progress: bool = True,
) -> list[tuple[str, int, int]]:
    """Embed every case of ``job.data`` into ``job.cache`` on ``devices`` × ``num_nodes``.

    ``strategy="auto"`` takes ``ddp_spawn`` for several CPU processes (it starts from any
    caller, tests and notebooks included) and ``ddp`` for several GPUs or nodes.

    Returns:
        ``(case name, images embedded now, images in the case)`` per case (with ``ddp``:
        this process's share; with ``ddp_spawn``: nothing, the processes cannot return it).
    """
    count = len(open_dataset(job.data, split=job.split))
    Path(job.cache).mkdir(parents=True, exist_ok=True)
    if strategy == "auto":
        several = devices not in (1, "1") or num_nodes > 1
        on_cpu = accelerator == "cpu" or not torch.cuda.is_available()
        strategy = ("ddp_spawn" if on_cpu and num_nodes == 1 else "ddp") if several else "auto"
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
        default_root_dir=job.cache,
    )
    loader = DataLoader(_CaseNumbers(count), batch_size=1, collate_fn=list)
    # Spawned processes cannot hand predictions back; the cache is the result anyway.
    spawned = "spawn" in str(strategy) or "fork" in str(strategy)
    outputs = trainer.predict(EmbeddingModule(job), loader, return_predictions=not spawned)
    outputs = outputs or []
    return [entry for batch in outputs for entry in batch]
