"""Every endpoint of the annotator's API, used as the page uses it, with the real
samforge_nano model; results are compared with the Python API and with the source files as
nibabel reads them."""

from __future__ import annotations

import gzip
import io
import json
import time

import nibabel as nib
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from samforge.data import IntensitySettings, read_case
from samforge.inference import Predictor, PropagationSettings, propagate
from samforge.prompts import Prompts
from samforge.server import ServerSettings, create_app

from .conftest import BASE_URL, VOLUME_SHAPE

BOX = [30, 30, 70, 66]  # (x0, y0, x1, y1) on slice MIDDLE: around the phantom's liver region
MIDDLE = VOLUME_SHAPE[0] // 2


@pytest.fixture(scope="module")
def client(data_folder, nano, tmp_path_factory):
    settings = ServerSettings(data_folder, tmp_path_factory.mktemp("workspace"))
    app = create_app(settings, loader=lambda name: nano)
    with TestClient(app, base_url=BASE_URL) as client:
        yield client


def wait(client: TestClient, job_id: str, timeout: float = 120) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end in {timeout} s")


def nifti(content: bytes) -> nib.Nifti1Image:
    return nib.Nifti1Image.from_bytes(gzip.decompress(content))


def pixels(response) -> np.ndarray:
    shape = tuple(int(n) for n in response.headers["x-shape"].split(","))
    dtype = {"float32": "<f4", "uint16": "<u2", "uint8": "u1"}[response.headers["x-dtype"]]
    return np.frombuffer(response.content, dtype=dtype).reshape(shape)


@pytest.fixture(scope="module")
def volume(client):
    document = client.post("/api/documents", json={"path": "ct/phantom.nii.gz"}).json()
    embed = next(job for job in document["jobs"] if job["kind"] == "embed")
    assert wait(client, embed["id"])["state"] == "done"
    return document


def test_info_lists_models_windows_and_limits(client):
    info = client.get("/api/info").json()
    assert info["model"] == "samforge_nano"
    assert "samforge_nano" in [model["name"] for model in info["models"]]
    assert info["windows"]["lung"] == [-600.0, 1500.0]
    assert "mask" in info["propagation_modes"]


def test_files_lists_images_volumes_and_series_but_no_link_out(client):
    entries = {e["name"]: e["kind"] for e in client.get("/api/files").json()["entries"]}
    assert entries == {"ct": "folder", "disc.png": "image", "series": "series"}
    inner = client.get("/api/files", params={"path": "ct"}).json()["entries"]
    assert [(e["path"], e["kind"]) for e in inner] == [("ct/phantom.nii.gz", "volume")]


def test_planes_are_the_file_voxels(client, volume, data_folder):
    """Plane k across each axis equals the NIfTI array read by nibabel, in (D, H, W)."""
    expected = np.transpose(nib.load(data_folder / "ct/phantom.nii.gz").get_fdata(), (2, 1, 0))
    assert volume["shape"] == list(VOLUME_SHAPE)
    for axis, index in [(0, MIDDLE), (1, 40), (2, 7)]:
        response = client.get(
            f"/api/documents/{volume['id']}/plane", params={"axis": axis, "index": index}
        )
        assert response.headers["content-type"] == "application/octet-stream"
        np.testing.assert_array_equal(pixels(response), np.take(expected, index, axis=axis))


