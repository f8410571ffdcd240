"""Phantoms written to disk as datasets that samforge's readers (and nnU-Net) read.

2D: ``images/*.png`` + ``masks/*.png`` (8-bit, display window applied; masks are label
maps). 3D: an nnU-Net v2 raw dataset, ``imagesTr/<case>_0000.nii.gz`` +
``labelsTr/<case>.nii.gz`` in native units (HU for CT). Both get a ``dataset.json`` with the
label names and each case's seed, so any case can be generated again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import track

from ..errors import ConfigError
from ..files import write_text_atomically
from .phantoms import phantom_cases
from .writers import write_image, write_volume_nifti

DATASET_JSON = "dataset.json"
_NNUNET_CHANNEL = {"ct": "CT", "mr": "T1", "us": "US", "xray": "XR"}
_DISPLAY_NOTE = {
    "ct": "CT soft-tissue window (W 400, L 40) mapped to 0-255",
    "mr": "0 to the 99.5th percentile mapped to 0-255",
    "us": "B-mode grey levels as generated",
    "xray": "12-bit line integrals mapped to 0-255",
}


@dataclass(frozen=True)
class PhantomDataset:
    """What :func:`write_phantom_dataset` wrote."""

    folder: Path
    modality: str
    shape: tuple[int, ...]
    names: list[str]

    @property
    def layout(self) -> str:
        if len(self.shape) == 3:
            return "imagesTr/ + labelsTr/ (NIfTI)"
        return "images/ + masks/ (PNG)"


def write_phantom_dataset(
    out: str | Path,
    modality: str,
    shape: tuple[int, ...],
    count: int,
    seed: int = 0,
    *,
    show_progress: bool = False,
) -> PhantomDataset:
    """Write ``count`` phantoms of ``shape`` ((H, W) or (D, H, W)) into ``out``.

    Case ``i`` is ``make_phantom(modality, shape, seed_i)`` with seeds spawned from ``seed``
    (:func:`~.phantoms.phantom_cases`). A bad modality or shape fails before anything is
    written.

    Raises:
        ConfigError: unknown modality, X-ray volumes, too small a shape or ``count < 1``.
    """
    if count < 1:
        raise ConfigError(f"the number of phantoms must be at least 1; got {count}.")
    out = Path(out)
    cases = phantom_cases(modality, count, shape, seed)
    names: list[str] = []
    seeds: list[int] = []
    infos: list[dict[str, Any]] = []
    for index, (image, label, info) in enumerate(
        track(cases, total=count, description="phantoms", disable=not show_progress)
    ):
        name = f"{info['modality']}_{index:03d}"
        if len(shape) == 3:
            write_volume_nifti(out / "imagesTr" / f"{name}_0000.nii.gz", image, info["affine"])
            write_volume_nifti(out / "labelsTr" / f"{name}.nii.gz", label, info["affine"])
        else:
            write_image(out / "images" / f"{name}.png", _display_uint8(image, info))
            write_image(out / "masks" / f"{name}.png", label)
        names.append(name)
        seeds.append(info["seed"])
        infos = infos or [info]
    dataset = _dataset_json(infos[0], names, seeds, seed)
    write_text_atomically(out / DATASET_JSON, json.dumps(dataset, indent=1))
    return PhantomDataset(out, infos[0]["modality"], tuple(shape), names)


def _display_uint8(image: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """8-bit view of a phantom through its display range (CT: soft-tissue window)."""
    if image.dtype == np.uint8:
        return image
    low, high = info["display_range"]
    scaled = (image.astype(np.float64) - low) / max(high - low, 1e-6)
    return np.rint(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def _dataset_json(
    info: dict[str, Any], names: list[str], seeds: list[int], seed: int
) -> dict[str, Any]:
    """nnU-Net v2's dataset.json fields, plus each case's seed and the intensity mapping."""
    three_d = len(info["spacing"]) == 3
    dataset: dict[str, Any] = {
        "name": f"samforge phantom {info['modality']} {'3D' if three_d else '2D'}",
        "description": "Synthetic cases from samforge.data.phantoms.make_phantom.",
        "modality": info["modality"],
        "labels": {"background": 0, **{name: int(k) for k, name in info["labels"].items()}},
        "numTraining": len(names),
        "file_ending": ".nii.gz" if three_d else ".png",
        "cases": {name: {"seed": s} for name, s in zip(names, seeds, strict=True)},
        "seed": seed,
    }
    if three_d:
        dataset["channel_names"] = {"0": _NNUNET_CHANNEL[info["modality"]]}
        dataset["units"] = info["units"]
    else:
        dataset["spacing_mm"] = list(info["spacing"])
        dataset["intensity"] = _DISPLAY_NOTE[info["modality"]]
    return dataset
