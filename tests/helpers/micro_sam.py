"""micro-sam 1.8.14 (``pip install --no-deps micro_sam==1.8.14``, see the Makefile) as a
reference for the interactive 2D protocol, without its compiled dependencies.

``micro_sam.evaluation.inference`` imports elf, bioimage_cpp, zarr, pooch, kornia, natsort,
torchvision and torch_em at module level. Of these, ``run_inference_with_iterative_prompting``
executes only three functions; they get equivalents from the libraries samforge trusts:

- ``bioimage_cpp.segmentation.relabel_sequential``: ``skimage.segmentation.relabel_sequential``
  (same signature and result);
- ``bioimage_cpp.distance.distance_transform`` (the Euclidean distance to the nearest zero,
  for the object centres): ``scipy.ndimage.distance_transform_edt``;
- ``torchvision.ops.boxes``: samforge.testing's stand-in (MONAI's NMS);
- ``elf.parallel``'s ``label``, ``unique``, ``isin`` and ``relabel_consecutive`` (blockwise
  versions, for large volumes, of connected components of equal labels, face-connected;
  ``np.unique``; ``np.isin``; sequential relabelling), which ``mask_data_to_segmentation``
  runs on every saved prediction: ``skimage.measure.label``, numpy, ``relabel_sequential``;
- its TIFF writes ask for LZW (``compression=5``), which tifffile takes from the
  ``imagecodecs`` package; they are written with zlib (deflate, in tifffile itself).

Everything else is a placeholder that raises if called, so that a code path this module
does not cover fails loudly instead of computing something else.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import imageio.v3 as imageio
import numpy as np
from scipy import ndimage
from skimage import measure
from skimage.segmentation import relabel_sequential

from samforge.testing.references import install_torchvision_stand_in


class _NotUsed:
    """A placeholder for a name the protocol does not execute."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{self.name} is a stand-in: the benchmark does not use it")

    def __getattr__(self, attribute: str) -> _NotUsed:
        return _NotUsed(f"{self.name}.{attribute}")


def _label(data, out=None, block_shape=None, with_background=True, connectivity=1):
    labels = measure.label(data, background=0, connectivity=connectivity)
    if out is None:
        return labels
    out[...] = labels
    return out


def _unique(data, return_counts=False, block_shape=None):
    return np.unique(data, return_counts=return_counts)


def _isin(data, values, out=None, block_shape=None):
    inside = np.isin(data, values)
    if out is None:
        return inside
    out[...] = inside
    return out


def _relabel_consecutive(data, start_label=1, keep_zeros=True, out=None, block_shape=None):
    relabelled, forward, _ = relabel_sequential(data, offset=start_label)
    out = data if out is None else out
    out[...] = relabelled
    return out, int(relabelled.max()), forward


def _imwrite(path, image, compression=None, **options):
    if compression == 5:  # LZW, which needs imagecodecs
        compression = "zlib"
    return imageio.imwrite(path, image, compression=compression, **options)


def _distance_transform(mask: np.ndarray) -> np.ndarray:
    return ndimage.distance_transform_edt(mask).astype(np.float32)


_STAND_INS: dict[str, dict[str, Any]] = {
    "bioimage_cpp": {},
    "bioimage_cpp.utils": {},
    "bioimage_cpp.distance": {"distance_transform": _distance_transform},
    "bioimage_cpp.segmentation": {"relabel_sequential": relabel_sequential},
    "bioimage_cpp.filters": {},
    "elf": {},
    "elf.parallel": {
        "label": _label,
        "unique": _unique,
        "isin": _isin,
        "relabel_consecutive": _relabel_consecutive,
    },
    "elf.parallel.filters": {},
    "elf.io": {},
    "elf.wrapper": {},
    "elf.wrapper.base": {},
    "elf.wrapper.generic": {},
    "elf.evaluation": {},
    "pooch": {},
    "zarr": {},
    "kornia": {},
    "kornia.morphology": {},
    "natsort": {},
    # torch_em's package imports elf at start; micro-sam's AMG-with-decoder needs its UNETR.
    "torch_em": {},
    "torch_em.model": {},
    "torch_em.util": {},
    "torch_em.util.segmentation": {},
}


class _StandInModule(types.ModuleType):
    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _NotUsed(f"{self.__name__}.{attribute}")


def import_micro_sam_inference() -> types.ModuleType:
    """``micro_sam.evaluation.inference``, imported with stand-ins for the modules that are
    absent or fail to import; the stand-ins leave ``sys.modules`` afterwards (micro-sam
    keeps the names it bound), so other code in the process sees the real packages."""
    install_torchvision_stand_in()
    if "micro_sam.evaluation.inference" in sys.modules:
        return sys.modules["micro_sam.evaluation.inference"]
    installed = []
    for name, attributes in _STAND_INS.items():
        if not name.startswith("torch_em") and _importable(name):
            continue
        module = _StandInModule(name)
        module.__dict__.update(attributes)
        saved = sys.modules.get(name)
        installed.append((name, saved))
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
    try:
        import micro_sam.evaluation.inference as inference

        inference.imageio = types.SimpleNamespace(imread=imageio.imread, imwrite=_imwrite)
    finally:
        for name, saved in installed:
            if saved is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = saved
    return inference


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True
