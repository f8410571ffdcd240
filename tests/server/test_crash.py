"""Kill -9 the annotator in the middle of annotating, start it again: every accepted object
is still there with its mask, and the half-done edits left no broken file behind."""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx
import numpy as np
from PIL import Image

from samforge.files import TEMPORARY_PREFIX

from .conftest import VOLUME_SHAPE
from .live import free_port, start_process

MIDDLE = VOLUME_SHAPE[0] // 2


def labels(client: httpx.Client, doc: str, index: int) -> np.ndarray:
    reply = client.get(f"api/documents/{doc}/labels", params={"axis": 0, "index": index})
    reply.raise_for_status()
    shape = tuple(int(n) for n in reply.headers["x-shape"].split(","))
    return np.frombuffer(reply.content, "<u2").reshape(shape)


def test_kill_9_mid_annotation_keeps_every_accepted_object(data_folder, tmp_path):
    workspace, port = tmp_path / "workspace", free_port()
    url = f"http://127.0.0.1:{port}/"
    server = start_process(data_folder, workspace, port)
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            doc = client.post("api/documents", json={"path": "ct/phantom.nii.gz"}).json()["id"]
            accepted = {}
            for name, box in (("liver", [30, 30, 70, 66]), ("spine", [40, 60, 60, 85])):
                state = client.post(f"api/documents/{doc}/objects", json={"name": name}).json()
                object_id = state["objects"][-1]["id"]
                client.put(
                    f"api/documents/{doc}/objects/{object_id}/prompts/{MIDDLE}", json={"box": box}
                ).raise_for_status()
                client.patch(
                    f"api/documents/{doc}/objects/{object_id}", json={"status": "accepted"}
                )
                accepted[object_id] = name
            painted = client.post(f"api/documents/{doc}/objects", json={"name": "touched"}).json()
            touched = painted["objects"][-1]["id"]
            client.post(
                f"api/documents/{doc}/objects/{touched}/paint",
                json={"index": 3, "stroke": [[20, 20], [40, 30]], "radius": 4},
            ).raise_for_status()
            client.patch(f"api/documents/{doc}/objects/{touched}", json={"status": "accepted"})
            accepted[touched] = "touched"
            before = {index: labels(client, doc, index) for index in (3, MIDDLE)}
            cookie = dict(client.cookies)

            # A draft object being clicked on as fast as the server answers, when it dies.
            draft = client.post(f"api/documents/{doc}/objects", json={"name": "draft"}).json()
            draft_id = draft["objects"][-1]["id"]
            stop = threading.Event()

            def click() -> None:
                with httpx.Client(base_url=url, cookies=cookie, timeout=10) as clicker:
                    x = 20
                    while not stop.is_set():
                        x = 20 + (x + 7) % 50
                        try:
                            clicker.put(
                                f"api/documents/{doc}/objects/{draft_id}/prompts/{MIDDLE - 2}",
                                json={"points": [[x, 50, 1]]},
                            )
                        except httpx.TransportError:
                            return

            clicking = threading.Thread(target=click)
            clicking.start()
            time.sleep(1.5)
            server.send_signal(signal.SIGKILL)
            server.wait()
            stop.set()
            clicking.join()

        server = start_process(data_folder, workspace, port)
        with httpx.Client(base_url=url, cookies=cookie, timeout=60) as client:
            state = client.get(f"api/documents/{doc}").json()
            found = {info["id"]: info for info in state["objects"]}
            for object_id, name in accepted.items():
                assert found[object_id]["name"] == name
                assert found[object_id]["status"] == "accepted"
            assert found[accepted_id(accepted, "touched")]["painted"] == [3]
            for index, expected in before.items():
                after = labels(client, doc, index)
                for object_id in accepted:
                    np.testing.assert_array_equal(after == object_id, expected == object_id)
            assert draft_id in found  # the object being edited survived too
            # Every file in place is whole (a write cut short stays a temporary file).
            for path in (workspace / "sessions").rglob("*.json"):
                json.loads(path.read_text())
            for path in (workspace / "sessions").rglob("masks/*/*.png"):
                if not path.name.startswith(TEMPORARY_PREFIX):
                    Image.open(path).load()
    finally:
        server.kill()
        server.wait()


def accepted_id(accepted: dict[int, str], name: str) -> int:
    return next(object_id for object_id, value in accepted.items() if value == name)
