"""What a ``samforge serve`` instance serves, where it keeps its state, and its limits."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, DataError
from ..inference.engines import ENGINES
from ..inference.precision import PRECISIONS

LOOPBACK_NAMES = ("localhost",)
MIB = 2**20
_TOKEN = re.compile(r"^[A-Za-z0-9._~-]{16,}$")


@dataclass(frozen=True)
class ServerSettings:
    """Settings of one annotator server.

    data_dir: the folder whose images and volumes the page can open (read-only).
    workspace: where sessions, uploads, saved annotations and the embedding cache live.
    model: the model a new session starts with (registry name or checkpoint file).
    host, port: where to listen; any host but loopback needs a ``token``.
    token: a secret every request must carry (header ``Authorization: Bearer``, or the
        cookie the page gets from ``/?token=...``).
    allowed_origins: more origins allowed to change state (e.g. a proxy's
        ``https://annotate.example.org``); the server's own is always allowed.
    max_upload_bytes, max_voxels, max_files: caps of one upload (and of any image opened).
    cache_mb: memory for image embeddings, per model (the disk cache has no cap).
    engine, precision: what runs every model and in which arithmetic (as
        :class:`~samforge.inference.Predictor`'s arguments: ``"torch"`` or
        ``"onnxruntime"``; ``"auto"``, ``"fp32"`` or ``"bf16"``).
    """

    data_dir: Path
    workspace: Path
    model: str = "samforge_nano"
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    allowed_origins: tuple[str, ...] = ()
    max_upload_bytes: int = 1024 * MIB
    max_voxels: int = 2**28
    max_files: int = 4096
    cache_mb: int = 2048
    embed_batch: int = 1
    extra_models: tuple[str, ...] = field(default=())
    engine: str = "torch"
    precision: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())
        object.__setattr__(self, "workspace", Path(self.workspace).expanduser().resolve())
        if not self.data_dir.is_dir():
            raise DataError(
                f"the data folder {self.data_dir} does not exist or is not a folder; give "
                "the folder whose images you want to annotate."
            )
        if not self.is_loopback and not self.token:
            raise ConfigError(
                f"binding {self.host} makes the annotator reachable from other machines: "
                "give --token SECRET (every request must carry it), e.g. --token "
                "$(python -c 'import secrets; print(secrets.token_urlsafe(24))'), or "
                "bind 127.0.0.1."
            )
        if self.token is not None and not _TOKEN.match(self.token):
            raise ConfigError(
                "the token must be at least 16 characters of A-Z, a-z, 0-9, '-', '_', '.' "
                "or '~'; use a random one (secrets.token_urlsafe)."
            )
        for name in ("max_upload_bytes", "max_voxels", "max_files", "cache_mb", "embed_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1; got {getattr(self, name)}.")
        if self.engine not in ENGINES:
            raise ConfigError(
                f"engine must be one of {ENGINES}, not {self.engine!r}: torch runs the model "
                "itself, onnxruntime its exported ONNX graphs."
            )
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision must be one of {PRECISIONS}, not {self.precision!r}: fp32 is "
                "exact, bf16 faster on GPUs and AVX-512/AMX CPUs, auto picks for the device."
            )
        if not 0 <= self.port < 65536:
            raise ConfigError(f"port must lie in [0, 65535]; got {self.port}.")

    @property
    def is_loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address) stays on this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
