"""``samforge segment --semantic``: every pixel or voxel labelled with a semantic model's
classes, written with the input's geometry (NIfTI affine; a DICOM series as NIfTI; PNG for
2D images) and a ``<output>.labels.json`` naming the classes from the model's metadata."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from ..data import read_case, write_mask
from ..errors import PromptError
from ..files import check_output_file, write_text_atomically
from ..inference import SemanticPredictor
from ..models.semantic import SemanticInfo, load_semantic_model

console = Console()


def segment_semantic(
    image: Path, output: Path, model: str, extra_args: list[str], precision: str = "fp32"
) -> None:
    """Label ``image`` (an image, NIfTI volume or DICOM folder) with the semantic model in
    the file ``model``, in ``precision`` (:class:`SemanticPredictor`'s); a 2D model labels
    a volume slice by slice."""
    if extra_args:
        raise PromptError(
            f"--semantic labels the whole input and takes no prompts or slices; drop {extra_args}."
        )
    check_output_file(output, [image])
    case = read_case(image)
    started = time.perf_counter()
    predictor = SemanticPredictor(load_semantic_model(model), progress=True, precision=precision)
    if case.is_volume and predictor.info.spatial_dims == 2:
        labels = predictor.predict_slices(case.image, modality=case.modality)
    else:
        labels = predictor.predict(case.image, case.spacing, modality=case.modality)
    elapsed = time.perf_counter() - started
    # The training data's label values (TotalSegmentator's liver stays 5), named in the
    # labels.json beside the map.
    values = predictor.info.values
    write_mask(output, predictor.label_values(labels), reference=case)
    names = dict(zip(values, predictor.class_names, strict=True))
    write_text_atomically(labels_path(output), json.dumps(names, indent=2) + "\n")
    _report(output, labels, predictor.info, float(np.prod(case.spacing)), elapsed)


def labels_path(output: Path) -> Path:
    """Where the class names of a label map are written: ``<name>.labels.json`` beside it."""
    stem = output.name.removesuffix(".gz").rsplit(".", 1)[0]
    return output.with_name(f"{stem}.labels.json")


def _report(
    output: Path, labels: np.ndarray, info: SemanticInfo, voxel: float, seconds: float
) -> None:
    """A table of each class's label value, name and size; ``labels`` holds class indices."""
    names = info.class_names
    table = Table(title=f"samforge segment --semantic → {output}")
    for column, justify in (("label", "right"), ("class", "left"), ("voxels", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_column("mm³" if labels.ndim == 3 else "mm²", justify="right")
    counts = np.bincount(labels.ravel(), minlength=len(names))
    for index, name in enumerate(names[1:], start=1):
        value, size = info.values[index], counts[index]
        table.add_row(str(value), name, str(int(size)), f"{size * voxel:.1f}")
    console.print(table)
    console.print(f"class names in {labels_path(output)}; done in {seconds:.2f} s")
