"""Downloading registered checkpoints into a local cache, with checksum verification.

The cache is ``$SAMFORGE_CACHE`` or ``~/.cache/samforge``; checkpoints live in its
``models/`` folder under the registry's file names, so a file downloaded by hand can be put
there (:func:`cached_path` says where) and is then verified like a downloaded one.

Nothing half-written is ever left under the final name: the download goes to a temporary
file in the same folder, is verified, then renamed with ``os.replace`` (atomic on one
file system).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.client
import os
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

from ...errors import DownloadError
from ...files import atomic_path
from .registry import ModelSpec

CACHE_ENV = "SAMFORGE_CACHE"
DEFAULT_CACHE = Path("~/.cache/samforge")
CHUNK_SIZE = 1 << 20
TIMEOUT_S = 60.0


def cache_dir() -> Path:
    """Root of samforge's cache (read at each call, so the variable can change)."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def cached_path(spec: ModelSpec) -> Path:
    """Where the checkpoint of ``spec`` is (or will be) stored."""
    if spec.filename is None:
        raise DownloadError(f"{spec.name} is built into samforge; it has no checkpoint file.")
    return cache_dir() / "models" / spec.filename


def packaged_weights_dir() -> Path:
    """The folder of the weights that ship inside samforge."""
    return Path(str(resources.files("samforge") / "weights"))


def packaged_path(spec: ModelSpec) -> Path:
    """The verified file of a model shipped inside samforge (``samforge/weights``).

    Raises:
        DownloadError: the file is missing or does not match its checksum (a damaged
            installation).
    """
    path = packaged_weights_dir() / str(spec.filename)
    if not path.is_file():
        raise DownloadError(
            f"{spec.name} ships with samforge as {path}, but that file is missing: the "
            "installation is incomplete. Reinstall samforge (pip install --force-reinstall)."
        )
    actual = _verified_digest(path, spec.checksum_algorithm or "sha256")
    if actual != spec.checksum_digest:
        raise DownloadError(
            f"{path} (the weights of {spec.name}) has {spec.checksum_algorithm} {actual} but "
            f"{spec.checksum_digest} is expected: the installation is damaged or the file was "
            "replaced. Reinstall samforge (pip install --force-reinstall)."
        )
    return path


@functools.lru_cache(maxsize=8)
def _verified_digest_cached(path: str, algorithm: str, size: int, mtime_ns: int) -> str:
    return file_digest(Path(path), algorithm)


def _verified_digest(path: Path, algorithm: str) -> str:
    # Hashed once per process and file version: the demo loads the model many times.
    stat = path.stat()
    return _verified_digest_cached(str(path), algorithm, stat.st_size, stat.st_mtime_ns)


def is_cached(spec: ModelSpec) -> bool:
    """Whether the file is in the cache (without verifying it: that reads the whole file)."""
    return spec.filename is not None and cached_path(spec).is_file()


