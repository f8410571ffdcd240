"""Paths named inside a dataset index: where they start from, and that they stay inside.

An index (SA-Med2D-20M's JSON files) names image and mask files by relative paths. As
published, they start from the index's own folder or from one of its ancestors:
SAM-Med2D's ``data_demo/image2label_train.json`` says ``data_demo/images/x.png`` (from the
repository root, the index's parent), SAM-UNet's ``data_demo/test/label2image_test.json``
says ``test/masks/x.png``. :func:`index_root` takes the nearest folder from which the
index's first image exists, among the index's folder and those ancestors whose path down to
the index's folder the entry spells out; that folder is the dataset root.

Every entry must stay inside that root: an absolute path or one that climbs out with
``..`` is refused when the index is opened (:func:`checked_entry`), and a path that leaves
the root through a symbolic link is refused before the file is read (:func:`inside_root`).
Each refusal names the entry and the index.
"""

from __future__ import annotations

import posixpath
from pathlib import Path, PurePosixPath

from ...errors import DataError


def checked_entry(entry: object, index_file: Path) -> PurePosixPath:
    """An index entry as a normalised relative path.

    Raises:
        DataError: not a string, absolute, or leaving the folder it starts from.
    """
    if not isinstance(entry, str) or not entry.strip():
        raise DataError(f"{index_file}: entry {entry!r} is not a file path.")
    text = entry.replace("\\", "/")
    if text.startswith("/") or PurePosixPath(text).is_absolute() or _has_drive(text):
        raise DataError(
            f"{index_file}: entry {entry!r} is an absolute path; an index may only name "
            "files inside its dataset folder, by paths relative to it."
        )
    normal = posixpath.normpath(text)
    if normal == ".." or normal.startswith("../"):
        raise DataError(
            f"{index_file}: entry {entry!r} points outside the dataset folder (it climbs out "
            "with '..'); an index may only name files inside its dataset folder."
        )
    return PurePosixPath(normal)


def index_root(index_file: Path, first_image: PurePosixPath) -> Path:
    """The folder the index's entries start from (see the module docstring).

    Raises:
        DataError: the first image exists from none of the candidate folders.
    """
    folder = index_file.parent
    tried = []
    for candidate in (folder, *folder.parents):
        down = folder.relative_to(candidate).parts
        if first_image.parts[: len(down)] != down:
            continue
        tried.append(candidate)
        if (candidate / first_image).is_file():
            return candidate
    shown = ", ".join(str(c) for c in tried)
    raise DataError(
        f"{index_file}: its first image {str(first_image)!r} is not found from {shown}. Index "
        "paths start from the index's folder or from the ancestor they name (SAM-Med2D's "
        "data_demo/image2label_train.json says data_demo/images/...); check that the images "
        "were unpacked beside the index."
    )


def inside_root(root: Path, entry: PurePosixPath, index_file: Path) -> Path:
    """``root / entry`` once every symbolic link on the way is resolved, if it stays inside
    ``root``.

    Raises:
        DataError: the resolved path lies outside the root.
    """
    path = (root / entry).resolve()
    if not path.is_relative_to(root.resolve()):
        raise DataError(
            f"{index_file}: entry {str(entry)!r} resolves to {path}, outside the dataset folder "
            f"{root} (through a symbolic link); samforge reads only files inside it."
        )
    return path


def _has_drive(text: str) -> bool:
    return len(text) > 1 and text[1] == ":" and text[0].isalpha()
