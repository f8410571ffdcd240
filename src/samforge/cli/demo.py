"""``samforge demo``: the whole segmentation path on a synthetic CT volume.

Until the built-in trained model exists (issue 6), the demo runs ``samforge_random_tiny``, a
randomly initialised model: it exercises reading, intensity normalisation, prompts, decoding
and writing a mask with the input's geometry, and says plainly that the masks are
meaningless.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from ..data.io import read_case, write_mask
from ..data.objects import instances_from_labels
from ..evaluation.metrics import dice
from ..inference.objects import segment_objects
from ..inference.predictor import Predictor
from ..models.checkpoint import load_model
from ..prompts import center_points
from . import data_synthetic

console = Console()

DEMO_MODEL = "samforge_random_tiny"


def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", "-o", help="Folder for all outputs."),
    model: str = typer.Option(DEMO_MODEL, "--model", "-m", help="Registry name or checkpoint."),
) -> None:
    """Segment the largest organ of a synthetic CT volume from a box and from a point."""
    started = time.perf_counter()
    if model == DEMO_MODEL:
        console.print(
            Panel(
                f"[bold]{DEMO_MODEL}[/] is randomly initialised and untrained: this run shows the "
                "pipeline, not segmentation quality. A trained built-in model comes later.",
                style="yellow",
            )
        )
    phantom_dir = out / "phantom"
    data_synthetic.phantom(
        out=phantom_dir, modality="ct", three_d=True, count=1, size=128, depth=24, seed=0
    )
    image_path = phantom_dir / "imagesTr" / "ct_000_0000.nii.gz"
    case = read_case(image_path, phantom_dir / "labelsTr" / "ct_000.nii.gz")
    slice_index = int(np.argmax((case.label > 0).sum(axis=(1, 2))))
    target = max(instances_from_labels(case.label[slice_index]), key=lambda o: o.area)

    predictor = Predictor(load_model(model))
    predictor.set_image(case.image[slice_index], modality=case.modality)
    box = np.asarray(target.box, dtype=np.float32)
    centre = center_points(torch.from_numpy(target.mask)[None])[0].numpy()
    runs = {
        "box": segment_objects(predictor, boxes=box[None]),
        "point": segment_objects(predictor, points=centre[None, None], labels=np.ones((1, 1))),
    }
    table = Table(
        title=f"{model} on {image_path.name}, slice {slice_index}, class "
        f"{target.class_id} ({target.area} px)"
    )
    for column in ("prompt", "Dice vs phantom label", "predicted IoU", "mask file"):
        table.add_column(column)
    for name, (label_map, prediction) in runs.items():
        volume = np.zeros(case.label.shape, dtype=np.uint8)
        volume[slice_index] = label_map
        mask_path = out / f"mask_{name}.nii.gz"
        write_mask(mask_path, volume, reference=case)
        table.add_row(
            name,
            f"{dice(label_map > 0, target.mask):.3f}",
            f"{prediction.scores[0, 0]:.3f}",
            str(mask_path),
        )
    overlay = _plot_overlay(
        out / "overlay.png",
        case.image[slice_index],
        target.mask,
        {name: run[0] > 0 for name, run in runs.items()},
        box,
        centre,
    )
    console.print(table)
    console.print(f"overlay: {overlay}; done in {time.perf_counter() - started:.1f} s")


def _plot_overlay(path: Path, image, truth, predictions: dict, box, point) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    figure = Figure(figsize=(4 * len(predictions), 4), dpi=100)
    FigureCanvasAgg(figure)
    for ax, (name, mask) in zip(
        figure.subplots(1, len(predictions)), predictions.items(), strict=True
    ):
        ax.imshow(np.clip(image, -160, 240), cmap="gray")
        ax.contour(truth, levels=[0.5], colors="lime", linewidths=1)
        ax.imshow(np.ma.masked_where(~mask, mask), cmap="autumn", alpha=0.4)
        if name == "box":
            x0, y0, x1, y1 = box
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="cyan"))
        else:
            ax.plot(*point, "c*", markersize=12)
        ax.set_title(f"{name} prompt (green: phantom label)")
        ax.set_axis_off()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
