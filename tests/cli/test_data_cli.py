"""``samforge data corrupt``, ``data phantom`` and ``data contact-sheet``: the command
functions, called directly on temporary folders.

Typer's defaults are ``OptionInfo`` objects, so every argument is passed explicitly.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import tifffile
from PIL import Image

from samforge.cli import data_synthetic as ds
from samforge.data.corrupted_copies import corruption_seed
from samforge.data.corruptions import CORRUPTIONS, corrupt
from samforge.data.phantoms import make_phantom
from samforge.errors import ConfigError, DataError, InputImageError


def run_corrupt(path, out, types=None, severity=3, seed=0, sheet=None):
    ds.corrupt(path=path, out=out, types=types, severity=severity, seed=seed, sheet=sheet)


def run_phantom(out, modality="ct", three_d=False, count=2, size=64, depth=None, seed=0):
    ds.phantom(
        out=out, modality=modality, three_d=three_d, count=count, size=size, depth=depth,
        seed=seed,
    )  # fmt: skip


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name]


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Two grey PNGs (one in a subfolder), an RGB JPEG and a float TIFF."""
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    grey = (rng.random((40, 48)) * 200 + 20).astype(np.uint8)
    Image.fromarray(grey).save(folder / "a.png")
    Image.fromarray(grey[::-1]).save(folder / "sub" / "b.png")
    Image.fromarray(np.stack([grey] * 3, -1)).save(folder / "c.jpg", quality=95)
    tifffile.imwrite(folder / "d.tif", grey.astype(np.float32) / 2)
    (folder / "notes.txt").write_text("not an image")
    return folder


# --- corrupt ----------------------------------------------------------------------------------


def test_corrupt_folder_writes_every_type_and_a_manifest(image_folder, tmp_path):
    out = tmp_path / "out"
    run_corrupt(image_folder, out, types=["mri", "jpeg"], severity=2, seed=4)
    kinds = ("jpeg", "rician", "rayleigh", "step_motion")
    for kind in kinds:
        assert sorted(p.relative_to(out / kind).as_posix() for p in (out / kind).rglob("*.*")) == [
            "a.png", "c.png", "d.tif", "sub/b.png",
        ]  # fmt: skip
    rgb = np.asarray(Image.open(out / "rician" / "c.png"))
    assert rgb.shape == (40, 48, 3) and rgb.dtype == np.uint8
    floats = tifffile.imread(out / "rician" / "d.tif")
    assert floats.dtype == np.float32 and floats.shape == (40, 48)
    manifest = json.loads((out / "corruptions.json").read_text())
    assert manifest["severity"] == 2 and manifest["types"] == list(kinds)
    assert len(manifest["images"]) == 16
    entry = next(e for e in manifest["images"] if e["kind"] == "jpeg")
    assert 12 <= entry["quality"] <= 20  # severity 2's quality range
    assert not leftovers(out)


def test_corrupt_is_reproducible_and_seeded_per_image(image_folder, tmp_path):
    run_corrupt(image_folder, tmp_path / "one", types=["gaussian_noise"], seed=1)
    run_corrupt(image_folder, tmp_path / "two", types=["gaussian_noise"], seed=1)
    run_corrupt(image_folder, tmp_path / "three", types=["gaussian_noise"], seed=2)

    def read(root: str, name: str) -> np.ndarray:
        return np.asarray(Image.open(tmp_path / root / "gaussian_noise" / name))

    np.testing.assert_array_equal(read("one", "a.png"), read("two", "a.png"))
    assert not np.array_equal(read("one", "a.png"), read("three", "a.png"))
    # Same content under another name gets other noise: seeds follow the file.
    clean_a = np.asarray(Image.open(image_folder / "a.png")).astype(int)
    clean_b = np.asarray(Image.open(image_folder / "sub" / "b.png")).astype(int)
    noise_a = read("one", "a.png") - clean_a
    noise_b = read("one", "sub/b.png") - clean_b
    assert not np.array_equal(noise_a, noise_b[::-1])


