"""A PyTorch Dataset for SAM training: model-ready images, each with ``n_obj`` object masks.

Each item is one 2D image (or one slice of a volume) that holds at least one object of
≥ ``min_size`` pixels: a connected component of a class (:mod:`samforge.data.objects`), or
one of the masks the case was published with (``Case.objects``, SA-Med2D-20M). The objects
of an item are drawn by ``object_sampling``, with a generator seeded by (``seed``, epoch,
index): the same item gives the same objects in any worker, and
:meth:`ObjectSegmentationDataset.set_epoch` draws new ones each epoch.

==========================  =============================================================
``without_replacement``     up to ``n_obj`` different objects (MedicoSAM)
``with_replacement``        exactly ``n_obj`` draws, repeats allowed (SAM-Med2D, SAM-UNet:
                            ``random.choices(masks, k=5)``)
``largest``                 the one largest object (RobustMedSAM's ``get_largest_mask``)
==========================  =============================================================

Images and masks enter the model frame through :class:`samforge.preprocessing.ModelInputTransform`,
the same code the Predictor uses: ``"sam"`` resizes the longest side to S, normalises with
the pixel mean/std and pads bottom/right; ``"medsam"`` resizes straight to S × S and scales
to [0, 1]. Masks are resized nearest (pixel centres) and padded with 0. ``input_size`` is
the (h, w) of the content inside the frame.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError
from ..preprocessing import PREPROCESSING_CONVENTIONS, ModelInputTransform
from .case_objects import plane_instances
from .corruptions import PAPER_SEVERITY, corrupt, get_corruption, resolve_corruption_names
from .intensity import IntensityMapping, IntensitySettings, validate_image
from .objects import ObjectInstance, count_objects
from .record import Case, MaskObject

OBJECT_SAMPLING = ("without_replacement", "with_replacement", "largest")
CLEAR = "clear"
"""The degradation that leaves the image as it is: RobustMedSAM draws it as one of 13."""


class ObjectSegmentationDataset(Dataset):
    """Items for interactive-segmentation training (MedicoSAM Alg. 1, MedSAM, SAM-UNet).

    Args:
        cases: 2D cases and/or volumes (a lazy ``CaseList`` is fine; each case is read once
            while indexing, then on demand with a small cache).
        n_obj: objects per image (fewer when an image has fewer).
        image_size: S, the model's input size.
        preprocessing: "sam" (resize longest side + pad) or "medsam" (direct resize).
        min_size: smallest object in pixels of the original image; smaller ones are ignored,
            and images without any object are skipped.
        seed: seed of the object sampling.
        classes: class ids that count as objects (default: all).
        intensity, window: the intensity mapping (:class:`IntensitySettings`); slices of a
            volume share one mapping computed over the whole volume.
        slice_axis: axis along which volumes are cut into 2D items (0 = z).
        connectivity: of the objects (2D components): 2 (8-connected, medico-sam's) or 1.
        transform: the model's input transform (``model.config.input_transform()``);
            by default SAM's pixel statistics with ``image_size`` and ``preprocessing``.
        cache_size: cases kept in memory (volumes are read once for all their slices).
        degradations: corruption names (:mod:`samforge.data.corruptions`); when given, each
            item also carries a degraded view of its image, made by one of them (drawn per
            item and epoch) at ``severity`` on the normalised 0–255 image, for RobustMedSAM's
            clean/degraded training. ``"clear"`` is one more choice that leaves the view
            clean (RobustMedSAM's pool: clear + the 12). Objects and masks are shared by
            both views.
        severity: 1–5 (3 = the paper's setting).
        object_sampling: how an item's objects are drawn (see the module docstring).

    Items are dicts:
        ``image`` (3, S, S) float32 model input (normalised as the Predictor does);
        ``masks`` (n, S, S) float32 in {0, 1}; ``original_masks`` (n, H, W) bool, the same
        objects at the original size (training scores predictions there);
        ``class_ids`` (n,) int64; ``input_size`` (2,) int64 (h, w) of the content;
        ``original_size`` (2,) int64 (H, W); ``name`` str (case, and slice for volumes);
        with ``degradations``: ``degraded_image`` (3, S, S) and ``degradation`` str.
    """

    def __init__(
        self,
        cases: Sequence[Case],
        n_obj: int = 5,
        image_size: int = 1024,
        preprocessing: str = "sam",
        min_size: int = 20,
        seed: int = 0,
        *,
        classes: Iterable[int] | None = None,
        intensity: str = "auto",
        window: str | tuple[float, float] | None = None,
        slice_axis: int = 0,
        connectivity: int = 2,
        transform: ModelInputTransform | None = None,
        cache_size: int = 2,
        degradations: Sequence[str] | None = None,
        severity: int = PAPER_SEVERITY,
        object_sampling: str = "without_replacement",
    ) -> None:
        if preprocessing not in PREPROCESSING_CONVENTIONS:
            raise ConfigError(f"preprocessing must be 'sam' or 'medsam'; got {preprocessing!r}.")
        if n_obj < 1 or image_size < 1:
            raise ConfigError(f"n_obj and image_size must be ≥ 1; got {n_obj}, {image_size}.")
        self.cases = cases
        self.transform = transform or ModelInputTransform(image_size, preprocessing)
        self.n_obj = n_obj
        self.min_size, self.seed, self.connectivity = min_size, seed, connectivity
        self.classes = None if classes is None else tuple(int(c) for c in classes)
        # A bad mode or window fails here, before any case is read.
        self.intensity_settings = IntensitySettings(intensity, window)
        self.slice_axis = slice_axis
        self.cache_size = cache_size
        if object_sampling not in OBJECT_SAMPLING:
            raise ConfigError(
                f"object_sampling must be one of {', '.join(OBJECT_SAMPLING)}; got "
                f"{object_sampling!r}."
            )
        self.object_sampling = object_sampling
        self.degradations = None if degradations is None else degradation_pool(degradations)
        if self.degradations is not None and self.degradations != (CLEAR,):
            get_corruption(self.degradations[-1]).level(severity)  # fail early on a bad severity
        self.severity = severity
        self.epoch = 0
        self._cache: OrderedDict[int, tuple[Case, IntensityMapping]] = OrderedDict()
        self.index = self._build_index()

    def __len__(self) -> int:
        return len(self.index)

    def set_epoch(self, epoch: int) -> None:
        """Draw different objects in each epoch (call from the training loop)."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        case_index, slice_index = self.index[index]
        case, mapping = self._case(case_index)
        image, label = self._plane(case, slice_index)
        masks, class_ids = self._sample_objects(self._instances(case, slice_index), index)
        normalised = self._normalised(image, mapping)
        image_t = self.transform.image(normalised)
        masks_t = self.transform.label_masks(torch.from_numpy(masks)[None])
        masks_t, class_ids, kept = _visible(masks_t, class_ids)
        size = self.transform.resized_shape(label.shape)
        if slice_index is not None:
            name = f"{case.name}_{'zyx'[self.slice_axis]}{slice_index:03d}"
        item = {
            "image": image_t[0].contiguous(),
            "masks": masks_t[0].float(),
            "original_masks": torch.from_numpy(masks[kept.numpy()]).bool(),
            "class_ids": torch.tensor(class_ids, dtype=torch.int64),
            "input_size": torch.tensor(size, dtype=torch.int64),
            "original_size": torch.tensor(label.shape, dtype=torch.int64),
            "name": case.name if slice_index is None else name,
        }
        if self.degradations is not None:
            kind, degraded = self._degraded(normalised, index, self.degradations)
            item["degraded_image"] = self.transform.image(degraded)[0].contiguous()
            item["degradation"] = kind
        return item

    def _degraded(
        self, normalised: torch.Tensor, index: int, kinds: tuple[str, ...]
    ) -> tuple[str, torch.Tensor]:
        """One of the corruptions ``kinds``, drawn per (seed, epoch, item), of a (1, C, H, W)
        0–255 image."""
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        kind = kinds[int(rng.integers(len(kinds)))]
        if kind == CLEAR:
            return kind, normalised.clone()
        image = normalised[0].permute(1, 2, 0).numpy()
        image = image[..., 0] if image.shape[-1] == 1 else image
        degraded = corrupt(image, kind, self.severity, seed=rng)
        values = torch.from_numpy(np.ascontiguousarray(degraded, dtype=np.float32))
        return kind, values[None, None] if values.ndim == 2 else values.permute(2, 0, 1)[None]

    def _sample_objects(
        self, instances: list[ObjectInstance], index: int
    ) -> tuple[np.ndarray, list[int]]:
        """(n, H, W) uint8 masks of the objects drawn by ``object_sampling``."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.object_sampling == "largest":
            # the first of equal areas, as RobustMedSAM's get_largest_mask keeps
            chosen = np.array([int(np.argmax([item.area for item in instances]))])
        elif self.object_sampling == "with_replacement":
            chosen = rng.choice(len(instances), size=self.n_obj, replace=True)
        else:
            chosen = rng.choice(len(instances), size=min(self.n_obj, len(instances)), replace=False)
        masks = np.stack([instances[i].mask for i in chosen]).view(np.uint8)
        return masks, [instances[i].class_id for i in chosen]

    def _instances(self, case: Case, slice_index: int | None) -> list[ObjectInstance]:
        """The objects of a 2D case or of one slice of a volume."""
        return plane_instances(
            self._label_plane(case, slice_index),
            self._objects_plane(case, slice_index),
            self.min_size,
            self.classes,
            self.connectivity,
        )

    def _normalised(self, image: np.ndarray, mapping: IntensityMapping) -> torch.Tensor:
        """(1, C, H, W) float image in [0, 255]; C = 1 for grey images (expanded later)."""
        values = torch.from_numpy(mapping.apply(validate_image(image)))
        return values[None, None] if values.ndim == 2 else values.permute(2, 0, 1)[None]

    def _build_index(self) -> list[tuple[int, int | None]]:
        index: list[tuple[int, int | None]] = []
        names, unlabelled = [], 0
        for case_index in range(len(self.cases)):
            case = self.cases[case_index]
            names.append(case.name)
            if case.label is None:
                unlabelled += 1
                continue
            planes = range(case.label.shape[self.slice_axis]) if case.is_volume else [None]
            for slice_index in planes:
                if self._has_objects(case, slice_index):
                    index.append((case_index, slice_index))
        if not index:
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise DataError(
                f"no image among {len(names)} cases ({shown}; {unlabelled} without labels) has "
                f"an object of ≥ {self.min_size} pixels, so there is nothing to train on. Lower "
                "min_size, check the class ids, or check that the labels are not empty."
            )
        return index

    def _plane(self, case: Case, slice_index: int | None) -> tuple[np.ndarray, np.ndarray]:
        """(image, label) of a 2D case, or of one slice of a volume."""
        image = case.image if slice_index is None else case.image[self._where(slice_index)]
        return image, self._label_plane(case, slice_index)

    def _label_plane(self, case: Case, slice_index: int | None) -> np.ndarray:
        """The label of a 2D case, or of one slice of a volume (only labelled cases are
        indexed)."""
        if case.label is None:
            raise DataError(f"case {case.name!r} has no label map to draw objects from.")
        return case.label if slice_index is None else case.label[self._where(slice_index)]

    def _has_objects(self, case: Case, slice_index: int | None) -> bool:
        """Whether a plane holds an object (without building the masks of components)."""
        if case.objects is not None:
            return bool(self._instances(case, slice_index))
        label = self._label_plane(case, slice_index)
        counts = count_objects(label, self.min_size, self.classes, self.connectivity)
        return bool(label.any() and any(counts.values()))

    def _objects_plane(self, case: Case, slice_index: int | None) -> list[MaskObject] | None:
        """The published masks of a 2D case or of one slice of a volume (None: none)."""
        if case.objects is None or slice_index is None:
            return None if case.objects is None else list(case.objects)
        where = self._where(slice_index)
        return [MaskObject(o.mask[where], o.class_id, o.name) for o in case.objects]

    def _where(self, slice_index: int) -> tuple[slice | int, ...]:
        return (slice(None),) * self.slice_axis + (slice_index,)

    def _case(self, case_index: int) -> tuple[Case, IntensityMapping]:
        """A case and its intensity mapping (a volume's one mapping for all its slices)."""
        if case_index in self._cache:
            self._cache.move_to_end(case_index)
            return self._cache[case_index]
        case = self.cases[case_index]
        mapping = self.intensity_settings.case_mapping(case)
        self._cache[case_index] = (case, mapping)
        while len(self._cache) > max(self.cache_size, 1):
            self._cache.popitem(last=False)
        return case, mapping


def _visible(
    masks: torch.Tensor, class_ids: list[int]
) -> tuple[torch.Tensor, list[int], torch.Tensor]:
    """Drop objects that vanish when resized into the model frame (a thin or small object
    of a large image): an empty target gives an empty prompt. (1, n, S, S) masks; also
    returns the (n,) bool of the objects kept."""
    present = masks[0].flatten(1).any(dim=1).bool()
    if present.all() or not present.any():
        return masks, class_ids, torch.ones(len(present), dtype=torch.bool)
    kept = [c for c, keep in zip(class_ids, present.tolist(), strict=True) if keep]
    return masks[:, present], kept, present


def collate_objects(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch items, keeping the smallest object count of the batch for every image (as the
    MedicoSAM reference does), so masks stack into (B, n, S, S); ``original_masks`` stay a
    list of (n, H, W), one per image."""
    count = min(len(s["masks"]) for s in samples)
    batch = {
        "image": torch.stack([s["image"] for s in samples]),
        "masks": torch.stack([s["masks"][:count] for s in samples]),
        # one tensor per image: original sizes differ within a batch
        "original_masks": [s["original_masks"][:count] for s in samples],
        "class_ids": torch.stack([s["class_ids"][:count] for s in samples]),
        "input_size": torch.stack([s["input_size"] for s in samples]),
        "original_size": torch.stack([s["original_size"] for s in samples]),
        "name": [s["name"] for s in samples],
    }
    if "degraded_image" in samples[0]:
        batch["degraded_image"] = torch.stack([s["degraded_image"] for s in samples])
        batch["degradation"] = [s["degradation"] for s in samples]
    return batch


def degradation_pool(names: Sequence[str]) -> tuple[str, ...]:
    """The views a degraded item is drawn from: ``"clear"`` (if named) and the corruptions
    the other names resolve to (:func:`resolve_corruption_names`)."""
    tokens = [t.strip() for name in names for t in str(name).split(",") if t.strip()]
    rest = [t for t in tokens if t.lower() != CLEAR]
    clear = (CLEAR,) if len(rest) < len(tokens) else ()
    return clear + (resolve_corruption_names(rest) if rest or not clear else ())
