"""Synthetic CT-, MR-, ultrasound- and X-ray-like images and volumes with organ-like labels.

Phantoms serve tests, the demo and pretraining the small built-in model: they look enough
like the real thing (intensities, texture, noise, artefacts) for segmentation to be a real
task, and they are exactly reproducible from a seed. Every phantom has several labelled
structures of different size and shape: large and small, touching and separate, blobs with
smooth random deformations, and a tube that bends.

===========  =========================================================  ===================
modality     anatomy and labels                                         image
===========  =========================================================  ===================
``ct``       abdomen, axial: liver, spleen, kidney_right, kidney_left,  int16 HU (air −1000,
             aorta, pancreas, vertebra, liver_lesion                    fat −100, soft
                                                                        tissue 40–190, bone
                                                                        250–900), noise
                                                                        σ 10–20 HU
``mr``       the same abdomen, T1-weighted                              uint16, coil bias
                                                                        field, Rician noise
``us``       fetal head in the amniotic sac (HC18-like): fetal_head,    uint8 B-mode in a
             amniotic_fluid, placenta, cyst                             sector: speckle,
                                                                        bright skull rim,
                                                                        acoustic shadows
``xray``     chest PA radiograph: lung_right, lung_left, heart,         uint16 (12-bit),
             clavicle, nodule (2D only)                                 projection of line
                                                                        integrals, smooth
===========  =========================================================  ===================

Geometry: arrays are (H, W) or (D, H, W); axis 0 of a volume runs towards the head, rows
towards the back (or the depth of the ultrasound beam), columns towards the patient's left,
so images display in radiological convention. ``info["spacing"]`` is in array-axis order,
in mm; ``info["affine"]`` maps (column, row, slice) indices to RAS mm, the NIfTI convention
for ``image.transpose(2, 1, 0)`` (orientation L, P, S as a DICOM-derived volume).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...errors import ConfigError, InputImageError
from ..record import Case, normalize_modality
from . import _abdomen, _ultrasound, _xray
from ._geometry import Grid

__all__ = ["MIN_SIZE", "MODALITIES", "as_case", "make_phantom", "phantom_case", "phantom_cases"]

MODALITIES: tuple[str, ...] = ("ct", "mr", "us", "xray")
MIN_SIZE = 32  # pixels along each in-plane axis; below that the organs are a few pixels


Phantom = tuple[np.ndarray, np.ndarray, dict[str, Any]]


def _modality(modality: str) -> str:
    try:
        kind = normalize_modality(modality)
    except InputImageError:
        kind = None
    if kind not in MODALITIES:
        raise ConfigError(
            f"unknown phantom modality {modality!r}; choose one of: ct, mr, us, xray."
        )
    return kind


def _shape3(shape: tuple[int, ...], modality: str) -> tuple[tuple[int, int, int], bool]:
    dims = tuple(shape)
    if len(dims) not in (2, 3) or not all(isinstance(n, int | np.integer) for n in dims):
        raise ConfigError(f"phantom shape must be (H, W) or (D, H, W) integers; got {shape!r}.")
    if len(dims) == 3 and modality == "xray":
        raise ConfigError(
            "X-ray phantoms are 2D projections; give shape=(H, W), or choose ct, mr or us for "
            "a volume."
        )
    if min(dims[-2:]) < MIN_SIZE or (len(dims) == 3 and dims[0] < 1):
        raise ConfigError(
            f"phantoms need at least {MIN_SIZE} pixels along each in-plane axis and one slice; "
            f"got {shape!r}."
        )
    if len(dims) == 2:
        return (1, int(dims[0]), int(dims[1])), False
    return (int(dims[0]), int(dims[1]), int(dims[2])), True


def _affine(grid: Grid) -> np.ndarray:
    """NIfTI affine of ``volume.transpose(2, 1, 0)``: indices (x, y, z) -> RAS mm."""
    dz, dy, dx = grid.spacing
    # LPS coordinates of voxel (0, 0, 0); RAS flips the first two axes.
    return np.array(
        [
            [-dx, 0.0, 0.0, -grid.x[0]],
            [0.0, -dy, 0.0, -grid.y[0]],
            [0.0, 0.0, dz, grid.z[0]],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def make_phantom(modality: str, *, shape: tuple[int, ...] = (256, 256), seed: int = 0) -> Phantom:
    """A synthetic image or volume with its label map.

    Args:
        modality: ``"ct"``, ``"mr"``, ``"us"`` or ``"xray"`` (aliases: mri, ultrasound, x-ray).
        shape: (H, W) for an image, (D, H, W) for a volume (not for X-ray); at least
            :data:`MIN_SIZE` pixels in-plane.
        seed: Everything is drawn from ``np.random.default_rng(seed)``: the same seed gives
            the same phantom, different seeds different anatomy.

    Returns:
        ``(image, label, info)``: image of ``shape`` (dtype per modality, see the module
        table), label of ``shape`` (uint8, 0 background, classes 1..K), and info with
        ``modality``, ``labels`` ({class: name}), ``spacing`` (mm, array-axis order),
        ``affine`` (4×4, NIfTI convention), ``units``, ``display_range`` ((low, high) for
        an 8-bit view), ``noise`` (type and strength) and ``seed``.

    Raises:
        ConfigError: unknown modality, a bad or too small shape, a 3D X-ray.
    """
    kind = _modality(modality)
    shape3, is_volume = _shape3(shape, kind)
    rng = np.random.default_rng(seed)
    image: NDArray[np.integer]  # int16 (CT), uint16 (MR, X-ray) or uint8 (US)
    if kind in ("ct", "mr"):
        spacing = _abdomen.spacing_for(shape3, is_volume)
        grid = Grid.centred(shape3, spacing)
        tissue, label = _abdomen.build(rng, grid)
        if kind == "ct":
            image, sigma = _abdomen.render_ct(rng, grid, tissue)
            noise = {"type": "correlated gaussian", "sigma": sigma}
            units, display = "HU", (-160.0, 240.0)  # soft-tissue window (W 400, L 40)
        else:
            image, sigma = _abdomen.render_mr(rng, grid, tissue)
            noise = {"type": "rician", "sigma": sigma}
            units = "a.u. (T1-weighted magnitude)"
            display = (0.0, float(np.percentile(image, 99.5)))
        names = _abdomen.LABELS
    elif kind == "us":
        spacing = _ultrasound.spacing_for(shape3, is_volume)
        grid = Grid.centred(shape3, spacing)
        image, label, noise = _ultrasound.build(rng, grid)
        units, display, names = "B-mode grey level", (0.0, 255.0), _ultrasound.LABELS
    else:
        spacing = _xray.spacing_for(shape3)
        grid = Grid.centred(shape3, spacing)
        image, label, noise = _xray.build(rng, grid)
        units, display, names = "log attenuation (12-bit)", (0.0, 4095.0), _xray.LABELS

    if not is_volume:
        image, label = image[0], label[0]
    info: dict[str, Any] = {
        "modality": kind,
        "labels": dict(names),
        "spacing": tuple(float(s) for s in (spacing if is_volume else spacing[1:])),
        "affine": _affine(grid),
        "units": units,
        "display_range": display,
        "noise": noise,
        "seed": seed,
    }
    return image, label, info


def phantom_cases(
    modality: str, n: int, shape: tuple[int, ...] = (256, 256), seed: int = 0
) -> Iterator[Phantom]:
    """``n`` phantoms with independent seeds spawned from ``seed`` (see ``info["seed"]``)."""
    if n < 0:
        raise ConfigError(f"the number of phantoms must be ≥ 0; got {n}.")
    _shape3(shape, _modality(modality))  # fail here, not lazily at the first case
    seeds = [int(child.generate_state(1)[0]) for child in np.random.SeedSequence(seed).spawn(n)]
    return (make_phantom(modality, shape=shape, seed=s) for s in seeds)


def phantom_case(
    modality: str, shape: tuple[int, ...] = (256, 256), seed: int = 0, name: str | None = None
) -> Case:
    """A phantom as a :class:`Case`, ready for datasets and evaluation (see make_phantom)."""
    return as_case(make_phantom(modality, shape=shape, seed=seed), name)


def as_case(phantom: Phantom, name: str | None = None) -> Case:
    """A phantom ``(image, label, info)`` as a :class:`Case` named ``name`` (default: by its
    modality and seed)."""
    image, label, info = phantom
    case_name = name or f"phantom_{info['modality']}_{info['seed']}"
    meta = {"source": "samforge phantom", "label_names": info["labels"], "seed": info["seed"]}
    spacing = tuple(info["spacing"])
    return Case(image, label, spacing, info["affine"], info["modality"], case_name, case_name, meta)
