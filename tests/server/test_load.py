"""A bounded load test on loopback: 8 sessions click concurrently for 60 s against one
``samforge serve`` process. No request may fail, and no session may see another's work: every
mask a session gets equals the one it got for the same prompt when it was alone.

The click latencies (p50, p95) are printed and, when ``SAMFORGE_LOAD_REPORT`` names a file,
written there as JSON (docs/performance.md quotes them).
"""

from __future__ import annotations

import json
import os
import threading
import time

import httpx
import numpy as np

from .live import free_port, start_process

SESSIONS = 8
SECONDS = 60.0


def click(client: httpx.Client, doc: str, object_id: int, index: int, point) -> np.ndarray:
    reply = client.put(
        f"api/documents/{doc}/objects/{object_id}/prompts/{index}",
        json={"points": [[*point, 1]]},
    )
    reply.raise_for_status()
    shape = tuple(int(n) for n in reply.headers["x-shape"].split(","))
    return np.frombuffer(reply.content, "<u2").reshape(shape).copy()


class User:
    """One browser: its own session, slice, object and pair of points."""

    def __init__(self, url: str, number: int) -> None:
        self.client = httpx.Client(base_url=url, timeout=60)
        self.index = 2 + 2 * number  # its own slice
        self.points = [(40 + number, 45), (55, 50 + number)]
        self.name = f"user {number}"
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def prepare(self) -> None:
        doc = self.client.post("api/documents", json={"path": "ct/phantom.nii.gz"}).json()
        self.doc = doc["id"]
        embed = next(job for job in doc["jobs"] if job["kind"] == "embed")
        while self.client.get(f"api/jobs/{embed['id']}").json()["state"] != "done":
            time.sleep(0.2)
        state = self.client.post(f"api/documents/{self.doc}/objects", json={"name": self.name})
        self.object_id = state.json()["objects"][-1]["id"]
        self.expected = [
            click(self.client, self.doc, self.object_id, self.index, p) for p in self.points
        ]

    def run(self, until: float) -> None:
        turn = 0
        while time.monotonic() < until:
            which = turn % 2
            started = time.perf_counter()
            try:
                labels = click(
                    self.client, self.doc, self.object_id, self.index, self.points[which]
                )
            except httpx.HTTPError as error:
                self.errors.append(repr(error))
                continue
            self.latencies.append(time.perf_counter() - started)
            if not np.array_equal(labels, self.expected[which]):
                self.errors.append(f"{self.name}: click {turn} gave another mask")
            turn += 1


def test_eight_sessions_click_for_a_minute(data_folder, tmp_path):
    port = free_port()
    server = start_process(data_folder, tmp_path / "workspace", port)
    users = [User(f"http://127.0.0.1:{port}/", number) for number in range(SESSIONS)]
    try:
        for user in users:
            user.prepare()
        until = time.monotonic() + SECONDS
        threads = [threading.Thread(target=user.run, args=(until,)) for user in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=SECONDS + 60)
        assert not any(thread.is_alive() for thread in threads)
        errors = [error for user in users for error in user.errors]
        assert not errors, errors[:5]
        for user in users:  # each session holds its own object only
            names = [
                o["name"] for o in user.client.get(f"api/documents/{user.doc}").json()["objects"]
            ]
            assert names == [user.name]
            assert len(user.latencies) > 10
    finally:
        for user in users:
            user.client.close()
        server.kill()
        server.wait()
    latencies = np.array([seconds for user in users for seconds in user.latencies]) * 1000
    report = {
        "sessions": SESSIONS,
        "seconds": SECONDS,
        "clicks": int(latencies.size),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p95_ms": round(float(np.percentile(latencies, 95)), 1),
        "max_ms": round(float(latencies.max()), 1),
    }
    print(f"\nload test: {report}")
    if os.environ.get("SAMFORGE_LOAD_REPORT"):
        with open(os.environ["SAMFORGE_LOAD_REPORT"], "w") as out:
            json.dump(report, out)
