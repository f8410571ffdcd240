"""``samforge serve``: a browser annotator for 2D images and 3D volumes.

A thin HTTP layer over :mod:`samforge.workflows.annotation` (documents, undo, export) and
:mod:`samforge.inference` (Predictor, propagation): :func:`create_app` builds the ASGI app
from :class:`ServerSettings`; the page itself is static files shipped in ``static/``.
"""

from .app import create_app
from .settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
