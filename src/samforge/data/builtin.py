"""Real images that ship inside pip packages, so demos and tests need no download.

The MNI152 template (ICBM 2009c nonlinear symmetric, 1 mm) comes with nilearn, together
with its grey- and white-matter probability maps: a real T1-weighted MRI volume with tissue
labels. samforge reads the files straight from nilearn's package folder (importing nilearn
itself is slow and not needed).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

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
