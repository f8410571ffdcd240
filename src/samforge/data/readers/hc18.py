"""HC18 fetal head ultrasound: ``NNN_HC.png`` frames (``NNN_2HC.png``, ``NNN_3HC.png`` are
further frames of subject NNN) and ``NNN_HC_Annotation.png`` head outlines.

The annotation is a 1-pixel elliptical ring; the mask is its filled inside (ring included).
Where the ring is not closed (it runs off the image edge in a few files), an ellipse fitted to
the ring pixels is filled instead. Pixel sizes come from ``*pixel_size*.csv`` when present.
"""

from __future__ import annotations

import csv
import re
from functools import partial
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage import draw, measure

from ...errors import DataError
from ..record import Case, CaseList, CaseRef
from .case import read_case
from .image2d import read_pil_label

_FRAME = re.compile(r"^(\d+)_(\d*)HC$")
LABEL_NAMES = {1: "fetal_head"}


def fill_ring(ring: np.ndarray) -> np.ndarray:
    """(H, W) ring (nonzero on the outline) → (H, W) bool filled region, outline included."""
    ring = ring > 0
    filled = ndimage.binary_fill_holes(ring)
    if filled.sum() >= 2 * ring.sum():
        return filled
    ellipse = _fitted_ellipse(ring)
    return ellipse | ring


def open_hc18(root: Path) -> CaseList:
    """Frames in ``root`` or ``root/images``, outlines in ``root`` or ``root/annotations``."""
    images_dir = root / "images" if (root / "images").is_dir() else root
    notes_dir = root / "annotations" if (root / "annotations").is_dir() else root
    subjects = {p: m.group(1) for p in images_dir.glob("*HC.png") if (m := _FRAME.match(p.stem))}
    frames = sorted(subjects)
    if not frames:
        raise DataError(f"{root} holds no HC18 frames (NNN_HC.png).")
    spacing = _pixel_sizes(root)
    refs = []
    for frame in frames:
        subject = subjects[frame]
        note = notes_dir / f"{frame.stem}_Annotation.png"
        note_path = note if note.exists() else None
        loader = partial(_load, frame, note_path, subject, spacing.get(frame.name))
        refs.append(CaseRef(frame.stem, subject, loader, str(frame)))
    return CaseList(refs, f"HC18 {root}")


def _load(frame: Path, note: Path | None, subject: str, pixel_mm: float | None) -> Case:
    case = read_case(frame, None, "us", subject=subject)
    if pixel_mm is not None:
        case.spacing = (pixel_mm, pixel_mm)
    if note is not None:
        ring = read_pil_label(note)
        if ring.shape != case.spatial_shape:
            raise DataError(
                f"{note} has shape {ring.shape}, its frame {frame} {case.spatial_shape}."
            )
        case.label = fill_ring(ring).astype(np.uint8)
        case.meta.update(label_source=str(note), label_names=dict(LABEL_NAMES))
    return case


def _fitted_ellipse(ring: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(ring)
    points = np.column_stack([cols, rows]).astype(float)
    if hasattr(measure.EllipseModel, "from_estimate"):  # scikit-image ≥ 0.26
        model = measure.EllipseModel.from_estimate(points)
        if not model:
            raise DataError("cannot fit an ellipse to an open HC18 annotation ring.")
        (xc, yc), (a, b), theta = model.center, model.axis_lengths, model.theta
    else:
        model = measure.EllipseModel()
        if not model.estimate(points):
            raise DataError("cannot fit an ellipse to an open HC18 annotation ring.")
        xc, yc, a, b, theta = model.params
    rr, cc = draw.ellipse(yc, xc, b, a, shape=ring.shape, rotation=-theta)
    mask = np.zeros(ring.shape, dtype=bool)
    mask[rr, cc] = True
    return mask


def _pixel_sizes(root: Path) -> dict[str, float]:
    sizes: dict[str, float] = {}
    for table in root.glob("*pixel_size*.csv"):
        with open(table, newline="") as handle:
            for row in csv.DictReader(handle):
                key = next((k for k in row if "pixel size" in k.lower()), None)
                if key and row.get("filename"):
                    sizes[row["filename"]] = float(row[key])
    return sizes
