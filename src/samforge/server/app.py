"""The ASGI application of ``samforge serve``: the API, the page, errors as JSON.

Every error reaches the browser as ``{"error": message}`` with a 4xx status saying whose
fault it was; an unexpected failure is a 500 with a short message, its traceback in the
server's log only (``debug`` is never on).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from ..errors import AccessError, LimitError, NotFoundError, SamforgeError
from .annotator import Annotator
from .models import ModelLoader
from .routes import router
from .security import Guard
from .settings import ServerSettings

LOG = logging.getLogger("samforge.server")
STATUS = ((NotFoundError, 404), (AccessError, 403), (LimitError, 413))


def static_folder() -> str:
    return str(resources.files("samforge.server") / "static")


def create_app(settings: ServerSettings, loader: ModelLoader | None = None) -> FastAPI:
    """The annotator as an ASGI app (run it with uvicorn; tests use it in-process).

    Args:
        settings: data folder, workspace, model, limits, token.
        loader: model name -> model (default :func:`samforge.load_model`).
    """
    annotator = Annotator(settings, loader)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        annotator.close()

    app = FastAPI(
        title="samforge annotator",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.annotator = annotator
    app.add_middleware(Guard, settings=settings)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=static_folder()), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(f"{static_folder()}/index.html", headers={"Cache-Control": "no-store"})

    @app.exception_handler(SamforgeError)
    async def samforge_error(_request: Request, error: SamforgeError) -> JSONResponse:
        status = next((code for kind, code in STATUS if isinstance(error, kind)), 400)
        return JSONResponse({"error": str(error)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(part) for part in item.get('loc', ()))}: {item.get('msg', '')}"
            for item in error.errors()[:5]
        ]
        return JSONResponse({"error": "malformed request: " + "; ".join(problems)}, 422)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, error.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        LOG.exception("%s %s failed", request.method, request.url.path)
        message = f"internal error ({type(error).__name__}); the server log has the details."
        return JSONResponse({"error": message}, 500)

    return app
