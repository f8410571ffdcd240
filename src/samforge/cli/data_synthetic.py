"""``samforge data corrupt``, ``data phantom`` and the corruption contact sheet.

- ``corrupt``: degraded copies of the PNG/TIFF/JPEG images of a folder (or of one file), one
  subfolder per corruption type, plus ``corruptions.json`` with the parameters drawn for each.
- ``phantom``: synthetic cases; 2D as ``images/*.png`` + ``masks/*.png`` (8-bit, display
  window applied; masks are label maps), 3D as an nnU-Net v2 raw dataset (``imagesTr``,
  ``labelsTr``, ``dataset.json``) of NIfTI files in native units (HU for CT).
- ``contact_sheet``: one PNG with all 12 corruptions of one image.

Every file is written to a temporary name beside its target and renamed into place, so an
interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import json
import textwrap
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import track

from ..data.corruptions import (
    CORRUPTIONS,
    PAPER_SEVERITY,
    corrupt_with_params,
    resolve_corruption_names,
)
from ..data.phantoms import MIN_SIZE, make_phantom
from ..errors import ConfigError, DataError, InputImageError
from ..files import atomic_path, write_text_atomically

console = Console()

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
SHEET_SIZE_INCHES = (15.0, 9.6)
SHEET_DPI = 100  # the sheet is 1500 × 960 pixels

TYPES_HELP = (
    "Corruption names or groups (modality_agnostic, image_pipeline, ultrasound, mri, ct_xray), "
    "repeatable or comma-separated; default: all 12."
)
SEVERITY_HELP = "Severity 1–5; 3 is the paper's setting."


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


def corrupt(
    path: Path = typer.Argument(..., help="A PNG/TIFF/JPEG image, or a folder of them."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: one subfolder per type."),
    types: list[str] | None = typer.Option(None, "--types", "-t", help=TYPES_HELP),
    severity: int = typer.Option(PAPER_SEVERITY, "--severity", "-s", help=SEVERITY_HELP),
    seed: int = typer.Option(0, "--seed", help="Base seed; each image and type gets its own."),
    sheet: Path | None = typer.Option(
        None, "--contact-sheet", help="Also write a PNG with all 12 types on the first image."
    ),
) -> None:
    """Write degraded copies of images with RobustMedSAM's corruptions.

    Outputs keep the folder structure under OUT/<type>/, as PNG (TIFF inputs stay TIFF, so
    float images keep their values); OUT/corruptions.json lists the parameters drawn.
    """
    kinds = resolve_corruption_names(types)
    CORRUPTIONS[kinds[0]].level(severity)  # reject a bad severity before any work
    out = Path(out)
    root, files = _find_images(path, exclude=out)
    records: list[dict[str, Any]] = []
    jobs = [(file, kind) for file in files for kind in kinds]
    for file, kind in track(jobs, description="corrupting", console=console, disable=len(jobs) < 2):
        relative = file.relative_to(root) if root != file else Path(file.name)
        image = read_image(file)
        degraded, params = corrupt_with_params(
            image, kind, severity, _seed_for(seed, relative, kind)
        )
        target = out / kind / relative.with_suffix(_output_suffix(file))
        write_image(target, degraded)
        records.append({"source": str(file), "output": str(target), **_jsonable(params)})
    manifest = {"severity": severity, "seed": seed, "types": list(kinds), "images": records}
    write_text_atomically(out / "corruptions.json", json.dumps(manifest, indent=1))
    console.print(
        f"wrote {len(records)} degraded images ({len(files)} × {len(kinds)} types, severity "
        f"{severity}) to {out}"
    )
    if sheet is not None:
        render_contact_sheet(
            read_image(files[0]), sheet, severity=severity, seed=seed, title=files[0].name
        )
        console.print(f"wrote the contact sheet {sheet}")


def contact_sheet(
    image_path: Path = typer.Argument(..., help="A PNG/TIFF/JPEG image."),
    out_png: Path = typer.Argument(..., help="The PNG to write."),
    severity: int = typer.Option(PAPER_SEVERITY, "--severity", "-s", help=SEVERITY_HELP),
    seed: int = typer.Option(0, "--seed", help="Seed of the corruptions."),
) -> None:
    """Write one PNG showing the image and its 12 corruptions, with their parameters."""
    if not Path(image_path).is_file():
        raise DataError(f"{image_path} is not a file; give one PNG/TIFF/JPEG image.")
    render_contact_sheet(
        read_image(Path(image_path)),
        Path(out_png),
        severity=severity,
        seed=seed,
        title=Path(image_path).name,
    )
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
    seed: int = typer.Option(0, "--seed", help="Base seed; case i gets a seed spawned from it."),
) -> None:
    """Write synthetic CT/MR/ultrasound/X-ray cases with organ-like label maps."""
    if count < 1:
        raise ConfigError(f"--count must be at least 1; got {count}.")
    if size < MIN_SIZE:
        raise ConfigError(f"--size must be at least {MIN_SIZE}; got {size}.")
    if depth is not None and not three_d:
        raise ConfigError("--depth applies to volumes: add --3d, or drop --depth.")
    shape: tuple[int, ...] = (size, size)
    if three_d:
        shape = (depth if depth is not None else max(size // 4, 8), size, size)
        if shape[0] < 1:
            raise ConfigError(f"--depth must be at least 1; got {depth}.")
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(count)]
    # Build the first case before touching the disk: a bad modality fails with nothing written.
    first = make_phantom(modality, shape=shape, seed=seeds[0])
    kind = first[2]["modality"]
    out = Path(out)
    names: list[str] = []
    for index, case_seed in track(
        list(enumerate(seeds)), description=f"{kind} phantoms", console=console, disable=count < 2
    ):
        image, label, info = (
            first if index == 0 else make_phantom(kind, shape=shape, seed=case_seed)
        )
        name = f"{kind}_{index:03d}"
        if three_d:
            _write_nifti(out / "imagesTr" / f"{name}_0000.nii.gz", image, info["affine"])
            _write_nifti(out / "labelsTr" / f"{name}.nii.gz", label, info["affine"])
        else:
            write_image(out / "images" / f"{name}.png", _display_uint8(image, info))
            write_image(out / "masks" / f"{name}.png", label)
        names.append(name)
    dataset = _dataset_json(first[2], names, three_d, seed, seeds)
    write_text_atomically(out / "dataset.json", json.dumps(dataset, indent=1))
    layout = "imagesTr/ + labelsTr/ (NIfTI)" if three_d else "images/ + masks/ (PNG)"
    console.print(f"wrote {count} {kind} phantoms of shape {shape} to {out}: {layout}")


# --------------------------------------------------------------------------------------------
# Contact sheet
# --------------------------------------------------------------------------------------------


def render_contact_sheet(
    image: np.ndarray,
    out_png: Path,
    *,
    severity: int = PAPER_SEVERITY,
    seed: int = 0,
    title: str | None = None,
) -> Path:
    """Write a 3 × 5 grid: the image and its 12 corruptions, titled with their parameters.

    Args:
        image: (H, W) or (H, W, 3), uint8 or float on 0–255.
        out_png: Where to write; the PNG is 1500 × 960 pixels.

    Returns:
        ``out_png``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [("clean", image, "")]
    for kind in CORRUPTIONS:
        degraded, params = corrupt_with_params(image, kind, severity, seed)
        panels.append((kind, degraded, _summary(params)))

    figure = Figure(figsize=SHEET_SIZE_INCHES, dpi=SHEET_DPI)
    FigureCanvasAgg(figure)
    paper = " (the paper's setting)" if severity == PAPER_SEVERITY else ""
    figure.suptitle(
        f"{title or 'image'}: 12 corruptions at severity {severity}{paper}", fontsize=13
    )
    axes = figure.subplots(3, 5)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (name, panel, summary) in zip(axes.flat, panels, strict=False):
        shown = np.asarray(panel, dtype=np.float64) / 255.0
        ax.imshow(shown, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(f"{name}\n{summary}" if summary else name, fontsize=9)
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.88, wspace=0.05, hspace=0.3)
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        figure.savefig(tmp, format="png", dpi=SHEET_DPI)
    return out_png


