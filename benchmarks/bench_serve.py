"""``samforge serve``: how long a click on an embedded image takes to show its mask (issue 17).

A real image (an axial slice of the MNI152 T1 template shipped with nilearn, 2 mm voxels,
saved as PNG) is served on 127.0.0.1 by uvicorn in this process; after its embedding is
done, one session clicks positive points at the centre and around it:

- ``server``: the server's own time per click (the ``Server-Timing`` header: prompts checked,
  mask decoded, document saved to disk, label plane encoded);
- ``http``: the round trip a client sees (loopback HTTP included);
- ``page`` (with ``--browser``): what the page shows in headless chromium, from the click to
  the overlay drawn (the page's own ``performance.now()``);
- ``baseline``: ``Predictor.decode`` (three masks, the best kept) in this process for the
  same point on the same embedded image, measured in the same run; ``server / baseline``
  is the server's overhead.

Goals for samforge_nano: page ≤ 150 ms and server ≤ 50 ms (medians). ``--model vit_b`` times
a ViT-B (random weights: decoding costs the same whatever the weights).

    python benchmarks/bench_serve.py --model samforge_nano --browser
    python benchmarks/bench_serve.py --model vit_b
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import torch
import uvicorn
from PIL import Image

from samforge.data import IntensitySettings, read_case
from samforge.data.builtin import mni152_case
from samforge.inference import Predictor
from samforge.models import build_model, get_config, load_model
from samforge.prompts import Prompts
from samforge.server import ServerSettings, create_app
from samforge.testing.timing import machine_description

GOAL_PAGE_MS = 150.0
GOAL_SERVER_MS = 50.0
WARM_UP = 5  # the first decodes of a process are slower (allocations, lazy init)


def model_named(name: str):
    if name in ("vit_b", "vit_l", "vit_h"):
        torch.manual_seed(0)
        return build_model(get_config(name))
    return load_model(name)


def serve(settings: ServerSettings, model) -> uvicorn.Server:
    app = create_app(settings, loader=lambda _name: model)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server


def click_points(shape: tuple[int, int], clicks: int) -> list[tuple[float, float]]:
    height, width = shape
    angles = np.linspace(0, 2 * np.pi, clicks, endpoint=False)
    return [(width / 2 + 8 * np.cos(a), height / 2 + 8 * np.sin(a)) for a in angles]


def time_http(url: str, points) -> tuple[list[float], list[float]]:
    """(round trips, server times) in ms of one session clicking ``points`` one by one."""
    with httpx.Client(base_url=url, timeout=600) as client:
        doc = client.post("api/documents", json={"path": "mni152_slice.png"}).json()
        job = doc["jobs"][0]["id"]
        while client.get(f"api/jobs/{job}").json()["state"] != "done":
            time.sleep(0.1)
        object_id = client.post(f"api/documents/{doc['id']}/objects", json={}).json()["objects"][0][
            "id"
        ]
        trips, server = [], []
        for x, y in [points[0], *points]:  # the first click warms up
            started = time.perf_counter()
            reply = client.put(
                f"api/documents/{doc['id']}/objects/{object_id}/prompts/0",
                json={"points": [[x, y, 1]]},
            )
            reply.raise_for_status()
            trips.append((time.perf_counter() - started) * 1000)
            server.append(float(reply.headers["server-timing"].split("dur=")[1]))
        return trips[1:], server[1:]


def time_page(url: str, points) -> list[float]:
    """Click to overlay drawn, in ms, as the page measures it in headless chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"))
        page = browser.new_page(viewport={"width": 1400, "height": 800}, bypass_csp=True)
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        page.click("#files li:has-text('mni152_slice.png')")
        page.wait_for_selector("#embed[data-state=done]", timeout=600_000)
        page.keyboard.press("p")
        box = page.locator("#view0").bounding_box()
        times = []
        for number, (x, y) in enumerate([points[0], *points], start=1):
            sx, sy = page.evaluate("([x, y]) => samforgeViews[0].imageToScreen(x, y)", [x, y])
            page.mouse.click(box["x"] + sx, box["y"] + sy)
            page.wait_for_function(f"document.body.dataset.clicks >= {number}")
            times.append(float(page.evaluate("document.body.dataset.lastClickMs")))
            page.keyboard.press("Control+z")  # one point at a time, as in the other timings
            time.sleep(0.2)
        browser.close()
        return times[1:]


def time_baseline(model, image_path: Path, points) -> list[float]:
    case = read_case(image_path)
    predictor = Predictor(model)
    predictor.set_image(case.image, mapping=IntensitySettings().case_mapping(case))
    times = []
    for x, y in [*points[:WARM_UP], *points]:
        started = time.perf_counter()
        record = Prompts.from_user([[[x, y]]], [[1]])
        predictor.decode(record, multimask=True).best().masks.numpy()  # as the server does
        times.append((time.perf_counter() - started) * 1000)
    return times[WARM_UP:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="samforge_nano")
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument("--browser", action="store_true", help="also time clicks in chromium")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = model_named(args.model)
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data"
        data.mkdir()
        volume = mni152_case().image
        Image.fromarray(volume[volume.shape[0] // 2]).save(data / "mni152_slice.png")
        points = click_points(volume.shape[1:], args.clicks)
        settings = ServerSettings(data, Path(folder) / "ws", port=8917)
        # On a worker thread, as the server decodes (FastAPI's thread pool): on a busy 2-core
        # machine, torch's two OpenMP threads on the main thread can wait seconds for a core.
        with ThreadPoolExecutor(1) as pool:
            image = data / "mni152_slice.png"
            baseline = pool.submit(time_baseline, model, image, points).result()
        server = serve(settings, model)
        try:
            trips, server_ms = time_http(settings.url, points)
            page = time_page(settings.url, points) if args.browser else []
        finally:
            server.should_exit = True

    print(f"machine: {machine_description()}; torch threads: {torch.get_num_threads()}")
    print(f"model {args.model}, image {volume.shape[1:]} px, {args.clicks} clicks; medians (p95):")
    rows = [("server", server_ms), ("http", trips), ("page", page), ("baseline", baseline)]
    for name, values in rows:
        if values:
            print(f"  {name:9s} {np.median(values):7.1f} ms  ({np.percentile(values, 95):.1f})")
    print(f"  server / baseline: {np.median(server_ms) / np.median(baseline):.2f}")
    if args.model == "samforge_nano":
        shown = np.median(page) if page else np.median(trips)
        ok = np.median(server_ms) <= GOAL_SERVER_MS and shown <= GOAL_PAGE_MS
        print(
            f"  goal (server ≤ {GOAL_SERVER_MS:g} ms, shown ≤ {GOAL_PAGE_MS:g} ms): "
            + ("met" if ok else "NOT met")
        )


if __name__ == "__main__":
    main()
