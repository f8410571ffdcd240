"""One in-memory record for every 2D image and 3D volume, and a lazy list of them.

A :class:`Case` is what every reader returns and everything downstream (objects, slicing,
splits, the training Dataset, the CLI) consumes. Axis conventions:

- 2D: ``image`` is (H, W) or (H, W, C) with rows (y) first; ``spacing`` is (dy, dx).
- 3D: ``image`` is (D, H, W) = (z, y, x), the slice axis first, so ``image[12]`` is slice 12;
  ``spacing`` is (dz, dy, dx). For NIfTI this is the file's (i, j, k) array reversed; see
  :mod:`samforge.data.readers` for the exact mapping.

Whether a case is a volume is decided by the length of ``spacing`` (3 for volumes), not by the
array's rank: a (H, W, 3) RGB image and a (D, H, W) volume with W = 3 have the same rank.

Objects: by default the objects of a case are the connected components of each class of its
label map (:mod:`samforge.data.objects`). Datasets that ship one binary mask per object
(SA-Med2D-20M, and SAM-Med2D and SAM-UNet, which train and score per mask) fill
``Case.objects`` instead: each :class:`MaskObject` is one object as published, however many
components it has and whatever other masks it overlaps. The label map of such a case is for
display only (a later mask wins an overlap); training and evaluation use ``objects``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, overload

import numpy as np

from ..errors import InputImageError

MODALITIES: tuple[str, ...] = ("ct", "mr", "us", "xray", "other")

_MODALITY_ALIASES = {
    "ct": "ct",
    "mr": "mr",
    "mri": "mr",
    "us": "us",
    "ultrasound": "us",
    "xray": "xray",
    "x-ray": "xray",
    "x_ray": "xray",
    "cxr": "xray",
    "dx": "xray",
    "cr": "xray",
    "other": "other",
}


def normalize_modality(modality: str | None) -> str:
    """Canonical modality name (one of :data:`MODALITIES`); ``None`` becomes ``"other"``.

    Raises:
        InputImageError: an unknown name (the message lists the accepted ones).
    """
    if modality is None:
        return "other"
    key = str(modality).strip().lower()
    if key not in _MODALITY_ALIASES:
        raise InputImageError(
            f"unknown modality {modality!r}; use one of {', '.join(MODALITIES)} "
            "(aliases: mri, ultrasound, x-ray)."
        )
    return _MODALITY_ALIASES[key]


@dataclass(frozen=True, repr=False)
class MaskObject:
    """One object given as its own binary mask.

    Attributes:
        mask: bool array of the case's spatial shape, (H, W) or (D, H, W).
        class_id: the class it belongs to (SA-Med2D-20M: the structure in its file name,
            numbered over the dataset; ``meta["label_names"]`` names the numbers).
        name: where it came from (the mask file's stem).
    """

    mask: np.ndarray
    class_id: int
    name: str = ""

    def __repr__(self) -> str:
        return f"MaskObject({self.name!r}, class {self.class_id}, {int(self.mask.sum())} px)"


@dataclass(repr=False)
class Case:
    """A 2D image or 3D volume with its label map and geometry.

    Attributes:
        image: (H, W), (H, W, C) for 2D; (D, H, W) for 3D (D = slice axis, z first).
        label: integer label map of the spatial shape (H, W) or (D, H, W); 0 = background.
        spacing: physical size per spatial axis in image-axis order: (dy, dx) or (dz, dy, dx).
        affine: 4×4 voxel→world (RAS mm) matrix of the ORIGINAL FILE array (NIfTI (i, j, k),
            DICOM (column, row, slice)); ``None`` for plain 2D images.
        modality: ``"ct"``, ``"mr"``, ``"us"``, ``"xray"`` or ``"other"``.
        name: case id.
        subject: subject id; splits never separate one subject's cases. Defaults to ``name``.
        meta: anything else (``source`` path, ``label_names``, NIfTI header, ...).
        objects: the objects as published, one binary mask each (see the module docstring);
            ``None`` when the objects are the connected components of ``label``.
    """

    image: np.ndarray
    label: np.ndarray | None
    spacing: tuple[float, ...]
    affine: np.ndarray | None
    modality: str
    name: str
    subject: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    objects: tuple[MaskObject, ...] | None = None

    def __post_init__(self) -> None:
        self.spacing = tuple(float(s) for s in self.spacing)
        self.modality = normalize_modality(self.modality)
        self.subject = self.subject or self.name
        if len(self.spacing) not in (2, 3) or not all(s > 0 for s in self.spacing):
            raise InputImageError(
                f"case {self.name!r}: spacing {self.spacing} must hold 2 (dy, dx) or 3 "
                "(dz, dy, dx) positive numbers."
            )
        self._check_image()
        self._check_label()
        self._check_objects()
        if self.affine is not None and np.shape(self.affine) != (4, 4):
            raise InputImageError(f"case {self.name!r}: affine must be 4×4 or None.")

    def _check_image(self) -> None:
        ndim = self.image.ndim
        if self.is_volume and ndim != 3:
            raise InputImageError(
                f"case {self.name!r}: a volume must be (D, H, W); got shape {self.image.shape}."
            )
        if not self.is_volume and ndim not in (2, 3):
            raise InputImageError(
                f"case {self.name!r}: a 2D image must be (H, W) or (H, W, C); "
                f"got shape {self.image.shape}."
            )

    def _check_label(self) -> None:
        if self.label is None:
            return
        if self.label.shape != self.spatial_shape:
            raise InputImageError(
                f"case {self.name!r}: label shape {self.label.shape} does not match the image's "
                f"spatial shape {self.spatial_shape}."
            )
        if not np.issubdtype(self.label.dtype, np.integer):
            raise InputImageError(
                f"case {self.name!r}: label must be an integer label map; got {self.label.dtype}."
            )

    def _check_objects(self) -> None:
        if self.objects is None:
            return
        self.objects = tuple(self.objects)
        for item in self.objects:
            if item.mask.shape != self.spatial_shape or item.mask.dtype != bool:
                raise InputImageError(
                    f"case {self.name!r}: object {item.name!r} must be a bool mask of the "
                    f"image's spatial shape {self.spatial_shape}; got {item.mask.dtype} "
                    f"{item.mask.shape}."
                )

    @property
    def is_volume(self) -> bool:
        """True for (D, H, W) volumes (three spacings), False for 2D images."""
        return len(self.spacing) == 3

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """(H, W) or (D, H, W): the image shape without a channel axis."""
        return tuple(self.image.shape[: len(self.spacing)])

    def __repr__(self) -> str:
        label = "none" if self.label is None else f"{self.label.dtype}"
        return (
            f"Case(name={self.name!r}, subject={self.subject!r}, modality={self.modality!r}, "
            f"image={self.image.shape} {self.image.dtype}, label={label}, "
            f"spacing={tuple(round(s, 4) for s in self.spacing)})"
        )


@dataclass(frozen=True)
class CaseRef:
    """Where a case comes from, without loading it: its ids and a loader.

    ``load`` must be picklable (a module-level function or a ``functools.partial`` of one) so
    that lists of refs travel to DataLoader worker processes.
    """

    name: str
    subject: str
    load: Callable[[], Case]
    source: str = ""


class CaseList(Sequence[Case]):
    """A lazy sequence of cases: indexing loads one case from disk, nothing is cached.

    ``names`` and ``subjects`` come from file names alone, so splitting by subject or
    selecting a subset never reads an image.
    """

    def __init__(self, refs: Sequence[CaseRef], description: str = "") -> None:
        self.refs: tuple[CaseRef, ...] = tuple(refs)
        self.description = description

    def __len__(self) -> int:
        return len(self.refs)

    @overload
    def __getitem__(self, index: int) -> Case: ...

    @overload
    def __getitem__(self, index: slice) -> CaseList: ...

    def __getitem__(self, index: int | slice) -> Case | CaseList:
        if isinstance(index, slice):
            return CaseList(self.refs[index], self.description)
        return self.refs[index].load()

    def __iter__(self) -> Iterator[Case]:
        for ref in self.refs:
            yield ref.load()

    @property
    def names(self) -> list[str]:
        return [ref.name for ref in self.refs]

    @property
    def subjects(self) -> list[str]:
        return [ref.subject for ref in self.refs]

    def select(self, indices: Sequence[int]) -> CaseList:
        """The cases at ``indices`` (in that order), still lazy."""
        return CaseList([self.refs[i] for i in indices], self.description)

    @classmethod
    def from_cases(cls, cases: Sequence[Case], description: str = "") -> CaseList:
        """Wrap cases already in memory (for tests and small data)."""
        refs = [CaseRef(c.name, c.subject, partial(_identity, c)) for c in cases]
        return cls(refs, description)

    def __repr__(self) -> str:
        what = f" from {self.description}" if self.description else ""
        return f"CaseList({len(self)} cases{what})"


def _identity(case: Case) -> Case:
    return case