def test_click_gives_the_python_api_mask_then_undo_redo(client, volume, nano, data_folder):
    doc = volume["id"]
    created = client.post(f"/api/documents/{doc}/objects", json={"name": "liver"}).json()
    object_id = created["objects"][-1]["id"]
    response = client.put(
        f"/api/documents/{doc}/objects/{object_id}/prompts/{MIDDLE}",
        json={"box": BOX, "points": [[50, 48, 1], [34, 34, 0]]},
    )
    assert response.status_code == 200, response.text
    labels = pixels(response)

    case = read_case(data_folder / "ct/phantom.nii.gz")
    predictor = Predictor(nano)
    predictor.set_image(case.image[MIDDLE], mapping=IntensitySettings().case_mapping(case))
    record = Prompts.from_user([[[50, 48], [34, 34]]], [[1, 0]], [BOX])
    expected = predictor.decode(record).best().masks[0, 0].numpy()
    assert expected.any()
    np.testing.assert_array_equal(labels == object_id, expected)

    state = client.post(f"/api/documents/{doc}/undo").json()
    assert state["objects"][-1]["slices"] == [] and state["can_redo"]
    after_undo = client.get(f"/api/documents/{doc}/labels", params={"index": MIDDLE})
    assert not (pixels(after_undo) == object_id).any()
    state = client.post(f"/api/documents/{doc}/redo").json()
    assert state["objects"][-1]["slices"] == [MIDDLE]
    client.delete(f"/api/documents/{doc}/objects/{object_id}")


def test_paint_and_erase_a_disc(client, volume):
    doc = volume["id"]
    object_id = client.post(f"/api/documents/{doc}/objects", json={}).json()["objects"][-1]["id"]
    url = f"/api/documents/{doc}/objects/{object_id}/paint"
    labels = pixels(client.post(url, json={"index": 2, "stroke": [[40, 50]], "radius": 5}))
    rows, cols = np.nonzero(labels == object_id)
    assert len(rows) == pytest.approx(np.pi * 25, rel=0.2)
    assert (rows.mean(), cols.mean()) == pytest.approx((50, 40), abs=0.5)
    labels = pixels(
        client.post(url, json={"index": 2, "stroke": [[40, 50]], "radius": 6, "erase": True})
    )
    assert not (labels == object_id).any()
    state = client.delete(f"/api/documents/{doc}/objects/{object_id}").json()
    assert object_id not in [info["id"] for info in state["objects"]]


def test_rename_recolour_accept(client, volume):
    doc = volume["id"]
    object_id = client.post(f"/api/documents/{doc}/objects", json={"name": "a"}).json()["objects"][
        -1
    ]["id"]
    state = client.patch(
        f"/api/documents/{doc}/objects/{object_id}",
        json={"name": "kidney", "colour": "#112233", "status": "accepted"},
    ).json()
    info = next(item for item in state["objects"] if item["id"] == object_id)
    assert (info["name"], info["colour"], info["status"]) == ("kidney", "#112233", "accepted")
    client.delete(f"/api/documents/{doc}/objects/{object_id}")


def test_propagate_save_and_download_match_the_python_api(client, volume, nano, data_folder):
    doc = volume["id"]
    object_id = client.post(f"/api/documents/{doc}/objects", json={"name": "organ"}).json()[
        "objects"
    ][-1]["id"]
    client.put(f"/api/documents/{doc}/objects/{object_id}/prompts/{MIDDLE}", json={"box": BOX})
    settings = {"mode": "box", "iou_threshold": 0.5, "box_extension": 0.1}
    job = client.post(f"/api/documents/{doc}/objects/{object_id}/propagate", json=settings).json()
    finished = wait(client, job["id"])
    assert finished["state"] == "done", finished
    client.patch(f"/api/documents/{doc}/objects/{object_id}", json={"status": "accepted"})
    saved = client.post(f"/api/documents/{doc}/save").json()
    assert saved["objects"] == 1

    source = nib.load(data_folder / "ct/phantom.nii.gz")
    download = client.get(saved["downloads"][0])
    labels = nifti(download.content)
    np.testing.assert_allclose(labels.affine, source.affine)
    assert labels.shape == source.shape

    case = read_case(data_folder / "ct/phantom.nii.gz")
    anchors = {MIDDLE: Prompts.from_user(boxes=[BOX])}
    expected = propagate(
        Predictor(nano),
        case.image,
        anchors,
        PropagationSettings(**settings),
        mapping=IntensitySettings().case_mapping(case),
    ).mask
    assert expected.sum() > 0
    saved_dhw = np.transpose(np.asarray(labels.dataobj), (2, 1, 0))
    np.testing.assert_array_equal(saved_dhw == object_id, expected)

    prompts = json.loads(client.get(saved["downloads"][1]).content)
    assert prompts["objects"][0]["prompts"] == {str(MIDDLE): {"box": BOX, "points": []}}
    client.delete(f"/api/documents/{doc}/objects/{object_id}")


