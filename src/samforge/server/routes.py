"""The HTTP API: JSON in, JSON or raw little-endian pixels out (see :mod:`.display`).

Every handler finds the caller's session from the cookie the :class:`~.security.Guard`
checked, and every document and job is looked up inside that session only. Handlers are
plain ``def`` functions: FastAPI runs them on its thread pool, so a click never waits
behind another session's click on the event loop.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from ..data import WINDOWS
from ..errors import NotFoundError
from ..inference import PropagationSettings
from ..prompts.volume_prompts import PROMPT_MODES
from ..workflows.annotation import SlicePrompts
from ..workflows.annotation.export import labels_file_name
from ..workflows.annotation.segment import MAX_BRUSH_RADIUS
from .annotator import Annotator, document_json
from .display import label_bytes, plane_bytes
from .sessions import OpenDocument, Session
from .uploads import receive_upload

MAX_POINTS = 256
MAX_STROKE = 4096
Coordinate = Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenRequest(Body):
    path: str = Field(max_length=4096)


class ModelRequest(Body):
    name: str = Field(max_length=4096)


class ObjectRequest(Body):
    name: str | None = Field(None, max_length=80)
    colour: str | None = Field(None, max_length=7)


class ObjectUpdate(ObjectRequest):
    status: Literal["draft", "accepted"] | None = None


class PromptRequest(Body):
    box: tuple[Coordinate, Coordinate, Coordinate, Coordinate] | None = None
    points: list[tuple[Coordinate, Coordinate, Literal[0, 1]]] = Field([], max_length=MAX_POINTS)


class PaintRequest(Body):
    index: int = Field(ge=0)
    stroke: list[tuple[Coordinate, Coordinate]] = Field(min_length=1, max_length=MAX_STROKE)
    radius: float = Field(ge=0.5, le=MAX_BRUSH_RADIUS)
    erase: bool = False


class PropagateRequest(Body):
    mode: str = Field("mask", max_length=32)
    iou_threshold: float = Field(0.8, ge=0.0, le=1.0)
    box_extension: float = Field(0.0, ge=0.0, le=1e4)


def annotator_of(request: Request) -> Annotator:
    return request.app.state.annotator


def session_of(request: Request) -> Session:
    return annotator_of(request).sessions.get(request.state.session_id)


Service = Annotated[Annotator, Depends(annotator_of)]
Caller = Annotated[Session, Depends(session_of)]
router = APIRouter(prefix="/api")


def _document(session: Session, document_id: str) -> OpenDocument:
    return session.document(document_id)


def _document_reply(annotator: Annotator, session: Session, document: OpenDocument) -> dict:
    return document_json(document, annotator.jobs.of_document(session.id, document.id))


def _pixels(data: tuple[bytes, tuple[int, ...], str], version: int | None = None) -> Response:
    payload, shape, dtype = data
    headers = {"X-Shape": ",".join(map(str, shape)), "X-Dtype": dtype, "Cache-Control": "no-store"}
    if version is not None:
        headers["X-Version"] = str(version)
    return Response(payload, media_type="application/octet-stream", headers=headers)


def _labels_reply(document: OpenDocument, index: int) -> Response:
    annotation = document.annotation
    with document.lock:
        labels = annotation.label_slice(0, index)
        version = annotation.version
    return _pixels(label_bytes(labels), version)


@router.get("/info")
def info(annotator: Service, session: Caller) -> dict[str, Any]:
    settings = annotator.settings
    return {
        "model": session.model,
        "models": annotator.models.describe(),
        "windows": {name: list(value) for name, value in WINDOWS.items()},
        "propagation_modes": list(PROMPT_MODES),
        "limits": {
            "max_upload_bytes": settings.max_upload_bytes,
            "max_voxels": settings.max_voxels,
            "max_files": settings.max_files,
        },
        "documents": list(session.documents),
    }


@router.put("/model")
def switch_model(body: ModelRequest, annotator: Service, session: Caller) -> dict[str, str]:
    annotator.switch_model(session, body.name)
    return {"model": session.model}


@router.get("/files")
def list_files(annotator: Service, path: str = Query("", max_length=4096)) -> dict[str, Any]:
    entries = annotator.data.list(path)
    return {"path": path, "entries": [entry.to_json() for entry in entries]}


@router.post("/documents")
def open_document(body: OpenRequest, annotator: Service, session: Caller) -> dict:
    document = annotator.open_data_file(session, body.path)
    return _document_reply(annotator, session, document)


@router.post("/uploads")
async def upload(request: Request, annotator: Service, session: Caller) -> dict:
    folder, name = await receive_upload(request, session.folder / "uploads", annotator.settings)
    from starlette.concurrency import run_in_threadpool

    document = await run_in_threadpool(annotator.open_upload, session, folder, name)
    return _document_reply(annotator, session, document)


@router.get("/documents")
def documents(annotator: Service, session: Caller) -> list[dict]:
    return [_document_reply(annotator, session, doc) for doc in session.documents.values()]


@router.get("/documents/{document_id}")
def get_document(document_id: str, annotator: Service, session: Caller) -> dict:
    return _document_reply(annotator, session, _document(session, document_id))


@router.delete("/documents/{document_id}")
def close_document(document_id: str, annotator: Service, session: Caller) -> dict[str, str]:
    annotator.close_document(session, document_id)
    return {"closed": document_id}


@router.get("/documents/{document_id}/plane")
def plane(
    document_id: str, session: Caller, axis: int = Query(0), index: int = Query(0)
) -> Response:
    return _pixels(plane_bytes(_document(session, document_id).case, axis, index))


@router.get("/documents/{document_id}/labels")
def labels(
    document_id: str, session: Caller, axis: int = Query(0), index: int = Query(0)
) -> Response:
    document = _document(session, document_id)
    with document.lock:
        data = document.annotation.label_slice(axis, index)
        version = document.annotation.version
    return _pixels(label_bytes(data), version)


@router.post("/documents/{document_id}/objects")
def add_object(document_id: str, body: ObjectRequest, annotator: Service, session: Caller) -> dict:
    document = _document(session, document_id)
    with document.lock:
        document.annotation.add_object(body.name, body.colour)
    return _document_reply(annotator, session, document)


@router.patch("/documents/{document_id}/objects/{object_id}")
def update_object(
    document_id: str, object_id: int, body: ObjectUpdate, annotator: Service, session: Caller
) -> dict:
    document = _document(session, document_id)
    with document.lock:
        document.annotation.update_object(
            object_id, name=body.name, colour=body.colour, status=body.status
        )
    return _document_reply(annotator, session, document)


@router.delete("/documents/{document_id}/objects/{object_id}")
def delete_object(document_id: str, object_id: int, annotator: Service, session: Caller) -> dict:
    document = _document(session, document_id)
    with document.lock:
        document.annotation.delete_object(object_id)
    return _document_reply(annotator, session, document)


@router.put("/documents/{document_id}/objects/{object_id}/prompts/{index}")
def set_prompts(
    document_id: str,
    object_id: int,
    index: int,
    body: PromptRequest,
    annotator: Service,
    session: Caller,
) -> Response:
    """Segment one slice from its prompts; the reply is the slice's new label map."""
    started = time.perf_counter()
    document = _document(session, document_id)
    prompts = SlicePrompts.from_json({"box": body.box, "points": body.points})
    annotator.set_prompts(document, object_id, index, prompts)
    reply = _labels_reply(document, index)
    # The server's share of a click (decode, save, label plane), for the page and benchmarks.
    reply.headers["Server-Timing"] = f"click;dur={(time.perf_counter() - started) * 1000:.1f}"
    return reply


