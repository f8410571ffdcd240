"""``samforge data corrupt``, ``data phantom`` and ``data contact-sheet``.

The work is done by :mod:`samforge.data.corrupted_copies`,
:mod:`samforge.data.phantom_datasets` and :func:`samforge.evaluation.plots.plot_contact_sheet`;
these commands parse, call and print.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from ..data.corrupted_copies import read_image, write_corrupted_copies
from ..data.corruptions import PAPER_SEVERITY
from ..data.phantom_datasets import write_phantom_dataset
from ..data.phantoms import MIN_SIZE
from ..errors import ConfigError, DataError
from ..evaluation.plots import plot_contact_sheet
from ..files import check_output_file

console = Console()

TYPES_HELP = (
    "Corruption names or groups (modality_agnostic, image_pipeline, ultrasound, mri, ct_xray), "
    "repeatable or comma-separated; default: all 12."
)
SEVERITY_HELP = "Severity 1–5; 3 is the paper's setting."


def corrupt(
    path: Path = typer.Argument(..., help="A PNG/TIFF/JPEG image, or a folder of them."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: one subfolder per type."),
    types: list[str] | None = typer.Option(None, "--types", "-t", help=TYPES_HELP),
    severity: int = typer.Option(
        PAPER_SEVERITY, "--severity", "-s", min=1, max=5, help=SEVERITY_HELP
    ),
    seed: int = typer.Option(
        0, "--seed", min=0, help="Base seed; each image and type gets its own."
    ),
    sheet: Path | None = typer.Option(
        None, "--contact-sheet", help="Also write a PNG with all 12 types on the first image."
    ),
) -> None:
    """Write degraded copies of images with RobustMedSAM's corruptions.

    Outputs keep the folder structure under OUT/<type>/, as PNG (TIFF inputs stay TIFF, so
    float images keep their values); OUT/corruptions.json lists the parameters drawn.
    """
    copies = write_corrupted_copies(path, out, types, severity, seed, show_progress=True)
    console.print(
        f"wrote {copies.outputs} degraded images ({len(copies.sources)} × {len(copies.kinds)} "
        f"types, severity {severity}) to {out}"
    )
    if sheet is not None:
        first = copies.sources[0]
        plot_contact_sheet(read_image(first), sheet, severity=severity, seed=seed, title=first.name)
        console.print(f"wrote the contact sheet {sheet}")


def contact_sheet(
    image_path: Path = typer.Argument(..., help="A PNG/TIFF/JPEG image."),
    out_png: Path = typer.Argument(..., help="The PNG to write."),
    severity: int = typer.Option(
        PAPER_SEVERITY, "--severity", "-s", min=1, max=5, help=SEVERITY_HELP
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the corruptions."),
) -> None:
    """Write one PNG showing the image and its 12 corruptions, with their parameters."""
    if not Path(image_path).is_file():
        raise DataError(f"{image_path} is not a file; give one PNG/TIFF/JPEG image.")
    check_output_file(out_png, [image_path])
    image = read_image(image_path)
    plot_contact_sheet(image, out_png, severity=severity, seed=seed, title=Path(image_path).name)
    console.print(f"wrote the contact sheet {out_png}")


def phantom(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    modality: str = typer.Option("ct", "--modality", "-m", help="ct, mr, us or xray."),
    three_d: bool = typer.Option(
        False, "--3d", help="Volumes as NIfTI (nnU-Net v2 layout) instead of 2D PNG images."
    ),
    count: int = typer.Option(8, "--count", "-n", help="Number of cases."),
    size: int = typer.Option(256, "--size", help=f"In-plane size in pixels (≥ {MIN_SIZE})."),
    depth: int | None = typer.Option(None, "--depth", help="Slices per volume (default size/4)."),
    seed: int = typer.Option(
        0, "--seed", min=0, help="Base seed; case i gets a seed spawned from it."
    ),
) -> None:
    """Write synthetic CT/MR/ultrasound/X-ray cases with organ-like label maps."""
    shape = _phantom_shape(count, size, depth, three_d)
    dataset = write_phantom_dataset(out, modality, shape, count, seed, show_progress=count > 1)
    console.print(
        f"wrote {count} {dataset.modality} phantoms of shape {shape} to {out}: {dataset.layout}"
    )


def _phantom_shape(count: int, size: int, depth: int | None, three_d: bool) -> tuple[int, ...]:
    """(size, size), or (depth, size, size) with ``--3d`` (depth ``size // 4``, at least 8,
    unless given); every option checked before anything is written."""
    if count < 1:
        raise ConfigError(f"--count must be at least 1; got {count}.")
    if size < MIN_SIZE:
        raise ConfigError(f"--size must be at least {MIN_SIZE}; got {size}.")
    if depth is not None and not three_d:
        raise ConfigError("--depth applies to volumes: add --3d, or drop --depth.")
    if depth is not None and depth < 1:
        raise ConfigError(f"--depth must be at least 1; got {depth}.")
    if not three_d:
        return (size, size)
    return (depth if depth is not None else max(size // 4, 8), size, size)
