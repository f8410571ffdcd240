"""Degraded copies of image files: RobustMedSAM's corruptions applied to a folder.

:func:`write_corrupted_copies` reads every PNG/TIFF/JPEG image below a folder (or one file),
writes one degraded copy per corruption type under ``OUT/<type>/`` (same relative path;
PNG, TIFF inputs stay TIFF so float images keep their values) and ``OUT/corruptions.json``
with the parameters drawn for each copy.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import track

from ..errors import DataError, InputImageError
from ..files import suffix_of, write_text_atomically
from .corruptions import CORRUPTIONS, PAPER_SEVERITY, corrupt_with_params, resolve_corruption_names
from .readers.image2d import read_pil, read_tiff
from .writers import write_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MANIFEST = "corruptions.json"


@dataclass(frozen=True)
class CorruptedCopies:
    """What :func:`write_corrupted_copies` wrote: the sources, the types and the manifest."""

    sources: list[Path]
    kinds: tuple[str, ...]
    outputs: int
    manifest: Path


def write_corrupted_copies(
    path: str | Path,
    out: str | Path,
    names: str | list[str] | None = None,
    severity: int = PAPER_SEVERITY,
    seed: int = 0,
    *,
    show_progress: bool = False,
) -> CorruptedCopies:
    """Corrupt every image of ``path`` with every type in ``names`` (default: all 12).

    Each (image, type) gets its own random stream (:func:`corruption_seed`): adding files
    never changes the others' copies. Files under ``out`` are skipped, so a second run into
    an output folder inside the input does not corrupt the first run's outputs.

    Raises:
        ConfigError: unknown types or a severity outside 1–5 (before anything is written).
        DataError / InputImageError: no images, or an image that cannot be read or is not
            on 0–255.
    """
    kinds = resolve_corruption_names(names)
    CORRUPTIONS[kinds[0]].level(severity)  # reject a bad severity before any work
    out = Path(out)
    root, files = find_images(Path(path), exclude=out)
    records: list[dict[str, Any]] = []
    jobs = [(file, kind) for file in files for kind in kinds]
    for file, kind in track(jobs, description="corrupting", disable=not show_progress):
        relative = file.relative_to(root) if root != file else Path(file.name)
        degraded, params = corrupt_with_params(
            read_image(file), kind, severity, corruption_seed(seed, relative, kind)
        )
        target = out / kind / relative.with_suffix(_output_suffix(file))
        write_image(target, degraded)
        records.append({"source": str(file), "output": str(target), **_jsonable(params)})
    manifest = {"severity": severity, "seed": seed, "types": list(kinds), "images": records}
    written = write_text_atomically(out / MANIFEST, json.dumps(manifest, indent=1))
    return CorruptedCopies(files, kinds, len(records), written)


def find_images(path: Path, exclude: Path | None = None) -> tuple[Path, list[Path]]:
    """(root, sorted image files): one file, or every image below a folder (hidden files
    and files under ``exclude`` left out)."""
    if path.is_file():
        if suffix_of(path) not in IMAGE_SUFFIXES:
            raise DataError(
                f"{path} is not a PNG/TIFF/JPEG image; corrupt takes images ("
                f"{', '.join(IMAGE_SUFFIXES)}) or a folder of them."
            )
        return path, [path]
    if not path.is_dir():
        raise DataError(f"{path} does not exist; give an image or a folder of images.")
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and suffix_of(p) in IMAGE_SUFFIXES
        and not p.name.startswith(".")
        and not (exclude is not None and p.resolve().is_relative_to(exclude.resolve()))
    )
    if not files:
        raise DataError(
            f"no PNG/TIFF/JPEG images in {path}; corrupt takes images or a folder of them."
        )
    return path, files


def read_image(path: str | Path) -> np.ndarray:
    """An image file as the corruptions take it: (H, W) or (H, W, 3), uint8 or float on
    0–255 (grey + alpha becomes grey, RGBA becomes RGB, 16-bit files with 8-bit values
    become uint8).

    Raises:
        DataError: the file cannot be read.
        InputImageError: not a 2D grey/RGB image, or values outside 0–255.
    """
    path = Path(path)
    array = read_tiff(path)[0] if suffix_of(path) in (".tif", ".tiff") else read_pil(path)
    if array.ndim == 3 and array.shape[2] in (1, 2):  # grey, or grey + alpha
        array = array[..., 0]
    elif array.ndim == 3 and array.shape[2] == 4:  # drop alpha
        array = array[..., :3]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise InputImageError(
            f"{path} has shape {array.shape}; corruptions take 2D grey or RGB images."
        )
    if array.dtype == np.uint8:
        return array
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise InputImageError(f"{path} has dtype {array.dtype}; corruptions take 8-bit images.")
    finite = bool(np.isfinite(array).all())
    low, high = (float(array.min()), float(array.max())) if finite else (np.nan, np.nan)
    if finite and 0.0 <= low and high <= 255.0:
        return array.astype(np.uint8) if np.issubdtype(array.dtype, np.integer) else array
    raise InputImageError(
        f"{path} holds {array.dtype} values in [{low:g}, {high:g}]; corruptions work on "
        "8-bit intensities (0–255). Convert it to 8 bits (e.g. with a window or a "
        "percentile normalisation) first."
    )


def corruption_seed(seed: int, relative: Path, kind: str) -> np.random.Generator:
    """A stable stream per (base seed, image path relative to the input, type)."""
    file_key = zlib.crc32(relative.as_posix().encode("utf-8"))
    return np.random.default_rng(
        np.random.SeedSequence([seed, file_key, list(CORRUPTIONS).index(kind)])
    )


def _output_suffix(source: Path) -> str:
    # JPEG sources are written losslessly, or the noise would be re-compressed.
    return ".tif" if suffix_of(source) in (".tif", ".tiff") else ".png"


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()}
