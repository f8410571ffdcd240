"""Real images that ship inside pip packages, so demos and tests need no download.

The MNI152 template (ICBM 2009c nonlinear symmetric, 1 mm) comes with nilearn, together
with its grey- and white-matter probability maps: a real T1-weighted MRI volume with tissue
labels. samforge reads the files straight from nilearn's package folder (importing nilearn
itself is slow and not needed).
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import DataError
from .readers.case import read_case
from .record import Case

MNI152_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
MNI152_LABELS = {1: "grey matter", 2: "white matter"}


def mni152_folder() -> Path:
    """nilearn's folder of packaged data files."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the MNI152 template ships with nilearn, which is not installed: "
            "pip install nilearn (or reinstall samforge, which depends on it)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def mni152_case(step: int = 2) -> Case:
    """The MNI152 T1 template with grey matter (1) and white matter (2) labels.

    A voxel is labelled with the tissue of higher probability where that probability is at
    least 0.5. ``step`` keeps every step-th voxel along each axis (2: 2 mm voxels,
    about 95×117×99), which is enough for a demo and 8× less to embed.

    Returns:
        A 3D :class:`Case`: image (D, H, W) uint8 = (z, y, x), axial slices first.
    """
    if step < 1:
        raise DataError(f"step must be ≥ 1 (1 keeps every voxel); got {step}.")
    folder = mni152_folder()
    t1, grey, white = (read_case(folder / MNI152_FILES[key], modality="mr") for key in MNI152_FILES)
    # The maps store probabilities as 0–255.
    label = np.zeros(t1.image.shape, np.uint8)
    label[(grey.image >= 128) & (grey.image >= white.image)] = 1
    label[(white.image >= 128) & (white.image > grey.image)] = 2
    keep = (slice(None, None, step),) * 3
    affine = None
    if t1.affine is not None:
        affine = t1.affine.copy()
        affine[:3, :3] *= step
    meta = {"source": "nilearn MNI152 2009c template", "label_names": MNI152_LABELS}
    spacing = tuple(float(s) * step for s in t1.spacing)
    image = np.ascontiguousarray(t1.image[keep]).astype(np.uint8)
    return Case(image, label[keep].copy(), spacing, affine, "mr", "mni152", "mni152", meta)


def mni152_structures(step: int = 2) -> tuple[Case, Case]:
    """What a clinician boxes in a brain MRI, derived from the MNI152 tissue maps: the
    whole brain (label 1) and the left (1) and right (2) lateral ventricles, as two cases.

    nilearn ships no ventricle or brain mask, so both come from the grey- and white-matter
    maps: the brain is the tissue mask closed and with its holes filled; the ventricles
    are the dark (below the 5th percentile of tissue T1) non-tissue pockets inside it,
    keeping the largest component on each side of the midline within the middle half of
    the brain (the basal cisterns and the third ventricle lie on the midline).
    """
    case = mni152_case(step)
    folder = mni152_folder()
    keep = (slice(None, None, step),) * 3
    grey, white = (
        read_case(folder / MNI152_FILES[key], modality="mr").image[keep].astype(np.float32)
        for key in ("gm", "wm")
    )
    tissue = grey + white >= 128
    closing = max(1, 3 // step)
    brain = ndimage.binary_fill_holes(ndimage.binary_closing(tissue, iterations=closing))
    dark = case.image < np.percentile(case.image[tissue], 5)
    pockets, count = ndimage.label(brain & ~tissue & dark)
    ventricles = np.zeros(brain.shape, np.uint8)
    centres = ndimage.center_of_mass(brain)
    extent = np.ptp(np.argwhere(brain), axis=0)
    sizes = ndimage.sum_labels(pockets > 0, pockets, range(1, count + 1))
    for label, sign in ((1, -1), (2, +1)):
        best, best_size = 0, 0.0
        for index, size in enumerate(sizes, start=1):
            centre = ndimage.center_of_mass(pockets == index)
            offset = np.subtract(centre, centres)
            central = bool(np.all(np.abs(offset[:2]) < extent[:2] / 4))
            lateral = sign * offset[2] > 2 / step
            if central and lateral and size > best_size:
                best, best_size = index, float(size)
        if best:
            ventricles[pockets == best] = label
    meta = {**case.meta, "label_names": {1: "whole brain"}}
    brain_case = replace(case, label=brain.astype(np.uint8), name="mni152_brain", meta=meta)
    names = {1: "lateral ventricle (array left)", 2: "lateral ventricle (array right)"}
    ventricle_case = replace(
        case, label=ventricles, name="mni152_ventricles", meta={**case.meta, "label_names": names}
    )
    return brain_case, ventricle_case