def test_corrupt_skips_its_own_outputs_inside_the_input(image_folder):
    out = image_folder / "degraded"
    run_corrupt(image_folder, out, types=["brightness"])
    run_corrupt(image_folder, out, types=["brightness"])  # a second run sees the same inputs
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*"))
    assert written == [
        "brightness/a.png", "brightness/c.png", "brightness/d.tif", "brightness/sub/b.png",
        "corruptions.json",
    ]  # fmt: skip


def test_corrupt_single_file_with_contact_sheet(image_folder, tmp_path):
    out, sheet = tmp_path / "out", tmp_path / "sheet.png"
    run_corrupt(image_folder / "a.png", out, types=None, severity=3, seed=0, sheet=sheet)
    assert sorted(p.name for p in out.iterdir()) == sorted([*CORRUPTIONS, "corruptions.json"])
    written = np.asarray(Image.open(out / "contrast" / "a.png"))
    clean = np.asarray(Image.open(image_folder / "a.png"))
    assert written.shape == clean.shape and not np.array_equal(written, clean)
    with Image.open(sheet) as png:
        assert png.size == (1500, 960)


@pytest.mark.parametrize(
    ("setup", "kwargs", "error", "match"),
    [
        (None, {"path": "missing"}, DataError, "does not exist"),
        ("empty", {}, DataError, "no PNG/TIFF/JPEG images"),
        ("text", {}, DataError, "is not a PNG/TIFF/JPEG image"),
        ("truncated", {}, DataError, r"cannot read .*broken\.png as an image"),
        ("sixteen", {}, InputImageError, r"deep\.png holds uint16 values in \[0, 4000\]"),
        ("good", {"types": ["fog"]}, ConfigError, "unknown corruption 'fog'"),
        ("good", {"severity": 7}, ConfigError, "severity must be 1–5"),
    ],
)
def test_corrupt_errors_name_the_problem(tmp_path, setup, kwargs, error, match):
    source = tmp_path / "in"
    source.mkdir()
    if setup == "text":
        source = source / "notes.txt"
        source.write_text("hello")
    elif setup == "truncated":
        buffer = tmp_path / "full.png"
        Image.fromarray(np.zeros((32, 32), np.uint8) + 7).save(buffer)
        (source / "broken.png").write_bytes(buffer.read_bytes()[:40])
    elif setup == "sixteen":
        Image.fromarray(np.linspace(0, 4000, 64 * 64).reshape(64, 64).astype(np.uint16)).save(
            source / "deep.png"
        )
    elif setup == "good":
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(source / "ok.png")
    path = tmp_path / kwargs.pop("path") if "path" in kwargs else source
    out = tmp_path / "out"
    with pytest.raises(error, match=match):
        run_corrupt(path, out, **kwargs)
    if setup == "good":
        assert not out.exists()  # configuration errors are raised before anything is written


# --- contact sheet ----------------------------------------------------------------------------


def test_contact_sheet_shows_all_twelve(tmp_path):
    image, _, _ = make_phantom("us", shape=(96, 128), seed=0)
    Image.fromarray(image).save(tmp_path / "us.png")
    out = tmp_path / "sheets" / "sheet.png"
    ds.contact_sheet(image_path=tmp_path / "us.png", out_png=out, severity=3, seed=0)
    with Image.open(out) as png:
        assert png.size == (1500, 960)
        pixels = np.asarray(png.convert("L")).astype(float)
    assert pixels.std() > 20  # images and titles, not a blank page
    # Thirteen panels on a white page: the 3 × 5 grid has 2 empty cells at the bottom right.
    assert pixels[700:, 1000:].min() > 250 and pixels[700:, :300].min() < 50
    assert not leftovers(out.parent)
    with pytest.raises(DataError, match="not a file"):
        ds.contact_sheet(image_path=tmp_path, out_png=out, severity=3, seed=0)


# --- phantom ----------------------------------------------------------------------------------


