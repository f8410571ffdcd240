"""Outputs: never over an input (item 1), the user's permissions (item 13), and a one-line
refusal with nothing half-written wherever the output cannot go (the tracebacks paragraph)."""

from __future__ import annotations

import errno
import os
import stat

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from helpers.hostile import BOX, leftovers
from samforge.models import build_model, export_official
from samforge.models.config import VIT_TEST


@pytest.mark.parametrize("link", ["same file", "symlink", "hard link"])
def test_segment_never_writes_over_its_input(samforge, box_model, png, tmp_path, link):
    original = png.read_bytes()
    if link == "same file":
        output = png
    elif link == "symlink":
        output = tmp_path / "mask.png"
        output.symlink_to(png)
    else:
        output = tmp_path / "mask.png"
        os.link(png, output)
    samforge("segment", png, *BOX, "--model", "m", "-o", output).refused("input", str(png))
    assert png.read_bytes() == original
    assert not leftovers(tmp_path)


def test_a_written_mask_gets_the_users_normal_permissions(samforge, box_model, png, tmp_path):
    previous = os.umask(0o022)
    try:
        output = tmp_path / "mask.png"
        assert samforge("segment", png, *BOX, "--model", "m", "-o", output).code == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(output.stat().st_mode) == 0o644  # 0o666 less the umask, like `touch`


def test_output_in_a_read_only_folder(samforge, box_model, png, read_only_folder):
    output = read_only_folder / "mask.png"
    samforge("segment", png, *BOX, "--model", "m", "-o", output).refused("cannot write")
    assert list(read_only_folder.iterdir()) == []


def test_a_disk_that_fills_up_while_the_mask_is_written(samforge, box_model, small_disk, tmp_path):
    """An uncompressed 200×120×12 NIfTI mask (288 KB) does not fit a 64 KiB tmpfs."""
    volume = tmp_path / "ct.nii"
    data = np.random.default_rng(0).normal(0, 100, size=(200, 120, 12)).astype(np.int16)
    nib.save(nib.Nifti1Image(data, np.eye(4)), volume)
    output = small_disk / "mask.nii"
    outcome = samforge("segment", volume, "--slice", 3, *BOX, "--model", "m", "-o", output)
    outcome.refused("disk is full")
    assert list(small_disk.iterdir()) == []


def test_a_full_disk_while_writing_the_mask(samforge, box_model, png, tmp_path, monkeypatch):
    """The disk fills while the PNG is written: the write raises ENOSPC half-way."""

    def full(self, fp, *args, **kwargs):
        with open(fp, "wb") as handle:
            handle.write(b"\x89PNG half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Image.Image, "save", full)
    output = tmp_path / "out" / "mask.png"
    samforge("segment", png, *BOX, "--model", "m", "-o", output).refused("disk is full")
    assert not output.exists() and not leftovers(tmp_path)


def test_output_that_is_a_folder(samforge, box_model, png, tmp_path):
    folder = tmp_path / "masks"
    folder.mkdir()
    samforge("segment", png, *BOX, "--model", "m", "-o", folder).refused("is a folder")
    assert list(folder.iterdir()) == []


def test_output_under_a_path_whose_parent_is_a_file(samforge, box_model, png, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me")
    output = blocker / "sub" / "mask.png"
    samforge("segment", png, *BOX, "--model", "m", "-o", output).refused("not a folder")
    assert blocker.read_text() == "keep me"


def test_a_254_byte_file_name(samforge, box_model, png, tmp_path):
    """254 bytes is legal (the limit is 255): it is written, with no too-long temporary name."""
    output = tmp_path / ("m" * 250 + ".png")
    assert len(os.fsencode(output.name)) == 254
    assert samforge("segment", png, *BOX, "--model", "m", "-o", output).code == 0
    mask = np.asarray(Image.open(output))
    assert mask[10, 10] == 1 and mask[35, 50] == 0
    assert not leftovers(tmp_path)


def test_a_256_byte_file_name(samforge, box_model, png, tmp_path):
    output = tmp_path / ("m" * 252 + ".png")
    samforge("segment", png, *BOX, "--model", "m", "-o", output).refused("at most 255")
    assert not leftovers(tmp_path)


def test_fuse_never_writes_over_a_source_checkpoint(samforge, tmp_path):
    source = tmp_path / "tiny.safetensors"
    export_official(build_model(VIT_TEST), source)
    original = source.read_bytes()
    outcome = samforge(
        "fuse", "--image-encoder", source, "--mask-decoder", "samforge_random_tiny", "-o", source
    )
    outcome.refused("input", str(source))
    assert source.read_bytes() == original


def test_contact_sheet_never_writes_over_its_image(samforge, png):
    original = png.read_bytes()
    samforge("data", "contact-sheet", png, png).refused("input")
    assert png.read_bytes() == original