def _summary(params: dict[str, Any]) -> str:
    """Short 'key=value' text of the drawn parameters for a panel title (two lines at most)."""
    parts = []
    for key, value in params.items():
        if key in ("kind", "severity", "order"):
            continue
        parts.append(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}")
    return textwrap.fill(", ".join(parts), width=36, max_lines=2, placeholder=" …")


# --------------------------------------------------------------------------------------------
# Reading and writing
# --------------------------------------------------------------------------------------------


def _find_images(path: Path, exclude: Path | None = None) -> tuple[Path, list[Path]]:
    """(root, sorted image files): one file, or every image below a folder.

    Files under ``exclude`` (the output folder, when it lies inside the input) are skipped,
    so a second run does not corrupt the first run's outputs.
    """
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
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
        and p.suffix.lower() in IMAGE_SUFFIXES
        and not p.name.startswith(".")
        and not (exclude is not None and p.resolve().is_relative_to(exclude.resolve()))
    )
    if not files:
        raise DataError(
            f"no PNG/TIFF/JPEG images in {path}; corrupt takes images or a folder of them."
        )
    return path, files


def read_image(path: Path) -> np.ndarray:
    """An image file as (H, W) or (H, W, 3), uint8 or float on 0–255, ready to corrupt."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            array = np.asarray(tifffile.imread(path))
        else:
            from PIL import Image

            with Image.open(path) as opened:
                opened.load()
                if opened.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBA", "RGBX"):
                    opened = opened.convert("RGB")
                elif opened.mode in ("1", "LA"):
                    opened = opened.convert("L")
                array = np.asarray(opened)
    except (OSError, ValueError, SyntaxError) as error:
        raise DataError(f"cannot read the image {path}: {error}") from error
    return _corruptible(array, path)


def _corruptible(array: np.ndarray, path: Path) -> np.ndarray:
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
    if np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer):
        finite = np.isfinite(array).all()
        low, high = (float(array.min()), float(array.max())) if finite else (np.nan, np.nan)
        if finite and 0.0 <= low and high <= 255.0:
            return array.astype(np.uint8) if np.issubdtype(array.dtype, np.integer) else array
        raise InputImageError(
            f"{path} holds {array.dtype} values in [{low:g}, {high:g}]; corruptions work on "
            "8-bit intensities (0–255). Convert it to 8 bits (e.g. with a window or a "
            "percentile normalisation) first."
        )
    raise InputImageError(f"{path} has dtype {array.dtype}; corruptions take 8-bit images.")


def _output_suffix(source: Path) -> str:
    # JPEG sources are written losslessly, or the noise would be re-compressed.
    return ".tif" if source.suffix.lower() in (".tif", ".tiff") else ".png"


def write_image(path: Path, array: np.ndarray) -> Path:
    """Write a PNG (uint8/uint16) or TIFF (any dtype) atomically."""
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        with atomic_path(path) as tmp:
            tifffile.imwrite(tmp, array)
    else:
        from PIL import Image

        with atomic_path(path) as tmp:
            Image.fromarray(array).save(tmp, format="PNG")
    return path


def _write_nifti(path: Path, volume: np.ndarray, affine: np.ndarray) -> None:
    """(D, H, W) volume to NIfTI: stored as (x, y, z), the affine maps to RAS mm."""
    import nibabel as nib

    image = nib.Nifti1Image(np.ascontiguousarray(volume.transpose(2, 1, 0)), affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    with atomic_path(path) as tmp:
        nib.save(image, tmp)


def _display_uint8(image: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """8-bit view of a phantom through its display range (CT: soft-tissue window)."""
    if image.dtype == np.uint8:
        return image
    low, high = info["display_range"]
    scaled = (image.astype(np.float64) - low) / max(high - low, 1e-6)
    return np.rint(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


_NNUNET_CHANNEL = {"ct": "CT", "mr": "T1", "us": "US", "xray": "XR"}
_DISPLAY_NOTE = {
    "ct": "CT soft-tissue window (W 400, L 40) mapped to 0-255",
    "mr": "0 to the 99.5th percentile mapped to 0-255",
    "us": "B-mode grey levels as generated",
    "xray": "12-bit line integrals mapped to 0-255",
}


def _dataset_json(
    info: dict[str, Any], names: Sequence[str], three_d: bool, seed: int, seeds: Sequence[int]
) -> dict[str, Any]:
    labels = {"background": 0, **{name: int(k) for k, name in info["labels"].items()}}
    dataset: dict[str, Any] = {
        "name": f"samforge phantom {info['modality']} {'3D' if three_d else '2D'}",
        "description": "Synthetic cases from samforge.data.phantoms.make_phantom.",
        "modality": info["modality"],
        "labels": labels,
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


def _seed_for(seed: int, relative: Path, kind: str) -> np.random.Generator:
    """A stable stream per (base seed, image, type): adding files never changes the others."""
    file_key = zlib.crc32(relative.as_posix().encode("utf-8"))
    return np.random.default_rng(
        np.random.SeedSequence([seed, file_key, list(CORRUPTIONS).index(kind)])
    )


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()}
