"""Writing files so that nothing half-written is ever left under a real name, and nothing
is written where it must not be.

Every file samforge writes (masks, checkpoints, reports, cache entries, downloads) goes
through :func:`atomic_path`: the content is written to a temporary file in the target's
folder and renamed over the target only when writing succeeded (``os.replace`` is atomic
within one file system). A crash, a full disk or an exception leaves the old file (or no
file) and no temporary one. A write that the file system refuses (read-only, full, no
permission, a name too long, a file where a folder should be) raises :class:`OutputError`
saying so, in one line.

Commands check their outputs before they start (:func:`check_output_file`: not one of the
inputs, not a folder, a writable place) and hold their output folders with
:func:`locked_folder`, so that two runs never write one folder at once.
"""

from __future__ import annotations

import errno
import os
import shlex
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .errors import OutputError

TEMPORARY_PREFIX = ".tmp-"
LOCK_NAME = ".samforge.lock"
# POSIX file systems allow 255 bytes per name (ext4, xfs, btrfs, tmpfs, APFS, NTFS in UTF-16).
NAME_MAX = 255
# Bytes of the target's name kept in its temporary file's name (recognisable, never too long).
_NAME_IN_TEMPORARY = 64
_umask_lock = threading.Lock()

# What a user can do when the file system refuses a write, by errno. Other OSErrors are
# not about the place written to (a bug, a reading error) and pass through unchanged.
_WRITE_FAILURES = {
    errno.ENOSPC: "the disk is full; free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up; free some space or write elsewhere",
    errno.EFBIG: "the file would exceed the file size limit (see `ulimit -f`); write elsewhere",
    errno.EROFS: "the file system is read-only; write elsewhere",
    errno.EACCES: "you may not write there; choose another place or change its permissions",
    errno.EPERM: "you may not write there; choose another place or change its permissions",
    errno.ENAMETOOLONG: f"a name in the path is too long (at most {NAME_MAX} bytes); shorten it",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another place",
    errno.EEXIST: "a part of the path is a file, not a folder; choose another place",
    errno.EISDIR: "it is a folder; give the path of a file",
}


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


def output_error(path: Path | str, error: OSError) -> OutputError | None:
    """The :class:`OutputError` for a write to ``path`` the file system refused, or None
    when ``error`` is not about the place written to."""
    advice = _WRITE_FAILURES.get(error.errno or 0)
    if advice is None:
        return None
    return OutputError(f"cannot write {path}: {error.strerror or error}; {advice}.")


@contextmanager
def _refusals_as_output_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except (OSError, RuntimeError) as error:
        # Libraries that write through their own code re-raise the OSError as another
        # error (torch.save: a RuntimeError from its zip writer); look down the chain.
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__cause__ or cause.__context__
        converted = None if cause is None else output_error(path, cause)
        if converted is None:
            raise
        raise converted from None


def check_output_file(path: Path | str, inputs: Iterable[Path | str] = ()) -> Path:
    """Refuse, before any work, an output path that cannot or must not be written.

    Checks that ``path`` is not a folder, that its name fits the file system, that no part
    of its folder is a file, that the nearest existing folder takes new files, and that it
    is none of ``inputs`` (also through a symbolic or hard link, or a file inside an input
    folder). Creates nothing.

    Raises:
        OutputError: saying which check failed and what to do.
    """
    path = Path(path)
    size = len(os.fsencode(path.name))
    if size > NAME_MAX:  # checked first: the file system refuses even to look such a name up
        raise OutputError(
            f"cannot write {path}: its name is {size} bytes and file systems allow at most "
            f"{NAME_MAX}; choose a shorter name."
        )
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give the path of a file, e.g. {path / 'mask.png'}.")
    for source in inputs:
        if _is_input(path, Path(source)):
            raise OutputError(
                f"{path} is the input {source} (the same file, or a link to it): writing "
                "there would destroy the input. Choose another output path."
            )
    _probe_writable(path.parent)
    return path


def _is_input(path: Path, source: Path) -> bool:
    if not path.exists():
        return False
    if source.is_dir():
        inside = (p for p in source.rglob("*") if p.is_file())
        return any(_same_file(path, p) for p in inside)
    return _same_file(path, source)


def _same_file(first: Path, second: Path) -> bool:
    try:
        return os.path.samefile(first, second)  # device and inode: symlinks, hard links
    except OSError:
        return False


def _probe_writable(folder: Path) -> None:
    """Create and remove a file in ``folder``, or in its nearest existing ancestor."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(
            f"cannot write into {folder}: {existing} is a file, not a folder; choose another place."
        )
    with _refusals_as_output_errors(folder):
        with tempfile.TemporaryFile(prefix=TEMPORARY_PREFIX, dir=existing):
            pass


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place if the block succeeds.

    The temporary file keeps the target's extension, since libraries choose the format
    (and nibabel the compression) from it, and a short name, so that a target whose name
    is near the file system's limit can still be written. It gets the permissions a newly
    created file would (``0o666`` less the umask), not ``mkstemp``'s private ``0o600``.

    Raises:
        OutputError: the target is a folder, or the file system refuses the write (full,
            read-only, no permission, a file where a folder should be, name too long).
    """
    path = Path(path)
    kept = os.fsencode(path.name)[:_NAME_IN_TEMPORARY].decode(errors="ignore")
    with _refusals_as_output_errors(path):
        if path.is_dir():
            raise OutputError(f"{path} is a folder; give the path of a file.")
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            prefix=f"{TEMPORARY_PREFIX}{kept}.", suffix=suffix_of(path), dir=path.parent
        )
    os.close(handle)
    temporary = Path(name)
    try:
        with _refusals_as_output_errors(path):
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


@contextmanager
def locked_folder(folder: Path | str) -> Iterator[Path]:
    """Hold ``folder`` (created if missing) for the block, so no other run writes into it.

    The lock is an exclusive ``flock`` on ``folder/.samforge.lock``, which names its
    holder (process, host, start time, command). The operating system releases it when the
    block ends or the process dies, even by ``kill -9``, so a lock is never stale. (flock
    works between processes of one machine; on network file systems it depends on the
    server.) The lock file is not an output: it stays, empty, when the block ends.

    Raises:
        OutputError: another process holds the folder (the message names it), or the
            folder cannot be created or written.
    """
    folder = Path(folder)
    with _refusals_as_output_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / LOCK_NAME, "a+", encoding="utf-8")
    with handle:
        if not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "a process that has not yet said which"
            raise OutputError(
                f"{folder} is in use by another samforge run ({holder}); wait until it has "
                "finished, or choose another output folder."
            )
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(_holder())
            handle.flush()
            yield folder
        finally:
            handle.seek(0)
            handle.truncate()


def _try_lock(handle: IO[str]) -> bool:
    """Take the lock on ``handle`` without waiting; False when someone else holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: lock the file's first byte instead
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder() -> str:
    command = " ".join(shlex.quote(arg) for arg in ["samforge", *sys.argv[1:]])
    if len(command) > 200:
        command = command[:199] + "…"
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"pid {os.getpid()} on {socket.gethostname()}, since {started}: {command}"