def new_hasher(algorithm: str) -> Any:
    """An incremental hasher with ``update`` and ``hexdigest`` for a registry algorithm."""
    if algorithm in ("sha256", "md5"):
        return hashlib.new(algorithm)
    if algorithm == "xxh128":
        try:
            import xxhash
        except ImportError:
            raise DownloadError(
                "verifying this checkpoint needs its published xxh128 checksum, which needs the "
                "`xxhash` package: run `pip install xxhash` and try again."
            ) from None
        return xxhash.xxh128()
    raise DownloadError(f"unknown checksum algorithm {algorithm!r}; use sha256, md5 or xxh128.")


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks."""
    hasher = new_hasher(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_SIZE), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def fetch(spec: ModelSpec, progress: bool = True, *, timeout: float = TIMEOUT_S) -> Path:
    """Path of the verified checkpoint of ``spec``, downloading it first if needed.

    Args:
        spec: a registered model with ``init == "checkpoint"``.
        progress: show a progress bar while downloading.
        timeout: seconds without data before the download is given up.

    Raises:
        DownloadError: the download failed (the message names the URL, the cache path where
            the file can be put by hand and the expected checksum), or a file in the cache or
            the downloaded file does not match the checksum.
    """
    if spec.init == "random":
        raise DownloadError(
            f"{spec.name} is built into samforge (randomly initialised): there is nothing to "
            "download; load it with samforge.load_model."
        )
    if spec.init == "package":
        return packaged_path(spec)
    path = cached_path(spec)
    if spec.checksum_algorithm is not None:
        new_hasher(spec.checksum_algorithm)  # before any download: fail early without xxhash
    if path.is_file():
        _verify_cached(spec, path)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    _download(spec, path, progress=progress, timeout=timeout)
    return path


def _verify_cached(spec: ModelSpec, path: Path) -> None:
    if spec.checksum_algorithm is None:
        return  # nothing published to compare with
    actual = file_digest(path, spec.checksum_algorithm)
    if actual != spec.checksum_digest:
        raise DownloadError(
            f"the file in the cache for {spec.name}, {path}, has {spec.checksum_algorithm} "
            f"{actual} but {spec.checksum_digest} is expected: it is incomplete, corrupt or a "
            f"different file. Delete it and run `samforge models fetch {spec.name}`, or put the "
            f"right file there by hand (from {spec.url})."
        )


def _download(spec: ModelSpec, path: Path, *, progress: bool, timeout: float) -> None:
    # Without a published checksum, still hash (sha256) so the user can record it.
    hasher = new_hasher(spec.checksum_algorithm or "sha256")
    try:
        with atomic_path(path) as temp, open(temp, "wb") as out:
            _stream(spec.url, out, hasher, progress=progress, timeout=timeout, label=spec.name)
            actual = hasher.hexdigest()
            if spec.checksum is not None and actual != spec.checksum_digest:
                raise DownloadError(
                    f"the file downloaded from {spec.url} has {spec.checksum_algorithm} {actual} "
                    f"but {spec.checksum_digest} is expected, so it was discarded: the download "
                    "was corrupted or the server now serves another file. Try again; if it "
                    f"persists, download it by hand, check it, and put it at {path}."
                )
    except DownloadError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as error:
        # URLError, HTTPError, refused connections and timeouts are all OSErrors.
        raise DownloadError(_offline_message(spec, path, error)) from error
    if spec.checksum is None:
        warnings.warn(
            f"{spec.name}: no checksum is published for {spec.url}, so the download could not be "
            f"verified; its sha256 is {actual}. Compare it with a trusted copy.",
            stacklevel=3,
        )


def _offline_message(spec: ModelSpec, path: Path, error: BaseException) -> str:
    reason = getattr(error, "reason", None) or error
    expected = (
        f"{spec.checksum_algorithm} {spec.checksum_digest}"
        if spec.checksum is not None
        else "no published checksum"
    )
    return (
        f"could not download {spec.name} from {spec.url} ({reason}). If this machine is offline, "
        f"download the file elsewhere and put it at {path} (expected {expected}); samforge "
        "verifies it there on first use. Set SAMFORGE_CACHE to use another cache folder."
    )


def _stream(
    url: str | None,
    out: BinaryIO,
    hasher: Any,
    *,
    progress: bool,
    timeout: float,
    label: str,
) -> None:
    """Copy ``url`` into ``out``, feeding ``hasher``; checks the length the server announced."""
    if url is None:
        raise ValueError("no URL")
    request = urllib.request.Request(url, headers={"User-Agent": "samforge"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if response.headers.get_content_type() == "text/html":
            # e.g. Google Drive's confirmation page for large files, not the checkpoint
            raise ValueError("the server answered with a web page instead of the file")
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with _progress_bar(label, total, enabled=progress) as advance:
            for chunk in iter(lambda: response.read(CHUNK_SIZE), b""):
                out.write(chunk)
                hasher.update(chunk)
                received += len(chunk)
                advance(len(chunk))
    if total is not None and received != total:
        raise OSError(f"connection closed after {received} of {total} bytes")


@contextlib.contextmanager
def _progress_bar(
    label: str, total: int | None, *, enabled: bool
) -> Iterator[Callable[[int], None]]:
    if not enabled:
        yield lambda _count: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    from rich.console import Console

    # On stderr, so a command's own output on stdout stays clean.
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(f"downloading {label}", total=total)
        yield lambda count: bar.advance(task, count)


__all__ = [
    "CACHE_ENV",
    "cache_dir",
    "cached_path",
    "fetch",
    "file_digest",
    "is_cached",
]
