"""Fetching into the cache: checksums, atomic writes, and clear offline failures.

No test touches the network: files are served from ``file://`` URLs or a local HTTP server
on 127.0.0.1, and "offline" is a closed port on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from helpers.official import build_official_sam
from samforge.cli.models import app
from samforge.errors import DownloadError
from samforge.models import get_model_spec, load_model
from samforge.models.checkpoints import hub, registry
from samforge.models.checkpoints.registry import ModelSpec


@pytest.fixture(autouse=True)
def cache(monkeypatch, tmp_path) -> Path:
    """A fresh cache per test, and registrations that vanish after it."""
    root = tmp_path / "cache"
    monkeypatch.setenv(hub.CACHE_ENV, str(root))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    return root


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> bytes:
    sam = build_official_sam(
        embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,), image_size=256, seed=7
    )
    path = tmp_path_factory.mktemp("published") / "tiny.pth"
    torch.save(sam.state_dict(), path)
    return path.read_bytes()


def make_spec(url: str, data: bytes | None, algorithm: str = "sha256", **changes) -> ModelSpec:
    checksum = None if data is None else f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
    spec = ModelSpec(
        name="test_tiny",
        architecture="vit_test",
        input_size=256,
        preprocessing="medsam",
        url=url,
        checksum=checksum,
        checksum_source="computed by the test",
        filename="test_tiny.pth",
        format="bare",
        family="test",
        description="test checkpoint",
        licence="MIT",
    )
    return replace(spec, **changes) if changes else spec


def published(tmp_path: Path, data: bytes) -> str:
    source = tmp_path / "published" / "tiny.pth"
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(data)
    return source.as_uri()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/tiny.pth"  # nothing listens there any more


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_cache_dir_follows_environment(cache, monkeypatch):
    assert hub.cache_dir() == cache
    monkeypatch.delenv(hub.CACHE_ENV)
    assert hub.cache_dir() == Path("~/.cache/samforge").expanduser()


def test_fetch_from_file_url_verifies_and_caches(checkpoint_bytes, tmp_path, cache):
    spec = make_spec(published(tmp_path, checkpoint_bytes), checkpoint_bytes)
    assert not hub.is_cached(spec)
    path = hub.fetch(spec, progress=False)
    assert path == cache / "models" / "test_tiny.pth"
    assert path.read_bytes() == checkpoint_bytes
    assert hub.is_cached(spec)
    assert leftovers(path.parent) == ["test_tiny.pth"]
    # Cached and verified: the source is no longer needed.
    (tmp_path / "published" / "tiny.pth").unlink()
    assert hub.fetch(spec, progress=False) == path


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def http_server(tmp_path):
    """Serves tmp_path/served on a free port of 127.0.0.1."""
    root = tmp_path / "served"
    root.mkdir()

    def handler(*args, **kwargs):
        return _Handler(*args, directory=str(root), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fetch_over_http_with_progress(checkpoint_bytes, http_server):
    root, base = http_server
    (root / "tiny.pth").write_bytes(checkpoint_bytes)
    spec = make_spec(f"{base}/tiny.pth", checkpoint_bytes, algorithm="md5")
    path = hub.fetch(spec, progress=True)
    assert path.read_bytes() == checkpoint_bytes


def test_load_model_by_name_fetches_then_loads(checkpoint_bytes, http_server):
    root, base = http_server
    (root / "tiny.pth").write_bytes(checkpoint_bytes)
    registry.register_model(make_spec(f"{base}/tiny.pth", checkpoint_bytes))
    model = load_model("test_tiny")
    assert model.config.preprocessing == "medsam"  # the registry's convention
    assert model.provenance["name"] == "test_tiny"
    expected = torch.load(hub.cached_path(get_model_spec("test_tiny")), weights_only=True)
    for key, value in expected.items():
        assert torch.equal(model.state_dict()[key], value), key


def test_offline_error_names_url_cache_path_and_checksum(checkpoint_bytes, cache):
    url = closed_port_url()
    spec = make_spec(url, checkpoint_bytes)
    with pytest.raises(DownloadError) as caught:
        hub.fetch(spec, progress=False, timeout=5)
    message = str(caught.value)
    assert url in message
    assert str(cache / "models" / "test_tiny.pth") in message
    assert spec.checksum_digest in message
    assert leftovers(cache / "models") == []


def test_hand_placed_file_is_used_offline(checkpoint_bytes, cache):
    spec = make_spec(closed_port_url(), checkpoint_bytes)
    target = hub.cached_path(spec)
    target.parent.mkdir(parents=True)
    target.write_bytes(checkpoint_bytes)
    assert hub.fetch(spec, progress=False) == target


def test_hand_placed_file_with_wrong_checksum(checkpoint_bytes, cache):
    spec = make_spec(closed_port_url(), checkpoint_bytes)
    target = hub.cached_path(spec)
    target.parent.mkdir(parents=True)
    target.write_bytes(checkpoint_bytes[:-10])
    with pytest.raises(DownloadError) as caught:
        hub.fetch(spec, progress=False)
    message = str(caught.value)
    assert str(target) in message and spec.checksum_digest in message
    assert "is expected" in message and "Delete it" in message


def test_download_with_wrong_checksum_is_discarded(checkpoint_bytes, tmp_path, cache):
    spec = make_spec(published(tmp_path, checkpoint_bytes), b"another file")
    with pytest.raises(DownloadError, match="discarded"):
        hub.fetch(spec, progress=False)
    assert leftovers(cache / "models") == []


def test_connection_closed_early_leaves_nothing(http_server, cache):
    class ShortHandler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 10)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ShortHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/tiny.pth"
        with pytest.raises(DownloadError, match="could not download"):
            hub.fetch(make_spec(url, b"irrelevant"), progress=False, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert leftovers(cache / "models") == []


def test_web_page_instead_of_the_file_is_refused(http_server, cache):
    """Google Drive answers large-file links with an HTML confirmation page."""
    root, base = http_server
    (root / "download.html").write_text("<html>Google Drive can't scan this file</html>")
    with pytest.raises(DownloadError, match="web page instead of the file"):
        hub.fetch(make_spec(f"{base}/download.html", None), progress=False, timeout=5)
    assert leftovers(cache / "models") == []


def test_without_published_checksum_the_sha256_is_reported(checkpoint_bytes, tmp_path):
    spec = make_spec(published(tmp_path, checkpoint_bytes), None)
    with pytest.warns(UserWarning, match=hashlib.sha256(checkpoint_bytes).hexdigest()):
        hub.fetch(spec, progress=False)


def test_missing_xxhash_fails_before_downloading(monkeypatch, cache):
    monkeypatch.setitem(__import__("sys").modules, "xxhash", None)  # import fails
    spec = replace(make_spec(closed_port_url(), None), checksum="xxh128:" + "0" * 32)
    with pytest.raises(DownloadError, match="pip install xxhash"):
        hub.fetch(spec, progress=False)


def test_built_in_model_has_nothing_to_fetch():
    with pytest.raises(DownloadError, match="nothing to download"):
        hub.fetch(get_model_spec("samforge_random_tiny"))


def test_cli_fetch(checkpoint_bytes, tmp_path):
    registry.register_model(make_spec(published(tmp_path, checkpoint_bytes), checkpoint_bytes))
    result = CliRunner().invoke(app, ["fetch", "test_tiny", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "sha256 verified" in result.output
    listed = CliRunner().invoke(app, ["list", "test_*"], env={"COLUMNS": "250"})
    assert "test_tiny" in listed.output and "yes" in listed.output
