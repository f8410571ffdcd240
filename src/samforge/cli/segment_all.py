"""``samforge segment --all``: every object of an image (SAM's automatic mask generator).

Writes the instance label map (label 1 the largest object, 2 the next, ...; overlaps go to
the smaller object) and, beside it, ``<output stem>.json`` with one record per label: the
official generator's keys without the mask (``label``, ``area``, ``bbox`` [x, y, w, h],
``predicted_iou``, ``point_coords``, ``stability_score``, ``crop_box``) plus the settings.

Generator settings come as extra options, named like :class:`AutomaticSettings` fields
with dashes: ``--points-per-side 16 --pred-iou-thresh 0.8 --crop-n-layers 1``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

from ..data import Case, IntensitySettings, write_mask
from ..errors import ConfigError, PromptError
from ..files import check_output_file, stem_of, write_text_atomically
from ..inference import Predictor
from ..inference.automatic import AutomaticMaskGenerator, AutomaticSettings, instance_label_map
from ..models import load_model

console = Console()


def split_slice(args: list[str]) -> tuple[int | None, list[str]]:
    """(``--slice N`` or None, the other extra arguments)."""
    if "--slice" not in args:
        return None, args
    position = args.index("--slice")
    value = args[position + 1] if position + 1 < len(args) else ""
    try:
        index = int(value)
    except ValueError:
        raise PromptError(f"--slice takes a slice number (an integer), got {value!r}.") from None
    return index, args[:position] + args[position + 2 :]


def write_plane_mask(
    output: Path, label_map: np.ndarray, case: Case, slice_index: int | None
) -> np.ndarray:
    """Write the (H, W) labels of a 2D case, or of slice ``slice_index`` of a volume (the
    other slices 0); returns what was written."""
    if case.is_volume:
        full = np.zeros(case.image.shape, dtype=label_map.dtype)
        full[slice_index] = label_map
        label_map = full
    write_mask(output, label_map, reference=case)
    return label_map


def records_path(output: Path) -> Path:
    return output.with_name(stem_of(output) + ".json")


def settings_from_args(args: list[str]) -> AutomaticSettings:
    """``["--points-per-side", "16", ...]`` -> settings; unknown or prompt options refused."""
    types = {field.name: field.type for field in fields(AutomaticSettings)}
    given: dict[str, float | int] = {}
    for position in range(0, len(args), 2):
        option = args[position]
        name = option.removeprefix("--").replace("-", "_")
        if not option.startswith("--") or name not in types:
            known = ", ".join("--" + key.replace("_", "-") for key in types)
            raise ConfigError(
                f"--all takes no {option!r}: it prompts every object itself. Its settings "
                f"are {known}, each followed by a number."
            )
        value = args[position + 1] if position + 1 < len(args) else ""
        try:
            given[name] = int(value) if types[name] == "int" else float(value)
        except ValueError:
            raise ConfigError(f"{option} takes a number ({types[name]}), got {value!r}.") from None
    return AutomaticSettings(**given)  # type: ignore[arg-type]


def segment_all(
    case: Case,
    image_path: Path,
    plane: np.ndarray,
    slice_index: int | None,
    output: Path,
    model: str,
    intensity: IntensitySettings,
    args: list[str],
    engine_options: dict[str, str],
) -> None:
    """Segment every object of ``plane`` (a 2D image, or slice ``slice_index`` of the
    case's volume) and write the label map and its records; ``engine_options``: the
    Predictor's ``engine`` and ``precision``."""
    settings = settings_from_args(args)
    json_path = check_output_file(records_path(output), [image_path])
    started = time.perf_counter()
    predictor = predictor_for(model, intensity, engine_options)
    generator = AutomaticMaskGenerator(predictor, settings)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("segment everything: crops", total=None)
        records = generator.generate(
            plane,
            mapping=intensity.case_mapping(case),
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    label_map, ordered = instance_label_map(records, plane.shape[:2])
    elapsed = time.perf_counter() - started
    write_plane_mask(output, label_map, case, slice_index)
    summary = {
        "settings": asdict(settings),
        "objects": [
            {
                "label": label,
                **{key: value for key, value in record.items() if key != "segmentation"},
            }
            for label, record in enumerate(ordered, start=1)
        ],
    }
    write_text_atomically(json_path, json.dumps(summary, indent=1))
    if not ordered:
        console.print(
            f"no mask passed the filters ({elapsed:.2f} s); wrote an empty {output} and "
            f"{json_path}. Lower --pred-iou-thresh or --stability-score-thresh to keep more."
        )
        return
    console.print(
        f"{len(ordered)} objects → {output} (labels 1–{len(ordered)}, largest first) and "
        f"{json_path}; done in {elapsed:.2f} s"
    )


def predictor_for(
    model: str, intensity: IntensitySettings, engine_options: dict[str, str]
) -> Predictor:
    """The Predictor every ``segment`` path uses: the model by name or file, the intensity
    rule and the engine options (``engine``, ``precision``) given on the command line."""
    return Predictor(
        load_model(model),
        intensity=intensity.mode,
        window=intensity.window,
        engine=engine_options["engine"],
        precision=engine_options["precision"],
    )
