"""``samforge segment``: objects in a 2D image or a slice of a volume, or one object
through a whole volume (``--propagate``).

``--slice N`` is read here together with the prompts (it is not a declared option), so
that each ``--slice`` keeps the prompts that follow it: ``--propagate --slice 10 --box ...
--slice 30 --box ...`` prompts two slices of one object.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from ..data import Case, IntensitySettings, read_case, write_mask
from ..errors import ConfigError, InputImageError, PromptError
from ..files import check_output_file
from ..inference import PropagationResult, PropagationSettings, propagate
from ..inference.objects import segment_objects
from ..inference.precision import DEFAULT_PRECISION
from ..inference.tiled import tiled_if_needed
from ..prompts import Prompts
from ..prompts.volume_prompts import PROMPT_MODES
from .options import intensity_option, window_option
from .prompt_args import parse_prompt_args
from .segment_all import predictor_for, segment_all, split_slice, write_plane_mask
from .segment_semantic import segment_semantic

console = Console()


def segment(
    ctx: typer.Context,
    image: Path = typer.Argument(..., help="PNG/TIFF/JPEG image, NIfTI volume or DICOM folder."),
    output: Path = typer.Option(..., "-o", "--output", help="Mask file (.png, .tif, .nii.gz)."),
    model: str = typer.Option(..., "--model", "-m", help="Registry name or checkpoint file."),
    intensity: str = intensity_option(),
    window: str | None = window_option(),
    multimask: bool | None = typer.Option(
        None,
        "--multimask/--single-mask",
        help="Default: three masks (best kept) for a single point, one mask otherwise.",
    ),
    all_: bool = typer.Option(
        False, "--all", help="Every object, no prompts (SAM's automatic mask generator)."
    ),
    tile: int | None = typer.Option(
        None, "--tile", help="Large 2D images: embed tiles of this many pixels (e.g. 1024)."
    ),
    halo: int = typer.Option(256, "--halo", help="With --tile: overlap added on each side."),
    propagate_: bool = typer.Option(
        False, "--propagate", help="Follow one object through the volume from prompted slices."
    ),
    mode: str = typer.Option(
        "mask", help=f"With --propagate: prompts for the next slice ({', '.join(PROMPT_MODES)})."
    ),
    iou_threshold: float = typer.Option(
        0.8,
        min=0.0,
        max=1.0,
        help="With --propagate: stop when IoU(previous, new slice mask) is below this.",
    ),
    box_extension: float = typer.Option(
        0.0,
        min=0.0,
        help="With --propagate: fraction (< 1) or pixels (≥ 1) added to each box side.",
    ),
    engine: str = typer.Option(
        "torch", help="torch, or onnxruntime (the model's ONNX graphs, exported on first use)."
    ),
    precision: str = typer.Option(
        DEFAULT_PRECISION,
        help="Image encoder arithmetic: auto (bf16 where the CPU or GPU computes it natively, "
        "else fp32), fp32 (exact, the official model's) or bf16; with --semantic the whole "
        "network's.",
    ),
    semantic: bool = typer.Option(
        False, "--semantic", help="Label every pixel/voxel with a semantic model's classes."
    ),
) -> None:
    """Segment objects from prompts and write a mask with the input's geometry.

    Prompts (repeatable): --point X Y [--label 0|1], --box X0 Y0 X1 Y1, in pixel
    coordinates of the image or slice (x = column, y = row). Several boxes give several
    objects, written as labels 1, 2, ...; points refine a single object. A volume needs
    --slice N (first array axis, z) to say which slice the prompts are on.

    With --propagate, one object is followed slice by slice through the volume; give
    --slice N and its prompts once, or several times to prompt several slices (each
    --slice takes the prompts after it). The whole 3D mask is written as label 1.

    With --all, every object is segmented without prompts; the labels (largest first) and
    OUTPUT.json with one record per label are written. Settings: --points-per-side 32,
    --pred-iou-thresh 0.88, --stability-score-thresh 0.95, --crop-n-layers 0, ... (SAM's).

    With --semantic, -m is a semantic model (`samforge train semantic2d/semantic3d`, or a
    MedicoSAM file with its decoder) and no prompts are given: every pixel or voxel gets
    one of its classes (names in <output>.labels.json).
    """
    if semantic:
        segment_semantic(image, output, model, list(ctx.args), precision)
        return
    intensity_settings = IntensitySettings(intensity, window)
    engine_options = {"engine": engine, "precision": precision}
    if tile is not None and (all_ or propagate_):
        raise ConfigError("--tile is for prompts on a 2D image; --all crops with --crop-n-layers.")
    groups = [] if all_ else _slice_groups(ctx.args)
    check_output_file(output, [image])  # before any work: never over the input
    case = read_case(image)
    if all_:
        slice_index, options = split_slice(ctx.args)
        plane = _plane(case, slice_index, image)
        segment_all(
            case,
            image,
            plane,
            slice_index,
            output,
            model,
            intensity_settings,
            options,
            engine_options,
        )
        return
    if propagate_:
        settings = PropagationSettings(mode, iou_threshold, box_extension)
        _propagate(case, image, groups, settings, output, model, intensity_settings, engine_options)
        return
    if len(groups) > 1:
        raise PromptError("--slice is given more than once: only --propagate takes several.")
    slice_index, prompts = groups[0]

    plane = _plane(case, slice_index, image)
    started = time.perf_counter()
    predictor = tiled_if_needed(
        predictor_for(model, intensity_settings, engine_options), tile, halo
    )
    # A volume's slice gets the whole volume's one mapping, as in training and evaluation.
    predictor.set_image(plane, mapping=intensity_settings.case_mapping(case))
    label_map, scores = segment_objects(predictor, prompts, multimask)
    elapsed = time.perf_counter() - started
    label_map = write_plane_mask(output, label_map, case, slice_index)
    _report(output, scores, label_map, elapsed)


def _propagate(
    case: Case,
    path: Path,
    groups: list[tuple[int | None, Prompts]],
    settings: PropagationSettings,
    output: Path,
    model: str,
    intensity: IntensitySettings,
    engine_options: dict[str, str],
) -> None:
    """Segment one object through the volume from prompts on one or more slices."""
    if not case.is_volume:
        raise InputImageError(f"{path} is a 2D image: --propagate needs a volume.")
    indices = [index for index, _ in groups]
    if len(set(indices)) != len(indices):
        raise PromptError(f"slices {indices} repeat: give all prompts of a slice together.")
    prompts = dict(_slice_prompt(case, index, args, path) for index, args in groups)
    started = time.perf_counter()
    predictor = predictor_for(model, intensity, engine_options)
    mapping = intensity.case_mapping(case)
    result = propagate(predictor, case.image, prompts, settings, mapping=mapping)
    elapsed = time.perf_counter() - started
    write_mask(output, result.mask.astype(np.uint8), reference=case)
    _report_propagation(output, result, settings, elapsed)


def _slice_groups(args: list[str]) -> list[tuple[int | None, Prompts]]:
    """Split the extra arguments at each ``--slice N`` into (N, prompts after it).

    With a single ``--slice`` its place does not matter (``--box ... --slice 4`` works as
    it always did); with several, each slice takes the prompts that follow it.
    """
    cuts = [i for i, token in enumerate(args) if token == "--slice"]
    indices = [_slice_number(args, i) for i in cuts]
    if len(cuts) <= 1:
        rest = args if not cuts else args[: cuts[0]] + args[cuts[0] + 2 :]
        groups = [(indices[0] if indices else None, rest)]
    else:
        if cuts[0] != 0:
            raise PromptError(
                f"prompts {args[: cuts[0]]} come before the first --slice: with several "
                "slices, put each slice's prompts after its --slice N."
            )
        bounds = [*cuts, len(args)]
        groups = [(indices[k], args[bounds[k] + 2 : bounds[k + 1]]) for k in range(len(cuts))]
    return [
        (index, parse_prompt_args(tokens, "" if index is None else f" for --slice {index}"))
        for index, tokens in groups
    ]


def _slice_number(args: list[str], position: int) -> int:
    value = args[position + 1] if position + 1 < len(args) else ""
    try:
        return int(value)
    except ValueError:
        raise PromptError(f"--slice takes a slice number (an integer), got {value!r}.") from None


def _slice_prompt(
    case: Case, index: int | None, prompts: Prompts, path: Path
) -> tuple[int, Prompts]:
    _plane(case, index, path)  # checks that the slice is given and inside the volume
    assert index is not None  # _plane raised for a volume without --slice
    if prompts.num_objects > 1:
        raise PromptError(
            f"--slice {index} has {prompts.num_objects} boxes: --propagate follows one object, "
            "so give at most one --box per slice."
        )
    return index, prompts


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


def _report_propagation(
    output: Path, result: PropagationResult, settings: PropagationSettings, seconds: float
) -> None:
    table = Table(title=f"samforge segment --propagate ({settings.label()}) → {output}")
    for column in ("from slice", "direction", "last slice", "stopped by"):
        table.add_column(column)
    for stop in result.stops:
        reason = stop.reason if stop.iou is None else f"IoU {stop.iou:.2f} < threshold"
        direction = "down" if stop.step < 0 else "up"
        table.add_row(str(stop.start), direction, str(stop.last), reason)
    console.print(table)
    segmented = np.flatnonzero(result.segmented)
    span = f"{segmented.min()}–{segmented.max()}" if segmented.size else "none"
    console.print(
        f"{segmented.size} slices segmented ({span}), {int(result.mask.sum())} voxels; "
        f"done in {seconds:.2f} s"
    )
