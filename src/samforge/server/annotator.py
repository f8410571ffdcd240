"""What the HTTP handlers call: open a case in a session, prompt, paint, propagate, save.

The handlers in :mod:`.app` only translate requests into these calls; the work itself is
done by :mod:`samforge.workflows.annotation` (documents, segmentation, export) and
:mod:`samforge.inference` (the Predictor, propagation). Each open document has one lock:
every edit of it holds the lock, so two tabs of one session never interleave an edit.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..data import Case, read_case
from ..errors import DataError, PromptError
from ..inference import PropagationSettings
from ..workflows.annotation import (
    AnnotationDocument,
    DocumentStore,
    SavedAnnotations,
    SlicePrompts,
    propagate_object,
    save_annotations,
)
from .display import display_info
from .jobs import Job, JobRunner
from .limits import check_voxels
from .models import ModelLoader, ModelPool
from .paths import DataFolder
from .sessions import OpenDocument, Session, SessionTable
from .settings import ServerSettings

EMBED_BATCH = 4


class Annotator:
    """The server's state: the data folder, the models, the sessions and their jobs."""

    def __init__(self, settings: ServerSettings, loader: ModelLoader | None = None) -> None:
        self.settings = settings
        self.data = DataFolder(settings.data_dir)
        self.models = ModelPool(settings, loader)
        self.jobs = JobRunner()
        self.sessions = SessionTable(settings.workspace / "sessions", settings.model, self._reopen)

    def close(self) -> None:
        self.jobs.shutdown()

    # --- opening -------------------------------------------------------------------------

    def open_data_file(self, session: Session, relative: str) -> OpenDocument:
        """Open ``relative`` (a file or DICOM series folder) of the data folder."""
        path = self.data.resolve(relative)
        return self._open(session, {"kind": "data", "path": self.data.relative(path)})

    def open_upload(self, session: Session, folder: Path, name: str) -> OpenDocument:
        """Open an upload already written to ``folder`` (one image, or one DICOM series)."""
        relative = folder.relative_to(session.folder).as_posix()
        return self._open(session, {"kind": "upload", "path": relative, "name": name})

    def source_path(self, session: Session, source: dict[str, Any]) -> Path:
        if source.get("kind") == "data":
            return self.data.resolve(str(source["path"]))
        if source.get("kind") == "upload":
            path = (session.folder / str(source["path"])).resolve()
            if path.is_relative_to(session.folder.resolve()) and path.exists():
                return _single_file_or_folder(path)
        raise DataError(f"the stored source {source!r} of a document no longer exists.")

    def _open(self, session: Session, source: dict[str, Any]) -> OpenDocument:
        with session.lock:
            document_id = session.document_id(source)
            if document_id in session.documents:
                return session.documents[document_id]
            session.check_room()
            document = self._load_document(session, document_id, source)
            session.documents[document_id] = document
            session.save()
            return document

    def _reopen(self, session: Session, document_id: str) -> None:
        """Open a stored document again after a restart (skipped if its source is gone)."""
        store = DocumentStore(session.document_folder(document_id))
        try:
            source = store.read_meta()["source"]
            session.documents[document_id] = self._load_document(session, document_id, source)
        except (DataError, KeyError, TypeError):
            return

    def _load_document(
        self, session: Session, document_id: str, source: dict[str, Any]
    ) -> OpenDocument:
        path = self.source_path(session, source)
        name = str(source.get("name") or source["path"])
        check_voxels(path, self.settings, name)
        case = read_case(path, name=Path(name).name.split(".")[0] or "image")
        predictor = self.models.predictor(session.model)
        mapping = predictor.intensity_settings.case_mapping(case)
        store = DocumentStore(session.document_folder(document_id))
        store.write_meta({"source": source})
        annotation = AnnotationDocument(case, mapping, store)
        display = display_info(case, mapping)
        document = OpenDocument(document_id, source, annotation, display, predictor, session.model)
        self._start_embedding(session, document)
        return document

    def close_document(self, session: Session, document_id: str) -> None:
        """Close a document (its annotations stay on disk; opening it again restores them)."""
        with session.lock:
            document = session.document(document_id)
            for job in (document.embed_job, document.propagate_job):
                if job is not None:
                    job.cancel()
            del session.documents[document_id]
            session.save()

    # --- models --------------------------------------------------------------------------

    def switch_model(self, session: Session, name: str) -> None:
        """Use model ``name`` for this session's documents from now on (masks are kept)."""
        self.models.get(name)  # refuses unknown names, loads before anything changes
        with session.lock:
            session.model = name
            session.save()
            for document in session.documents.values():
                with document.lock:
                    if document.embed_job is not None:
                        document.embed_job.cancel()
                    document.predictor = self.models.predictor(name)
                    document.model = name
                    self._start_embedding(session, document)

    def _start_embedding(self, session: Session, document: OpenDocument) -> None:
        """Embed every slice in the background into the memory and disk caches."""
        case, mapping, model = document.case, document.annotation.mapping, document.model

        def work(job: Job) -> None:
            predictor = self.models.predictor(model)
            if not case.is_volume:
                predictor.set_image(case.image, mapping=mapping)
                job.done = 1
                return
            for start in range(0, case.image.shape[0], EMBED_BATCH):
                if job.cancelled:
                    return
                indices = range(start, min(start + EMBED_BATCH, case.image.shape[0]))
                predictor.embed_volume(case.image, mapping=mapping, indices=indices)
                job.done = indices[-1] + 1

        depth = case.image.shape[0] if case.is_volume else 1
        document.embed_job = self.jobs.submit("embed", session.id, document.id, depth, work)

    # --- editing -------------------------------------------------------------------------

    def set_prompts(
        self, document: OpenDocument, object_id: int, index: int, prompts: SlicePrompts
    ) -> None:
        with document.lock:
            document.annotation.set_prompts(object_id, index, prompts, document.predictor)

    def propagate(
        self,
        session: Session,
        document: OpenDocument,
        object_id: int,
        settings: PropagationSettings,
    ) -> Job:
        """Propagate an object through the volume in the background; the result is written
        into the document when it is done (slices the user prompted or painted are kept)."""
        annotation = document.annotation
        if not annotation.case.is_volume:
            raise PromptError("propagation needs a volume; this is a 2D image.")
        with document.lock:
            info = annotation.object(object_id)
            if document.propagate_job is not None and not document.propagate_job.finished:
                raise PromptError("a propagation of this image is running; wait for it to end.")
            if not info.prompts:
                propagate_object(
                    document.predictor, annotation.case.image, annotation.mapping, info, settings
                )  # raises the no-prompt error with its message
        model = document.model

        def work(job: Job) -> None:
            predictor = self.models.predictor(model)

            def progress(decoded: int) -> None:
                job.done = decoded

            result = propagate_object(
                predictor, annotation.case.image, annotation.mapping, info, settings, progress
            )
            with document.lock:
                if job.cancelled:
                    return
                if annotation.object(object_id).prompts != info.prompts:
                    raise PromptError(
                        "the object's prompts changed while it was propagating: propagate again."
                    )
                changed = annotation.apply_propagation(object_id, result)
            job.result = {
                "changed_slices": changed,
                "segmented": [int(i) for i in result.segmented.nonzero()[0]],
                "stops": [dataclasses.asdict(stop) for stop in result.stops],
            }

        total = annotation.depth
        document.propagate_job = self.jobs.submit("propagate", session.id, document.id, total, work)
        return document.propagate_job

    def save(self, session: Session, document: OpenDocument) -> SavedAnnotations:
        """Write the accepted objects' label map and prompts into the session's exports."""
        folder = self.export_folder(session, document)
        extra = {
            "model": document.model,
            "intensity": dataclasses.asdict(document.annotation.mapping),
        }
        with document.lock:
            return save_annotations(document.annotation, folder, extra)

    def export_folder(self, session: Session, document: OpenDocument) -> Path:
        return self.settings.workspace / "exports" / session.id / document.id


def document_json(document: OpenDocument, jobs: list[Job]) -> dict[str, Any]:
    """Everything the page shows about a document except its pixels."""
    annotation: AnnotationDocument = document.annotation
    case: Case = document.case
    return {
        "id": document.id,
        "name": case.name,
        "source": document.source,
        "model": document.model,
        "is_volume": case.is_volume,
        "shape": list(case.image.shape),
        "spacing": list(case.spacing),
        "modality": case.modality,
        "display": document.display,
        "version": annotation.version,
        "can_undo": annotation.history.can_undo,
        "can_redo": annotation.history.can_redo,
        "objects": [
            {**info.to_json(), "slices": annotation.mask_slices(info.id)}
            for info in annotation.objects
        ],
        "jobs": [
            job.to_json()
            for job in jobs
            if not job.finished or job is document.propagate_job or job is document.embed_job
        ],
    }


def _single_file_or_folder(path: Path) -> Path:
    """An upload folder holding one file is that file; several files form a DICOM series."""
    if path.is_dir():
        files = [child for child in path.iterdir() if child.is_file()]
        if len(files) == 1:
            return files[0]
    return path