def test_phantom_2d_writes_pngs_and_labels(tmp_path):
    out = tmp_path / "mr2d"
    run_phantom(out, modality="mr", count=3, size=64, seed=5)
    images = sorted((out / "images").iterdir())
    masks = sorted((out / "masks").iterdir())
    assert [p.name for p in images] == [p.name for p in masks] == [
        "mr_000.png", "mr_001.png", "mr_002.png",
    ]  # fmt: skip
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["labels"]["background"] == 0 and dataset["labels"]["liver"] == 1
    assert dataset["numTraining"] == 3 and dataset["file_ending"] == ".png"
    for name, case in dataset["cases"].items():
        image, label, _ = make_phantom("mr", shape=(64, 64), seed=case["seed"])
        mask = np.asarray(Image.open(out / "masks" / f"{name}.png"))
        np.testing.assert_array_equal(mask, label)
        png = np.asarray(Image.open(out / "images" / f"{name}.png"))
        assert png.dtype == np.uint8 and png.shape == image.shape and png.max() > 200
    assert not leftovers(out)


def test_phantom_3d_writes_nifti_with_geometry(tmp_path):
    out = tmp_path / "ct3d"
    run_phantom(out, modality="ct", three_d=True, count=1, size=64, depth=12, seed=0)
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["channel_names"] == {"0": "CT"} and dataset["file_ending"] == ".nii.gz"
    seed = dataset["cases"]["ct_000"]["seed"]
    image, label, info = make_phantom("ct", shape=(12, 64, 64), seed=seed)
    volume = nib.load(out / "imagesTr" / "ct_000_0000.nii.gz")
    labels = nib.load(out / "labelsTr" / "ct_000.nii.gz")
    assert volume.shape == (64, 64, 12)
    assert volume.get_data_dtype() == np.int16 and labels.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(volume.dataobj).transpose(2, 1, 0), image)
    np.testing.assert_array_equal(np.asarray(labels.dataobj).transpose(2, 1, 0), label)
    np.testing.assert_allclose(volume.affine, info["affine"], atol=1e-5)
    np.testing.assert_allclose(labels.affine, volume.affine)
    dz, dy, dx = info["spacing"]
    np.testing.assert_allclose(volume.header.get_zooms(), (dx, dy, dz), rtol=1e-6)
    assert nib.aff2axcodes(volume.affine) == ("L", "P", "S")
    assert not leftovers(out)


def test_phantom_options_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="unknown phantom modality"):
        run_phantom(tmp_path / "a", modality="pet")
    with pytest.raises(ConfigError, match="2D projections"):
        run_phantom(tmp_path / "b", modality="xray", three_d=True)
    with pytest.raises(ConfigError, match="--depth"):
        run_phantom(tmp_path / "c", depth=4)
    with pytest.raises(ConfigError, match="--count"):
        run_phantom(tmp_path / "d", count=0)
    with pytest.raises(ConfigError, match="--size"):
        run_phantom(tmp_path / "e", size=8)
    assert not any(tmp_path.iterdir())  # nothing written for a bad request


def test_an_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    def broken_save(image, filename):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(nib, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        run_phantom(tmp_path / "vol", modality="mr", three_d=True, count=1, size=40, depth=4)
    assert not list((tmp_path / "vol").rglob("*.nii.gz"))
    assert not leftovers(tmp_path)


def test_corrupted_phantoms_round_trip(tmp_path):
    """Phantom PNGs written by one command are valid input of the other."""
    run_phantom(tmp_path / "us", modality="us", count=1, size=48, seed=0)
    run_corrupt(tmp_path / "us" / "images", tmp_path / "bad", types=["speckle"], seed=0)
    clean = np.asarray(Image.open(tmp_path / "us" / "images" / "us_000.png"))
    degraded = np.asarray(Image.open(tmp_path / "bad" / "speckle" / "us_000.png"))
    rng = corruption_seed(0, Path("us_000.png"), "speckle")
    np.testing.assert_array_equal(degraded, corrupt(clean, "speckle", 3, rng))
