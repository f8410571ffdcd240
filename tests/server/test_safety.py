"""Every refusal the issue lists under Safety: loopback-only without a token, the token on
every request, files only under the data folder, upload caps, Origin checks, isolated
sessions, no pickle, and 4xx JSON messages (never a traceback) for malformed requests."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from samforge.errors import ConfigError
from samforge.server import ServerSettings, create_app
from samforge.server.settings import MIB

from .conftest import BASE_URL

TOKEN = "0123456789abcdef-token"


@pytest.fixture(scope="module")
def app(data_folder, nano, tmp_path_factory):
    settings = ServerSettings(
        data_folder, tmp_path_factory.mktemp("workspace"), max_upload_bytes=MIB, max_voxels=10_000
    )
    return create_app(settings, loader=lambda name: nano)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as client:
        yield client


def refused(response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["error"]
    assert words.lower() in message.lower()
    assert "Traceback" not in message


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("../secret.txt", "'..'"),
        ("ct/../../secret.txt", "'..'"),
        ("/etc/passwd", "absolute"),
        ("~root", "absolute"),
        ("leak", "outside"),
        ("leak_dir/secret.txt", "outside"),
        ("ct\\..\\..\\secret.txt", "'/'"),
        ("ct/missing.nii.gz", "does not exist"),
    ],
)
def test_paths_outside_the_data_folder_are_refused(client, path, words):
    status = 404 if "missing" in path else 403
    refused(client.post("/api/documents", json={"path": path}), status, words)
    refused(client.get("/api/files", params={"path": path}), status, words)


def test_percent_encoded_traversal_is_refused(client):
    refused(client.get("/api/files?path=%2e%2e%2fsecret.txt"), 403, "'..'")
    refused(client.get("/api/files?path=%2e%2e%2f%2e%2e%2fetc"), 403, "'..'")
    response = client.get("/static/%2e%2e/%2e%2e/%2e%2e/secret.txt")
    assert response.status_code == 404 and "outside the data" not in response.text


def test_images_over_the_voxel_cap_are_refused_before_reading(client):
    refused(client.post("/api/documents", json={"path": "ct/phantom.nii.gz"}), 413, "voxels")


def test_uploads_over_the_byte_cap_are_refused(client):
    big = b"\0" * (MIB + 1)
    refused(client.post("/api/uploads", files={"files": ("big.nii", big)}), 413, "MiB")


def test_uploads_over_the_voxel_cap_leave_nothing_behind(client, data_folder, app):
    data = (data_folder / "ct/phantom.nii.gz").read_bytes()
    refused(client.post("/api/uploads", files={"files": ("p.nii.gz", data)}), 413, "voxels")
    workspace = app.state.annotator.settings.workspace
    assert not [p for p in workspace.rglob("uploads/*") if p.exists()]


def test_uploads_of_other_files_are_refused(client):
    refused(
        client.post("/api/uploads", files={"files": ("notes.txt", b"hello")}), 400, "not an image"
    )
    refused(client.post("/api/uploads", data={"x": "1"}), 400, "no file")


def test_foreign_origin_cannot_change_state(client):
    refused(
        client.post(
            "/api/documents", json={"path": "disc.png"}, headers={"Origin": "http://evil.example"}
        ),
        403,
        "own page",
    )
    refused(
        client.post(
            "/api/documents", json={"path": "disc.png"}, headers={"Sec-Fetch-Site": "cross-site"}
        ),
        403,
        "cross-site",
    )
    same = client.post("/api/documents", json={"path": "disc.png"}, headers={"Origin": BASE_URL})
    assert same.status_code == 200


def test_foreign_host_is_refused_without_token(client):
    """A page on another site that rebinds its DNS name to 127.0.0.1 names its own host."""
    refused(client.get("/api/info", headers={"Host": "evil.example:8000"}), 403, "localhost")


def test_sessions_are_isolated(client, app):
    document = client.post("/api/documents", json={"path": "disc.png"}).json()
    client.post(f"/api/documents/{document['id']}/objects", json={"name": "mine"})
    job_id = document["jobs"][0]["id"] if document["jobs"] else "0" * 16
    with TestClient(app, base_url=BASE_URL) as other:
        refused(other.get(f"/api/documents/{document['id']}"), 404, "no open document")
        refused(other.post(f"/api/documents/{document['id']}/objects", json={}), 404, "no open")
        refused(other.get(f"/api/jobs/{job_id}"), 404, "no job")
        assert other.get("/api/documents").json() == []
        opened = other.post("/api/documents", json={"path": "disc.png"}).json()
        assert opened["id"] != document["id"] and opened["objects"] == []


def test_forged_session_cookie_gets_a_new_session(client, app):
    with TestClient(app, base_url=BASE_URL, cookies={"samforge_session": "../../etc"}) as other:
        response = other.get("/api/documents")
        assert response.json() == [] and "samforge_session=" in response.headers["set-cookie"]


@pytest.mark.parametrize(
    ("method", "url", "body", "words"),
    [
        ("put", "/api/model", {"name": "no_such_model"}, "not offered"),
        ("post", "/api/documents", {"path": 3}, "malformed"),
        ("post", "/api/documents", {"path": "disc.png", "extra": 1}, "malformed"),
        ("get", "/api/documents/nope/plane", None, "no open document"),
        ("get", "/api/nothing/here", None, "not found"),
    ],
)
def test_malformed_requests_get_4xx_messages(client, method, url, body, words):
    response = getattr(client, method)(url, **({} if body is None else {"json": body}))
    assert 400 <= response.status_code < 500
    refused(response, response.status_code, words)


def test_bad_prompts_and_strokes_get_4xx_messages(client):
    doc = client.post("/api/documents", json={"path": "disc.png"}).json()["id"]
    object_id = client.post(f"/api/documents/{doc}/objects", json={}).json()["objects"][-1]["id"]
    base = f"/api/documents/{doc}/objects/{object_id}"
    refused(
        client.put(
            f"{base}/prompts/0", content=b"{not json", headers={"content-type": "application/json"}
        ),
        422,
        "malformed",
    )
    refused(client.put(f"{base}/prompts/0", json={"box": [1, 2, 3]}), 422, "malformed")
    refused(client.put(f"{base}/prompts/0", json={"points": [[1, 2, 5]]}), 422, "malformed")
    refused(client.put(f"{base}/prompts/0", json={"box": [9, 9, 2, 2]}), 400, "box")
    refused(client.put(f"{base}/prompts/7", json={"box": [1, 1, 9, 9]}), 400, "slice 7")
    refused(
        client.post(f"{base}/paint", json={"index": 0, "stroke": [], "radius": 3}), 422, "malformed"
    )
    refused(client.patch(f"{base}", json={"colour": "red"}), 400, "colour")
    refused(client.patch(f"/api/documents/{doc}/objects/999", json={"name": "x"}), 404, "no object")
    refused(client.get(f"/api/documents/{doc}/plane", params={"axis": 1}), 400, "2D image")
    big = {"points": [[1, 1, 1]] * 200_000}
    refused(client.put(f"{base}/prompts/0", json=big), 413, "at most")


def test_no_pickle_crosses_the_wire(client):
    """Replies are JSON or raw little-endian pixels with their shape in a header."""
    doc = client.post("/api/documents", json={"path": "disc.png"}).json()["id"]
    for url in ("/api/info", "/api/files", f"/api/documents/{doc}", f"/api/documents/{doc}/plane"):
        response = client.get(url)
        kind = response.headers["content-type"]
        assert kind.startswith(("application/json", "application/octet-stream")), kind
        assert not response.content.startswith(b"\x80")  # the pickle protocol marker


def test_security_headers(app):
    with TestClient(app, base_url=BASE_URL) as fresh:
        response = fresh.get("/")
        assert response.headers["x-frame-options"] == "DENY"
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert "httponly" in response.headers["set-cookie"].lower()


def test_binding_another_address_needs_a_token(data_folder, tmp_path):
    with pytest.raises(ConfigError, match="--token"):
        ServerSettings(data_folder, tmp_path, host="0.0.0.0")
    with pytest.raises(ConfigError, match="16 characters"):
        ServerSettings(data_folder, tmp_path, host="0.0.0.0", token="short")


@pytest.fixture(scope="module")
def token_app(data_folder, nano, tmp_path_factory):
    settings = ServerSettings(
        data_folder, tmp_path_factory.mktemp("ws"), host="0.0.0.0", token=TOKEN
    )
    return create_app(settings, loader=lambda name: nano)


def test_token_is_checked_on_every_request(token_app):
    with TestClient(token_app, base_url="http://annotate.lab:8000") as client:
        for url in ("/", "/api/info", "/static/app.js", "/api/files"):
            refused(client.get(url), 401, "token")
        refused(
            client.get("/api/info", headers={"Authorization": "Bearer wrong-token-xxxxxx"}),
            401,
            "token",
        )
        good = client.get("/api/info", headers={"Authorization": f"Bearer {TOKEN}"})
        assert good.status_code == 200
        opened = client.get(f"/?token={TOKEN}", follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == "/"
        assert client.get("/api/info").status_code == 200  # the cookie now carries it
        # A wrong token in the URL neither passes nor replaces the good cookie.
        wrong = client.get("/?token=wrong-token-xxxxxxxxx", follow_redirects=False)
        assert wrong.status_code == 200 and "set-cookie" not in wrong.headers
        assert client.get("/api/info").status_code == 200
