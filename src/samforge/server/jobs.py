"""Long work in the background, with progress the page polls: embedding a case's slices,
propagating an object through a volume.

Embeddings run on one thread (two would only share the same CPU cores) and propagation on
another, so a propagation never waits behind a long embedding of another session; clicks
are answered on the server's request threads meanwhile.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotFoundError, SamforgeError

LOG = logging.getLogger("samforge.server")
KINDS = ("embed", "propagate")
KEEP_FINISHED = 200


@dataclass
class Job:
    """One piece of background work. ``done`` of ``total`` steps (slices)."""

    id: str
    kind: str
    session_id: str
    document_id: str
    total: int
    done: int = 0
    state: str = "queued"  # queued, running, done, failed, cancelled
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    cancel_event: threading.Event = field(default_factory=threading.Event)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "document": self.document_id,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "error": self.error,
            "result": self.result,
            "seconds": round(time.monotonic() - self.started, 2),
        }


class JobRunner:
    def __init__(self) -> None:
        self._executors = {kind: ThreadPoolExecutor(1, f"samforge-{kind}") for kind in KINDS}
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(
        self, kind: str, session_id: str, document_id: str, total: int, work: Callable[[Job], None]
    ) -> Job:
        job = Job(secrets.token_hex(8), kind, session_id, document_id, total)
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
        self._executors[kind].submit(self._run, job, work)
        return job

    def get(self, session_id: str, job_id: str) -> Job:
        """Job ``job_id`` of this session (another session's jobs do not exist for it)."""
        job = self._jobs.get(job_id)
        if job is None or job.session_id != session_id:
            raise NotFoundError(f"no job {job_id!r} in this session.")
        return job

    def of_document(self, session_id: str, document_id: str) -> list[Job]:
        with self._lock:
            jobs = list(self._jobs.values())
        return [j for j in jobs if j.session_id == session_id and j.document_id == document_id]

    def shutdown(self) -> None:
        for job in list(self._jobs.values()):
            job.cancel()
        for executor in self._executors.values():
            executor.shutdown(wait=True, cancel_futures=True)

    def _run(self, job: Job, work: Callable[[Job], None]) -> None:
        if job.cancelled:
            job.state = "cancelled"
            return
        job.state = "running"
        job.started = time.monotonic()
        try:
            work(job)
            job.state = "cancelled" if job.cancelled else "done"
        except SamforgeError as error:
            job.state, job.error = "failed", str(error)
        except Exception as error:  # reported to the page; the traceback goes to the log only
            LOG.exception("background %s job %s failed", job.kind, job.id)
            job.state, job.error = (
                "failed",
                f"internal error ({type(error).__name__}); see the server log.",
            )

    def _forget_old(self) -> None:
        finished = [job for job in self._jobs.values() if job.finished]
        for job in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job.id]
