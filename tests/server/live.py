"""The annotator served for real on 127.0.0.1 (uvicorn in a thread, or a separate process
for tests that kill it), for the browser, load and crash tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from samforge.server import ServerSettings, create_app
from samforge.server.models import ModelLoader

SRC = Path(__file__).resolve().parents[2] / "src"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(url: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if httpx.get(url + "api/info", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"the annotator did not answer on {url} within {timeout} s")


@contextmanager
def serving(settings: ServerSettings, loader: ModelLoader | None = None) -> Iterator[str]:
    """Serve ``settings`` in this process; yields the base URL."""
    config = uvicorn.Config(
        create_app(settings, loader), host="127.0.0.1", port=settings.port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{settings.port}/"
    try:
        wait_until_up(url)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def start_process(data: Path, workspace: Path, port: int) -> subprocess.Popen:
    """``samforge serve`` as its own process (what a user runs), bound to 127.0.0.1."""
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [
        sys.executable,
        "-m",
        "samforge",
        "serve",
        str(data),
        "--workspace",
        str(workspace),
        "--port",
        str(port),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/", timeout=120)
    except AssertionError:
        process.kill()
        output = process.communicate()[0].decode(errors="replace")
        raise AssertionError(f"samforge serve did not start:\n{output}") from None
    return process
