"""Writing files so that nothing half-written is ever left under a real name.

Every file samforge writes (masks, checkpoints, reports, cache entries, downloads) goes
through :func:`atomic_path`: the content is written to a temporary file in the target's
folder and renamed over the target only when writing succeeded (``os.replace`` is atomic
within one file system). A crash, a full disk or an exception leaves the old file (or no
file) and no temporary one.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMPORARY_PREFIX = ".tmp-"
_umask_lock = threading.Lock()


def suffix_of(path: Path) -> str:
    """Lower-case extension, ``.nii.gz`` counted as one."""
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return path.suffix.lower()


def stem_of(path: Path) -> str:
    """File name without its extension (``case.nii.gz`` → ``case``)."""
    suffix = suffix_of(path)
    return path.name[: len(path.name) - len(suffix)] if suffix else path.name


def _current_umask() -> int:
    # os.umask can only be read by setting it; the lock keeps two threads from racing.
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place if the block succeeds.

    The temporary file keeps the target's extension, since libraries choose the format
    (and nibabel the compression) from it. It gets the permissions a newly created file
    would (``0o666`` less the umask), not ``mkstemp``'s private ``0o600``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(
        prefix=f"{TEMPORARY_PREFIX}{path.name}.", suffix=suffix_of(path), dir=path.parent
    )
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes_atomically(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def write_text_atomically(path: Path | str, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return write_bytes_atomically(path, text.encode("utf-8"))


def save_torch_atomically(path: Path | str, obj: object) -> Path:
    """``torch.save(obj)`` to ``path`` atomically; returns ``path``.

    Saved through a file handle, not the temporary file's name: torch names the archive
    inside the file after the path it is given, and the same object must give the same
    bytes (checksums of exported models, cache entries compared across runs).
    """
    import torch

    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        torch.save(obj, handle)
    return Path(path)
