"""The data folder: the only files the annotator opens, read-only.

A path from a request is a relative POSIX path below the folder. Absolute paths, ``..``
components, backslashes and NUL bytes are refused before touching the disk, and what is left
is resolved (symlinks followed) and must still lie inside the folder, so a symlink that
leads out of it is refused too. Percent-encoded forms (``%2e%2e%2f``) arrive decoded and
meet the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..data.readers._common import (
    DICOM_SUFFIXES,
    NIFTI_SUFFIXES,
    PIL_SUFFIXES,
    TIFF_SUFFIXES,
    is_dicom_file,
)
from ..errors import AccessError, NotFoundError
from ..files import suffix_of

IMAGE_SUFFIXES = PIL_SUFFIXES + TIFF_SUFFIXES + DICOM_SUFFIXES
MAX_PATH = 4096
MAX_LISTING = 5000
_SERIES_PROBE = 64  # files looked at to tell a DICOM series folder


@dataclass(frozen=True)
class Entry:
    """One row of a folder listing: kind is folder, series (a DICOM series folder), volume
    (NIfTI) or image."""

    name: str
    path: str
    kind: str
    size: int

    def to_json(self) -> dict:
        return {"name": self.name, "path": self.path, "kind": self.kind, "size": self.size}


class DataFolder:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def resolve(self, relative: str) -> Path:
        """The file or folder ``relative`` names, after every check (see the module doc).

        Raises:
            AccessError: the path leaves the folder or is malformed.
            NotFoundError: nothing is there.
        """
        if not isinstance(relative, str) or len(relative) > MAX_PATH or "\x00" in relative:
            raise AccessError("a path must be a string without NUL bytes.")
        if "\\" in relative:
            raise AccessError(f"{relative!r}: use '/' between folder names, not '\\'.")
        pure = PurePosixPath(relative)
        if pure.is_absolute() or relative.startswith("~"):
            raise AccessError(
                f"{relative!r} is absolute: paths are relative to the data folder the "
                "annotator serves."
            )
        if ".." in pure.parts:
            raise AccessError(f"{relative!r} leaves the data folder ('..' is not allowed).")
        resolved = (self.root / pure).resolve()
        if not resolved.is_relative_to(self.root):
            raise AccessError(f"{relative!r} leads outside the data folder (through a link).")
        if not resolved.exists():
            raise NotFoundError(f"{relative!r} does not exist in the data folder.")
        return resolved

    def relative(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

    def list(self, relative: str = "") -> list[Entry]:
        """The folders and readable images directly in ``relative``: hidden files, links
        that lead outside and unsupported files are left out."""
        folder = self.resolve(relative or ".")
        if not folder.is_dir():
            raise NotFoundError(f"{relative!r} is a file, not a folder.")
        entries: list[Entry] = []
        for child in sorted(folder.iterdir(), key=lambda path: path.name.lower()):
            if child.name.startswith(".") or len(entries) >= MAX_LISTING:
                continue
            target = child.resolve()
            if not target.is_relative_to(self.root):
                continue
            kind = _kind(target)
            if kind is not None:
                size = target.stat().st_size if target.is_file() else 0
                path = (PurePosixPath(relative or ".") / child.name).as_posix()
                entries.append(Entry(child.name, path.removeprefix("./"), kind, size))
        return entries


def _kind(path: Path) -> str | None:
    if path.is_dir():
        return "series" if _holds_dicom(path) else "folder"
    suffix = suffix_of(path)
    if suffix in NIFTI_SUFFIXES:
        return "volume"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    return None


def _holds_dicom(folder: Path) -> bool:
    """Whether ``folder`` directly holds DICOM files (a series to open as one volume)."""
    try:
        for number, child in enumerate(folder.iterdir()):
            if number >= _SERIES_PROBE:
                break
            if child.is_file() and (suffix_of(child) in DICOM_SUFFIXES or is_dicom_file(child)):
                return True
    except OSError:
        return False
    return False
