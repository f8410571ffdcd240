"""samforge.files: atomic writes leave the old file or the new one, never a part, and give
written files the permissions any new file gets under the user's umask."""

import os
import stat

import pytest
import torch

from samforge.files import (
    atomic_path,
    save_torch_atomically,
    stem_of,
    suffix_of,
    write_text_atomically,
)


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "mask.nii.gz"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        assert temporary.name.endswith(".nii.gz")  # writers pick the format from it
        temporary.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.nii.gz"]


def test_written_files_follow_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        path = write_text_atomically(tmp_path / "sub" / "a.json", "{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0o666 & ~0o027, not mkstemp's 0o600


def test_torch_files_are_byte_identical_for_the_same_object(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3)}
    first = save_torch_atomically(tmp_path / "a.pth", state).read_bytes()
    second = save_torch_atomically(tmp_path / "b.pth", state).read_bytes()
    assert first == second
    assert torch.equal(torch.load(tmp_path / "a.pth", weights_only=True)["w"], state["w"])


@pytest.mark.parametrize(
    ("name", "suffix", "stem"),
    [("CT.NII.GZ", ".nii.gz", "CT"), ("a.b.png", ".png", "a.b"), ("README", "", "README")],
)
def test_suffix_and_stem(tmp_path, name, suffix, stem):
    assert suffix_of(tmp_path / name) == suffix
    assert stem_of(tmp_path / name) == stem
