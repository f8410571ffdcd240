"""``samforge serve``: a browser annotator for 2D images and 3D volumes.

A thin HTTP layer over :mod:`samforge.workflows.annotation` (documents, undo, export) and
:mod:`samforge.inference` (Predictor, propagation): :func:`create_app` builds the ASGI app
from :class:`ServerSettings`; the page itself is static files shipped in ``static/``.
"""

from typing import TYPE_CHECKING, Any

from .settings import ServerSettings

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    # FastAPI is imported by ``samforge serve`` only, not by every command that reads the
    # server's settings (PEP 562).
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
