"""Training data of semantic models: random patches of images and volumes with their
label maps, classes selected and renumbered by ``data.classes``.

Each item is one case: a 2D model trains on one image of it (a random slice of a volume,
one that shows a class where the volume has any), a 3D model on the volume. A patch of the
model's ``patch_size`` is cropped at a random place, centred on a random labelled voxel half
of the time (small organs would be rare otherwise), and zero-padded where the image is
smaller. Intensities go through the model's intensity rule (one mapping per volume), as at
inference. Randomness is a pure function of (seed, epoch, index), so a resumed run sees the
same patches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data import Case, IntensitySettings
from ..errors import DataError
from .config import DataConfig, DataSource
from .data_module import SegmentationDataModule
from .sources import Role, collect_cases

FOREGROUND_CENTRED = 0.5  # fraction of patches centred on a labelled voxel


class SemanticDataset(Dataset):
    """Items ``{"image": (C, *patch) float32 in [0, 1], "label": (1, *patch) int64}``.

    Args:
        cases: the cases (read lazily).
        patch_size: (H, W) for a 2D model, (D, H, W) for a 3D one.
        in_channels: 1 (grey: the mean of the intensity rule's RGB) or 3.
        classes: label values to keep, renumbered 1..K in this order (others become
            background); None keeps the label map as it is.
        num_classes: classes of the model, background included (labels must lie below).
        intensity, window: the intensity rule.
        seed: seed of the crops.
    """

    def __init__(
        self,
        cases: Sequence[Case],
        patch_size: tuple[int, ...],
        *,
        in_channels: int = 1,
        classes: Sequence[int] | None = None,
        num_classes: int,
        intensity: str = "auto",
        window: str | tuple[float, float] | None = None,
        seed: int = 0,
    ) -> None:
        self.cases, self.patch_size = cases, tuple(patch_size)
        self.in_channels, self.num_classes, self.seed = in_channels, num_classes, seed
        self.lookup = None if classes is None else _renumbering(classes)
        self.intensity = IntensitySettings(intensity, window)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.cases)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        case = self.cases[index]
        if case.label is None:
            raise DataError(f"case {case.name!r} has no label map; semantic training needs one.")
        label = self._labels(case)
        image = self._intensities(case)  # (C, *spatial) in [0, 1]
        if len(self.patch_size) == 2 and case.is_volume:
            depth = _slice_with_labels(label, rng)
            image, label = image[:, depth], label[depth]
        image, label = _patch(image, label, self.patch_size, rng)
        return {
            "image": torch.from_numpy(image),
            "label": torch.from_numpy(label[None].astype(np.int64)),
            "name": case.name,
        }

    def _labels(self, case: Case) -> np.ndarray:
        assert case.label is not None
        label = np.asarray(case.label)
        if self.lookup is not None:
            label = self.lookup[np.clip(label, 0, len(self.lookup) - 1)]
        if label.max(initial=0) >= self.num_classes or label.min(initial=0) < 0:
            raise DataError(
                f"case {case.name!r} has label values up to {int(label.max())}, but the model "
                f"has {self.num_classes} classes (background included); select and renumber "
                "them with data.classes, e.g. classes: [1, 2]."
            )
        return label

    def _intensities(self, case: Case) -> np.ndarray:
        mapping = self.intensity.case_mapping(case)
        if case.is_volume:  # grey: one channel, repeated for an RGB model
            values = np.repeat(mapping.apply(case.image)[None], self.in_channels, axis=0)
        else:
            values = mapping(case.image).transpose(2, 0, 1)
            if self.in_channels == 1:
                values = values.mean(axis=0, keepdims=True)
        return np.ascontiguousarray(values, dtype=np.float32) / np.float32(255.0)


def _renumbering(classes: Sequence[int]) -> np.ndarray:
    """A lookup table: label value ``classes[i]`` -> i + 1, any other -> 0."""
    table = np.zeros(max(classes) + 2, dtype=np.int64)
    table[list(classes)] = np.arange(1, len(classes) + 1)
    return table


def _slice_with_labels(label: np.ndarray, rng: np.random.Generator) -> int:
    labelled = np.flatnonzero(label.reshape(len(label), -1).any(axis=1))
    return int(rng.choice(labelled)) if len(labelled) else int(rng.integers(len(label)))


def _patch(
    image: np.ndarray, label: np.ndarray, size: tuple[int, ...], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A random ``size`` window of (C, *S) ``image`` and (*S) ``label``, zero-padded."""
    foreground = np.argwhere(label > 0) if rng.random() < FOREGROUND_CENTRED else None
    centre = None
    if foreground is not None and len(foreground):
        centre = foreground[rng.integers(len(foreground))]
    source, target = [], []
    for axis, (length, side) in enumerate(zip(label.shape, size, strict=True)):
        # Starts keep the window over the image (or the image inside a larger window).
        low, high = min(0, length - side), max(0, length - side)
        wanted = int(rng.integers(low, high + 1)) if centre is None else centre[axis] - side // 2
        start = min(max(int(wanted), low), high)
        source.append(slice(max(start, 0), min(start + side, length)))
        target.append(slice(source[-1].start - start, source[-1].stop - start))
    image_out = np.zeros((image.shape[0], *size), dtype=np.float32)
    label_out = np.zeros(size, dtype=label.dtype)
    image_out[(slice(None), *target)] = image[(slice(None), *source)]
    label_out[tuple(target)] = label[tuple(source)]
    return image_out, label_out


class SemanticDataModule(SegmentationDataModule):
    """:class:`SegmentationDataModule` with semantic patches instead of prompted objects.

    Args:
        config: the ``data`` section.
        patch_size, in_channels, num_classes: the model's (its ``info``).
        seed: seed of data order and crops.
        threads: torch threads of each loader worker (``samforge train --threads``).
    """

    collate_fn = None  # PyTorch's default: stacks the patches

    def __init__(
        self,
        config: DataConfig,
        patch_size: tuple[int, ...],
        in_channels: int,
        num_classes: int,
        seed: int = 0,
        threads: int | None = None,
    ) -> None:
        super().__init__(config, None, seed, threads)
        self.patch_size, self.in_channels, self.num_classes = patch_size, in_channels, num_classes

    def _dataset(self, sources: Sequence[DataSource], role: Role, seed: int) -> SemanticDataset:
        return SemanticDataset(
            collect_cases(sources, role),
            self.patch_size,
            in_channels=self.in_channels,
            classes=self.config.classes,
            num_classes=self.num_classes,
            intensity=self.config.intensity,
            window=self.config.window,
            seed=seed,
        )