@router.post("/documents/{document_id}/objects/{object_id}/paint")
def paint(document_id: str, object_id: int, body: PaintRequest, session: Caller) -> Response:
    document = _document(session, document_id)
    stroke = [(float(x), float(y)) for x, y in body.stroke]
    with document.lock:
        document.annotation.paint(object_id, body.index, stroke, body.radius, body.erase)
    return _labels_reply(document, body.index)


@router.post("/documents/{document_id}/objects/{object_id}/propagate")
def propagate(
    document_id: str, object_id: int, body: PropagateRequest, annotator: Service, session: Caller
) -> dict:
    settings = PropagationSettings(body.mode, body.iou_threshold, body.box_extension)
    job = annotator.propagate(session, _document(session, document_id), object_id, settings)
    return job.to_json()


@router.post("/documents/{document_id}/save")
def save(document_id: str, annotator: Service, session: Caller) -> dict:
    saved = annotator.save(session, _document(session, document_id))
    return {
        "labels": str(saved.labels),
        "prompts": str(saved.prompts),
        "objects": saved.objects,
        "downloads": [
            f"/api/documents/{document_id}/download/{kind}" for kind in ("labels", "prompts")
        ],
    }


@router.get("/documents/{document_id}/download/{kind}")
def download(
    document_id: str, kind: Literal["labels", "prompts"], annotator: Service, session: Caller
) -> FileResponse:
    document = _document(session, document_id)
    folder = annotator.export_folder(session, document)
    name = labels_file_name(document.annotation) if kind == "labels" else "prompts.json"
    path: Path = folder / name
    if not path.is_file():
        raise NotFoundError("nothing saved yet: press Save first.")
    return FileResponse(path, filename=f"{document.case.name}_{name}")


@router.get("/jobs/{job_id}")
def job(job_id: str, annotator: Service, session: Caller) -> dict:
    return annotator.jobs.get(session.id, job_id).to_json()


@router.post("/jobs/{job_id}/cancel")
def cancel_job(job_id: str, annotator: Service, session: Caller) -> JSONResponse:
    found = annotator.jobs.get(session.id, job_id)
    found.cancel()
    return JSONResponse(found.to_json())


# Last: its path would otherwise catch /save.
@router.post("/documents/{document_id}/{step}")
def undo_or_redo(
    document_id: str, step: Literal["undo", "redo"], annotator: Service, session: Caller
) -> dict:
    document = _document(session, document_id)
    with document.lock:
        if step == "undo":
            document.annotation.undo()
        else:
            document.annotation.redo()
    return _document_reply(annotator, session, document)
