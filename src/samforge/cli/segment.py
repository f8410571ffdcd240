"""``samforge segment``: one object (or several) in a 2D image or a slice of a volume."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from ..data.io import read_case, write_mask
from ..data.record import Case
from ..errors import InputImageError, PromptError
from ..inference.objects import segment_objects
from ..inference.predictor import Predictor
from ..models.checkpoint import load_model
from .prompt_args import parse_prompt_args

console = Console()

INTENSITY_HELP = (
    "How intensities map to SAM's 0–255 input: auto (uint8 as is, else 1–99 percentile), "
    "percentile, ct (with --window), mr, none."
)


def segment(
    ctx: typer.Context,
    image: Path = typer.Argument(..., help="PNG/TIFF/JPEG image, NIfTI volume or DICOM folder."),
    output: Path = typer.Option(..., "-o", "--output", help="Mask file (.png, .tif, .nii.gz)."),
    model: str = typer.Option(..., "--model", "-m", help="Registry name or checkpoint file."),
    slice_index: int | None = typer.Option(
        None, "--slice", help="Slice of a volume (first axis of the array, z)."
    ),
    intensity: str = typer.Option("auto", help=INTENSITY_HELP),
    window: str | None = typer.Option(
        None, help="CT window: soft_tissue, lung, bone, brain (with --intensity ct)."
    ),
    multimask: bool | None = typer.Option(
        None,
        "--multimask/--single-mask",
        help="Default: three masks (best kept) for a single point, one mask otherwise.",
    ),
) -> None:
    """Segment objects from prompts and write a mask with the input's geometry.

    Prompts (repeatable): --point X Y [--label 0|1], --box X0 Y0 X1 Y1, in pixel
    coordinates of the image or slice (x = column, y = row). Several boxes give several
    objects, written as labels 1, 2, ...; points refine a single object.
    """
    prompts = parse_prompt_args(ctx.args)
    if not prompts.points and not prompts.boxes:
        raise PromptError("no prompt given: add --box X0 Y0 X1 Y1 or --point X Y.")
    if prompts.points and len(prompts.boxes) > 1:
        raise PromptError("points refine one object: combine them with at most one --box.")

    case = read_case(image)
    plane = _plane(case, slice_index, image)
    started = time.perf_counter()
    predictor = Predictor(load_model(model), intensity=intensity, window=window)
    predictor.set_image(plane, modality=case.modality)
    points = np.array([prompts.points], dtype=np.float32) if prompts.points else None
    labels = np.array([prompts.labels], dtype=np.float32) if prompts.points else None
    boxes = np.array(prompts.boxes, dtype=np.float32) if prompts.boxes else None
    label_map, prediction = segment_objects(predictor, points, labels, boxes, multimask)
    elapsed = time.perf_counter() - started

    if case.is_volume:
        full = np.zeros(case.image.shape, dtype=label_map.dtype)
        full[slice_index] = label_map
        label_map = full
    write_mask(output, label_map, reference=case)
    _report(output, prediction.scores[:, 0], label_map, elapsed)


def _plane(case: Case, slice_index: int | None, path: Path) -> np.ndarray:
    if not case.is_volume:
        if slice_index is not None:
            raise InputImageError(f"{path} is a 2D image: drop --slice.")
        return case.image
    depth = case.image.shape[0]
    if slice_index is None:
        raise InputImageError(
            f"{path} is a volume of {depth} slices: choose one with --slice N (0 ≤ N < {depth})."
        )
    if not 0 <= slice_index < depth:
        raise InputImageError(f"--slice {slice_index} is outside the volume's {depth} slices.")
    return case.image[slice_index]


def _report(output: Path, scores: np.ndarray, label_map: np.ndarray, seconds: float) -> None:
    table = Table(title=f"samforge segment → {output}")
    table.add_column("object")
    table.add_column("pixels", justify="right")
    table.add_column("predicted IoU", justify="right")
    for index, score in enumerate(scores, start=1):
        table.add_row(str(index), str(int((label_map == index).sum())), f"{score:.3f}")
    console.print(table)
    console.print(f"done in {seconds:.2f} s")
