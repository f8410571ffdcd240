"""Saving a document's accepted objects: the label map with the source's geometry (NIfTI for
volumes, DICOM series included; PNG for 2D images) and the prompts as JSON."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...data import write_mask
from .document import AnnotationDocument
from .store import FORMAT, write_json


@dataclass(frozen=True)
class SavedAnnotations:
    labels: Path
    prompts: Path
    objects: int


def labels_file_name(document: AnnotationDocument) -> str:
    return "labels.nii.gz" if document.case.is_volume else "labels.png"


def save_annotations(
    document: AnnotationDocument, folder: str | Path, extra: dict[str, Any] | None = None
) -> SavedAnnotations:
    """Write ``labels.nii.gz`` (or ``labels.png``) and ``prompts.json`` into ``folder``.

    The label map holds each accepted object under its id (drafts are left out); the JSON
    lists every accepted object with its prompts per slice, so the same masks can be
    recomputed with the Python API. ``extra`` (model, propagation settings, ...) is added
    to the JSON as it is.
    """
    folder = Path(folder)
    accepted = [info for info in document.objects if info.status == "accepted"]
    labels = folder / labels_file_name(document)
    write_mask(labels, document.label_map(("accepted",)), reference=document.case)
    case = document.case
    record = {
        "format": FORMAT,
        "case": case.name,
        "source": str(case.meta.get("source", "")),
        "shape": list(case.spatial_shape),
        "spacing": list(case.spacing),
        "labels_file": labels.name,
        "coordinates": "prompts are (x, y) pixels of slice image[index]; boxes end-exclusive",
        **(extra or {}),
        "objects": [{**info.to_json(), "voxels": document.voxels(info.id)} for info in accepted],
    }
    prompts = folder / "prompts.json"
    write_json(prompts, record)
    return SavedAnnotations(labels, prompts, len(accepted))