def test_2d_png_click_and_save(client):
    document = client.post("/api/documents", json={"path": "disc.png"}).json()
    assert document["shape"] == [64, 80] and not document["is_volume"]
    doc = document["id"]
    object_id = client.post(f"/api/documents/{doc}/objects", json={}).json()["objects"][-1]["id"]
    labels = pixels(
        client.put(
            f"/api/documents/{doc}/objects/{object_id}/prompts/0", json={"box": [22, 12, 58, 48]}
        )
    )
    truth = np.zeros((64, 80), bool)
    rows, cols = np.mgrid[:64, :80]
    truth[(rows - 30) ** 2 + (cols - 40) ** 2 < 15**2] = True
    dice = 2 * ((labels > 0) & truth).sum() / ((labels > 0).sum() + truth.sum())
    assert dice > 0.8
    client.patch(f"/api/documents/{doc}/objects/{object_id}", json={"status": "accepted"})
    saved = client.post(f"/api/documents/{doc}/save").json()
    png = np.asarray(Image.open(io.BytesIO(client.get(saved["downloads"][0]).content)))
    np.testing.assert_array_equal(png, labels)
    assert (
        client.post(f"/api/documents/{doc}/objects/{object_id}/propagate", json={}).status_code
        == 400
    )


def test_dicom_series_opens_and_saves_as_nifti_with_its_geometry(client, data_folder):
    document = client.post("/api/documents", json={"path": "series"}).json()
    assert document["shape"] == [6, 8, 10] and document["modality"] == "ct"
    doc = document["id"]
    object_id = client.post(f"/api/documents/{doc}/objects", json={}).json()["objects"][-1]["id"]
    client.post(
        f"/api/documents/{doc}/objects/{object_id}/paint",
        json={"index": 1, "stroke": [[2, 3]], "radius": 1},
    )
    client.patch(f"/api/documents/{doc}/objects/{object_id}", json={"status": "accepted"})
    saved = client.post(f"/api/documents/{doc}/save").json()
    image = nifti(client.get(saved["downloads"][0]).content)
    np.testing.assert_allclose(image.affine, read_case(data_folder / "series").affine)
    assert client.delete(f"/api/documents/{doc}").json() == {"closed": doc}
    assert client.get(f"/api/documents/{doc}").status_code == 404


def test_uploads_of_png_and_dicom_series(client, data_folder):
    with open(data_folder / "disc.png", "rb") as handle:
        document = client.post(
            "/api/uploads", files={"files": ("mine.png", handle, "image/png")}
        ).json()
    assert document["shape"] == [64, 80] and document["source"]["kind"] == "upload"
    files = [
        ("files", (path.name, path.read_bytes(), "application/dicom"))
        for path in sorted((data_folder / "series").iterdir())
        if path.name.startswith("IM")
    ]
    document = client.post("/api/uploads", files=files).json()
    assert document["shape"] == [6, 8, 10]
    listed = [item["id"] for item in client.get("/api/documents").json()]
    assert document["id"] in listed


def test_switching_model_keeps_masks(client, volume):
    reply = client.put("/api/model", json={"name": "samforge_nano"})
    assert reply.json() == {"model": "samforge_nano"}
    assert client.get(f"/api/documents/{volume['id']}").status_code == 200


def test_jobs_can_be_cancelled_and_unknown_jobs_are_404(client, volume):
    job = client.get(f"/api/documents/{volume['id']}").json()["jobs"][0]
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    assert client.get("/api/jobs/0123456789abcdef").status_code == 404


def test_page_and_static_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "samforge" in page.text
    for src in ("/static/app.js", "/static/style.css"):
        assert client.get(src).status_code == 200
    assert "http" not in "".join(  # nothing is fetched from another site
        line for line in page.text.splitlines() if "src=" in line or "href=" in line
    )
