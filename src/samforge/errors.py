"""Errors raised by samforge.

Every error a user can cause derives from :class:`SamforgeError` and its message says what
was wrong and what to do about it, so a CLI can print it as it is.
"""

from __future__ import annotations


class SamforgeError(Exception):
    """Base class of every error caused by input, files or configuration."""


class CheckpointError(SamforgeError):
    """A checkpoint file cannot be read, or does not match the architecture."""


class UnsupportedCheckpointError(CheckpointError):
    """A checkpoint holds tensors of an architecture samforge does not build (yet)."""


class ModelNotFoundError(SamforgeError):
    """A name is neither a registered model nor an existing file."""


class DownloadError(SamforgeError):
    """A registered checkpoint could not be downloaded or failed its checksum."""


class InputImageError(SamforgeError):
    """An image or volume has the wrong shape, dtype or values (NaN, empty, ...)."""


class PromptError(SamforgeError):
    """A prompt is malformed or lies outside the image."""


class DataError(SamforgeError):
    """A data file or dataset layout cannot be read."""


class ConfigError(SamforgeError):
    """A configuration value is unknown or out of range."""


class EmbeddingError(SamforgeError):
    """Image embeddings do not fit the model they are decoded with."""


class OutputError(SamforgeError):
    """An output cannot be written where asked: over one of the inputs, onto a folder, into
    a read-only or full file system, under too long a name, or into a folder that another
    samforge run holds."""


class NotFoundError(SamforgeError):
    """A named thing (a file, an open document, an object, a job) does not exist."""


class LimitError(SamforgeError):
    """An input exceeds a configured limit (bytes, voxels, files); the message names it."""


class AccessError(SamforgeError):
    """A request is not allowed: a missing or wrong token, a foreign origin or host, or a
    path outside the served folder."""


class MissingDependencyError(SamforgeError):
    """An optional dependency a feature needs is not installed; the message names the extra
    that installs it."""


class ExportCheckError(SamforgeError):
    """An exported graph computes something other than the model it was exported from."""
