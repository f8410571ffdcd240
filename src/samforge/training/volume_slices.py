"""Training items for 3D propagation: a slice of a volume, prompted as propagation would.

Propagation (:mod:`samforge.inference.propagation`) segments slice z ± 1 from the mask of
slice z, through :func:`samforge.prompts.volume_prompts.prompts_from_mask`. Each item here
is one such step with the adjacent slice's label (grown or shrunk a little, as a predicted
mask differs from the label) in place of the previous mask, prompted by that same function
with the config's ``mode`` and ``box_extension`` (propagation's defaults: box + mask logits,
no extension). The target is the same organ's label on the slice itself, which is empty
where the organ ended on the adjacent slice: every front of a propagation meets one such
slice, and a model that never saw one keeps drawing the organ beyond its end. With
``chain`` K > 1 an item also holds the K - 1 slices after it, away from the prompt: the
objective prompts each from the model's own mask on the slice before, as propagation does.

Volumes: the config's label files, nilearn's MNI152, and a new varied phantom
(:func:`samforge.data.phantoms.varied.varied_volume`) for every phantom item, its seed drawn
from [TRAINING_SEEDS, 2·TRAINING_SEEDS) so no evaluation seed is ever trained on. Everything
an item draws comes from a generator seeded by (seed, epoch, index), like
:class:`~samforge.data.ObjectSegmentationDataset`, so a resumed run sees the same items.

:class:`WithAdjacentSlices` pairs these items with the 2D dataset's, one each per index,
and :func:`collate_with_slices` batches them under ``batch["slices"]`` for the
``propagation`` objective.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

from ..data import (
    Case,
    IntensityMapping,
    IntensitySettings,
    collate_objects,
    read_case,
    validate_image,
)
from ..data.builtin import mni152_case
from ..data.corruptions import CORRUPTIONS, corrupt
from ..data.phantoms.varied import TRAINING_SEEDS, varied_volume
from ..errors import DataError
from ..preprocessing import ModelInputTransform
from ..prompts.volume_prompts import prompts_from_mask
from .volume_config import VolumeSlicesConfig

# A volume without a usable pair of slices (every organ under min_size) is redrawn.
ATTEMPTS = 8


class VolumeSliceDataset(Dataset):
    """``length`` items per epoch, each a slice of a volume with prompts from its neighbour.

    Args:
        config: the ``data.volumes`` section.
        transform: the model's input transform; its mask prompts are (S/4)², SAM's.
        length: items per epoch.
        seed: seed of everything the items draw.

    Items are dicts: ``image`` (3, S, S); ``masks`` (n, S, S) float32 and
    ``original_masks`` (n, H, W) bool, the organs on the slice; ``boxes`` (n, 4) float32
    (model frame) and, in mode "mask", ``mask_input`` (n, 1, S/4, S/4): the prompts from the
    adjacent slice as the Predictor hands them to the decoder; ``input_size``,
    ``original_size`` (2,) int64; ``name`` str. With ``chain`` K > 1 also ``chain_image``
    (K-1, 3, S, S), ``chain_masks`` (K-1, n, S, S), ``chain_original_masks``
    (K-1, n, H, W): the slices z - step, z - 2·step, ...; ``prompting``: (mode,
    box_extension), how the objective prompts them.
    """

    def __init__(
        self, config: VolumeSlicesConfig, transform: ModelInputTransform, length: int, seed: int
    ) -> None:
        self.config, self.transform, self.length, self.seed = config, transform, length, seed
        self.low_res_size = transform.image_size // 4
        self.intensity = IntensitySettings("auto")
        self.epoch = 0
        self._files: list[tuple[Case, np.ndarray]] | None = None  # read on first use

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.epoch, index, 19])
        config = self.config
        for _ in range(ATTEMPTS):
            case, areas = self._volume(rng)
            choice = _slice_pair(
                areas, config.min_size, rng, config.organ_ends, config.p_end, config.chain
            )
            if choice is not None:
                return self._item(case, *choice, rng)
        raise DataError(
            f"{ATTEMPTS} volumes in a row had no organ of ≥ {self.config.min_size} px on a "
            "slice with a neighbour: lower data.volumes.min_size or check the label files."
        )

    def _volume(self, rng: np.random.Generator) -> tuple[Case, np.ndarray]:
        """A volume and its organs' areas per slice (see :func:`label_areas`)."""
        files = self._real_volumes()
        if self.config.phantoms and (not files or rng.random() < self.config.p_phantom):
            seed = int(rng.integers(TRAINING_SEEDS, 2 * TRAINING_SEEDS))
            case = varied_volume(seed, tuple(self.config.phantoms))
            return case, label_areas(case.label)
        return files[int(rng.integers(len(files)))]

    def _real_volumes(self) -> list[tuple[Case, np.ndarray]]:
        if self._files is None:
            cases = [read_case(f.image, f.label, f.modality) for f in self.config.files]
            if self.config.mni152:
                cases.append(mni152_case(step=2))
            self._files = [(case, label_areas(case.label)) for case in cases]
        return self._files

    def _item(
        self, case: Case, index: int, step: int, organs: np.ndarray, rng: np.random.Generator
    ) -> dict[str, Any]:
        assert case.label is not None  # label_areas read it
        label, adjacent = case.label[index], case.label[index + step]
        chosen = self._chosen_organs(label, organs, rng)
        targets = np.stack([label == organ for organ in chosen])
        prompts = [
            prompts_from_mask(
                self._as_predicted(adjacent == organ, rng),
                self.config.mode,
                self.transform,
                self.low_res_size,
                self.config.box_extension,
            )
            for organ in chosen
        ]
        mapping = self.intensity.case_mapping(case)
        corruption = None
        if rng.random() < self.config.p_corrupt:
            kind = sorted(CORRUPTIONS)[int(rng.integers(len(CORRUPTIONS)))]
            corruption = (kind, int(rng.integers(1, 6)))
        masks = self.transform.label_masks(torch.from_numpy(targets).float()[None])
        item = {
            "image": self._image(case.image[index], mapping, corruption, rng),
            "masks": masks[0].float(),
            "original_masks": torch.from_numpy(targets),
            # In the model frame, as the Predictor passes boxes to the decoder.
            "boxes": self.transform.boxes(
                torch.cat([p.boxes for p in prompts if p.boxes is not None]), label.shape
            ),
            "input_size": torch.tensor(self.transform.resized_shape(label.shape)),
            "original_size": torch.tensor(label.shape, dtype=torch.int64),
            "name": f"{case.name}_z{index:03d}{'+' if step > 0 else '-'}",
        }
        if self.config.mode == "mask":
            item["mask_input"] = torch.cat([p.mask_input for p in prompts])  # type: ignore[misc]
        if self.config.chain > 1:
            later = [index - k * step for k in range(1, self.config.chain)]
            chained = torch.from_numpy(
                np.stack([np.stack([case.label[z] == organ for organ in chosen]) for z in later])
            )
            item["chain_image"] = torch.stack(
                [self._image(case.image[z], mapping, corruption, rng) for z in later]
            )
            item["chain_masks"] = self.transform.label_masks(chained.float()).float()
            item["chain_original_masks"] = chained
            # The objective prompts the later steps from the model's masks in this way.
            item["prompting"] = (self.config.mode, self.config.box_extension)
        return item

    def _image(
        self,
        values: np.ndarray,
        mapping: IntensityMapping,
        corruption: tuple[str, int] | None,
        rng: np.random.Generator,
    ) -> torch.Tensor:
        """A (H, W) slice -> the model's (3, S, S) input: intensities mapped as propagation
        maps the volume's, then the item's corruption (kind, severity), if any."""
        values = mapping.apply(validate_image(values))
        if corruption is not None:
            values = corrupt(values, *corruption, seed=rng)
        image = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))[None, None]
        return self.transform.image(image)[0].contiguous()

    def _chosen_organs(
        self, label: np.ndarray, organs: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Up to ``n_obj`` of ``organs`` at random; with ``organ_ends``, those that end
        before this slice (under ``min_size`` px in its ``label``) first: few slices hold
        an organ's end, yet every propagation front meets one."""
        count = min(self.config.n_obj, len(organs))
        if not self.config.organ_ends:
            return rng.choice(organs, size=count, replace=False)
        shuffled = rng.permutation(organs)
        ended = [np.count_nonzero(label == organ) < self.config.min_size for organ in shuffled]
        return shuffled[np.argsort(np.logical_not(ended), kind="stable")][:count]

    def _as_predicted(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``mask`` grown or shrunk by 1..``prompt_noise_px`` pixels in half the draws (a
        shrunk mask that would vanish stays as it is)."""
        radius = self.config.prompt_noise_px
        if radius == 0 or rng.random() < 0.5:
            return mask
        pixels = int(rng.integers(1, radius + 1))
        if rng.random() < 0.5:
            return ndimage.binary_dilation(mask, iterations=pixels)
        shrunk = ndimage.binary_erosion(mask, iterations=pixels)
        return shrunk if shrunk.any() else mask


def label_areas(label: np.ndarray | None) -> np.ndarray:
    """(D, H, W) label map -> (K + 1, D) pixel count of each label on each slice."""
    if label is None or label.ndim != 3:
        raise DataError(
            "training for propagation needs labelled volumes (D, H, W): give data.volumes "
            "files with a `label` of the image's shape."
        )
    depth = label.shape[0]
    flat = label.reshape(depth, -1).astype(np.int64)
    classes = int(flat.max()) + 1
    offsets = np.arange(depth)[:, None] * classes
    return np.bincount((flat + offsets).ravel(), minlength=depth * classes).reshape(depth, -1).T


def _slice_pair(
    areas: np.ndarray,
    min_size: int,
    rng: np.random.Generator,
    ends: bool = True,
    p_end: float = 0.0,
    chain: int = 1,
) -> tuple[int, int, np.ndarray] | None:
    """(slice, step ±1, its organs) drawn uniformly among the usable pairs, or None; see
    :func:`_prompted_organs`. A pair needs room for ``chain`` steps: slices ``index``,
    ``index - step``, ... in the volume. With ``ends``, a pair whose steps pass some
    organ's end is drawn with probability ``p_end`` (when the volume has one) instead."""
    present = areas[1:] >= min_size  # (K, D), background left out
    depth = present.shape[1]
    reach = chain - 1  # slices after the first target
    pairs = [
        (index, step)
        for step in (-1, 1)
        for index in range(depth)
        if 0 <= index + step < depth
        and 0 <= index - reach * step < depth
        and _prompted_organs(present, index, step, ends).size
    ]
    if not pairs:
        return None
    if ends and p_end > 0 and rng.random() < p_end:
        ending = [
            (i, s) for i, s in pairs if (present[:, i + s] & ~present[:, i - reach * s]).any()
        ]
        pairs = ending or pairs
    index, step = pairs[int(rng.integers(len(pairs)))]
    return index, step, _prompted_organs(present, index, step, ends)


def _prompted_organs(present: np.ndarray, index: int, step: int, ends: bool) -> np.ndarray:
    """The organs (label values) to segment on slice ``index`` from slice ``index + step``:
    those present there (``present``: (K, D) bool, ≥ min_size px). With ``ends``, also
    those that are smaller or absent on the slice itself (the step past an organ's end);
    without, only organs present on both."""
    usable = present[:, index + step]
    if not ends:
        usable = usable & present[:, index]
    return np.nonzero(usable)[0] + 1


class WithAdjacentSlices(Dataset):
    """The 2D dataset's item ``i`` with a volume slice item under ``"slice"``."""

    def __init__(self, images: Any, slices: VolumeSliceDataset) -> None:
        self.images, self.slices = images, slices

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        self.images.set_epoch(epoch)
        self.slices.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**self.images[index], "slice": self.slices[index]}


def collate_with_slices(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """:func:`collate_objects`, plus the slice items (when present) as ``batch["slices"]``
    batched the same way (the smallest object count of the batch for every slice)."""
    batch = collate_objects(samples)
    if "slice" not in samples[0]:
        return batch
    items = [sample["slice"] for sample in samples]
    count = min(len(item["masks"]) for item in items)
    slices: dict[str, Any] = {
        key: torch.stack([item[key][:count] for item in items])
        for key in ("masks", "boxes", "mask_input")
        if key in items[0]
    }
    if "chain_image" in items[0]:  # (B, K - 1, ...): the chain's later slices
        slices["chain_image"] = torch.stack([item["chain_image"] for item in items])
        slices["chain_masks"] = torch.stack([item["chain_masks"][:, :count] for item in items])
        slices["chain_original_masks"] = [item["chain_original_masks"][:, :count] for item in items]
        slices["prompting"] = items[0]["prompting"]
    slices["image"] = torch.stack([item["image"] for item in items])
    slices["original_masks"] = [item["original_masks"][:count] for item in items]
    slices["input_size"] = torch.stack([item["input_size"] for item in items])
    slices["name"] = [item["name"] for item in items]
    return {**batch, "slices": slices}
