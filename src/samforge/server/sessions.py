"""Sessions (one per browser, named by a cookie) and the documents open in them.

A session sees only its own documents: they are found by id inside the session, never
across sessions, and every document folder lives under its session's folder::

    <workspace>/sessions/<session id>/session.json          model and open documents
    <workspace>/sessions/<session id>/documents/<doc id>/   the document (store.py)

Opening a document writes its folder at once and every edit writes through
(:class:`~samforge.workflows.annotation.DocumentStore`), so a session comes back whole after
a restart: :meth:`Session.load` reads the files and reopens each case from its source.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data import Case
from ..errors import LimitError, NotFoundError
from ..inference import Predictor
from ..workflows.annotation import AnnotationDocument
from ..workflows.annotation.store import read_json, write_json
from .jobs import Job

MAX_DOCUMENTS = 32


@dataclass
class OpenDocument:
    """A document open in a session, with the predictor its clicks use (under ``lock``)."""

    id: str
    source: dict[str, Any]
    annotation: AnnotationDocument
    display: dict[str, Any]
    predictor: Predictor
    model: str
    lock: threading.RLock = field(default_factory=threading.RLock)
    embed_job: Job | None = None
    propagate_job: Job | None = None

    @property
    def case(self) -> Case:
        return self.annotation.case


class Session:
    def __init__(self, session_id: str, folder: Path, model: str) -> None:
        self.id = session_id
        self.folder = folder
        self.model = model
        self.documents: dict[str, OpenDocument] = {}
        self.lock = threading.RLock()

    def document(self, document_id: str) -> OpenDocument:
        try:
            return self.documents[document_id]
        except KeyError:
            raise NotFoundError(
                f"no open document {document_id!r} in this session; open it from the file list."
            ) from None

    def document_id(self, source: dict[str, Any]) -> str:
        """The same source always opens as the same document of this session (and so with
        its annotations); another session gets another id."""
        text = json.dumps([self.id, source], sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    def document_folder(self, document_id: str) -> Path:
        return self.folder / "documents" / document_id

    def check_room(self) -> None:
        if len(self.documents) >= MAX_DOCUMENTS:
            raise LimitError(
                f"a session holds at most {MAX_DOCUMENTS} open documents; close one first."
            )

    def save(self) -> None:
        write_json(
            self.folder / "session.json",
            {"model": self.model, "documents": list(self.documents)},
        )

    @classmethod
    def load(
        cls,
        session_id: str,
        folder: Path,
        default_model: str,
        reopen: Callable[[Session, str], None],
    ) -> Session:
        """The session stored in ``folder`` (a new one if there is none); ``reopen`` opens
        each of its documents again (from its ``document.json``)."""
        session = cls(session_id, folder, default_model)
        stored = folder / "session.json"
        if stored.is_file():
            data = read_json(stored)
            session.model = str(data.get("model", default_model))
            for document_id in data.get("documents", []):
                reopen(session, str(document_id))
        return session


class SessionTable:
    """The sessions in memory, loaded from the workspace on first use."""

    def __init__(self, root: Path, default_model: str, reopen: Callable[[Session, str], None]):
        self.root = root
        self.default_model = default_model
        self.reopen = reopen
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def get(self, session_id: str) -> Session:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                folder = self.root / session_id
                session = Session.load(session_id, folder, self.default_model, self.reopen)
                self._sessions[session_id] = session
            return session
