"""The annotator in a real browser: Playwright drives Debian's headless chromium (the
Makefile's install step provides it) against a server on 127.0.0.1.

One user's path through the page: open the phantom volume, drag a box, see the overlay (read
from a screenshot), add a negative click, undo it, propagate, accept, save; the saved NIfTI
must equal what the Python API gives for the same prompts; a reload finds everything again.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from samforge.data import IntensitySettings, read_case
from samforge.inference import Predictor, PropagationSettings, propagate
from samforge.prompts import Prompts
from samforge.server import ServerSettings

from .conftest import VOLUME_SHAPE
from .live import free_port, serving

MIDDLE = VOLUME_SHAPE[0] // 2  # the slice the page opens a volume at
BOX = (30.0, 30.0, 70.0, 66.0)
OVERLAY_MARGIN = 60  # overlay pixels have R - B = 0.55 * (230 - 0); grey ones R == B


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            "the browser tests need Debian's chromium: run `make install` (it runs "
            "`apt-get install -y chromium`), or install it yourself."
        )
    return path


@pytest.fixture(scope="module")
def server(data_folder, nano, tmp_path_factory):
    settings = ServerSettings(data_folder, tmp_path_factory.mktemp("ws"), port=free_port())
    with serving(settings, loader=lambda name: nano) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(browser, server):
    # bypass_csp: lets Playwright evaluate its wait predicates; the page itself needs no eval.
    context = browser.new_context(viewport={"width": 1400, "height": 800}, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server)
    page.wait_for_selector("body[data-ready=true]")
    yield page
    assert not errors, errors
    context.close()


def screen_point(page, x: float, y: float) -> tuple[float, float]:
    """The page coordinates of image pixel (x, y) of the main view."""
    sx, sy = page.evaluate("([x, y]) => samforgeViews[0].imageToScreen(x, y)", [x, y])
    box = page.locator("#view0").bounding_box()
    return box["x"] + sx, box["y"] + sy


def overlay_at(page, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel of ``mask`` (image pixels of the main view): does the screenshot show
    the overlay colour there? Returns (inside the mask, outside it) as bool arrays. Each
    pixel is read off its centre, where the cross-hair lines are not."""
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB")).astype(int)
    rows, cols = np.mgrid[: mask.shape[0], : mask.shape[1]]
    centres = page.evaluate(
        "(points) => points.map(([x, y]) => samforgeViews[0].imageToScreen(x, y))",
        [[float(c) + 0.2, float(r) + 0.2] for r, c in zip(rows.ravel(), cols.ravel(), strict=True)],
    )
    box = page.locator("#view0").bounding_box()
    xs = np.array([box["x"] + sx for sx, _ in centres]).astype(int)
    ys = np.array([box["y"] + sy for _, sy in centres]).astype(int)
    coloured = (shot[ys, xs, 0] - shot[ys, xs, 2] > OVERLAY_MARGIN).reshape(mask.shape)
    return coloured[mask], coloured[~mask]


def labels_of(page, server, doc: str) -> np.ndarray:
    reply = page.request.get(f"{server}api/documents/{doc}/labels?axis=0&index={MIDDLE}")
    shape = tuple(int(n) for n in reply.headers["x-shape"].split(","))
    return np.frombuffer(reply.body(), "<u2").reshape(shape)


def wait_for_click(page, count: int) -> None:
    page.wait_for_function(f"document.body.dataset.clicks >= {count}", timeout=30_000)


def test_annotate_propagate_save_and_reload(page, server, data_folder, nano):
    page.click("#files li:has-text('ct')")
    page.click("#files li:has-text('phantom.nii.gz')")
    page.wait_for_selector("#embed[data-state=done]", timeout=120_000)
    doc = page.evaluate("localStorage.getItem('samforge.document')")

    page.mouse.move(*screen_point(page, *BOX[:2]))
    page.mouse.down()
    page.mouse.move(*screen_point(page, *BOX[2:]), steps=8)
    page.mouse.up()
    wait_for_click(page, 1)
    case = read_case(data_folder / "ct/phantom.nii.gz")
    mapping = IntensitySettings().case_mapping(case)
    predictor = Predictor(nano)
    predictor.set_image(case.image[MIDDLE], mapping=mapping)
    stored = json.loads(page.request.get(f"{server}api/documents/{doc}").body())
    box = stored["objects"][0]["prompts"][str(MIDDLE)]["box"]
    assert box == pytest.approx(BOX, abs=1.0)  # the drag landed where it was aimed
    expected = predictor.decode(Prompts.from_user(boxes=[box])).best().masks[0, 0].numpy()
    assert expected.sum() > 50
    np.testing.assert_array_equal(labels_of(page, server, doc) == 1, expected)
    inside, outside = overlay_at(page, expected)
    assert inside.mean() > 0.95 and outside.mean() < 0.05  # the overlay is on screen, at once

    page.keyboard.press("n")
    ys, xs = np.nonzero(expected)
    page.mouse.click(*screen_point(page, float(xs.mean()), float(ys.mean())))
    wait_for_click(page, 2)
    assert not np.array_equal(labels_of(page, server, doc) == 1, expected)
    page.keyboard.press("Control+z")
    page.wait_for_function("!document.getElementById('redo').disabled")
    np.testing.assert_array_equal(labels_of(page, server, doc) == 1, expected)

    page.fill("#iou", "0.3")
    page.click("#propagate")
    page.wait_for_selector("#propagation[data-state=done]", timeout=120_000)
    page.keyboard.press("a")
    page.wait_for_selector("#objects .badge.accepted")
    page.keyboard.press("Control+s")
    page.wait_for_selector("#saved a")

    saved = page.request.get(f"{server}api/documents/{doc}/download/labels").body()
    labels = nib.Nifti1Image.from_bytes(gzip.decompress(saved))
    source = nib.load(data_folder / "ct/phantom.nii.gz")
    np.testing.assert_allclose(labels.affine, source.affine)
    reference = propagate(
        Predictor(nano),
        case.image,
        {MIDDLE: Prompts.from_user(boxes=[box])},
        PropagationSettings("mask", 0.3),
        mapping=mapping,
    ).mask
    assert reference.sum() > expected.sum()  # it did reach other slices
    np.testing.assert_array_equal(
        np.transpose(np.asarray(labels.dataobj), (2, 1, 0)) == 1, reference
    )

    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("#objects .badge.accepted")
    inside, outside = overlay_at(page, expected)
    assert inside.mean() > 0.95 and outside.mean() < 0.05
    assert page.locator("#documents li").count() == 1
