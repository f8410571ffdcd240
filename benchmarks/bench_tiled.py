"""Tiled embedding of an image larger than the model frame (issue 18, item 5).

Embeds every tile of a SIDE × SIDE CT phantom (default 4000²) with ``TiledPredictor.embed_all``
for each ``--tile``/``--halo`` pair, beside the untiled ``set_image`` of the whole image (one
embedding of the image shrunk to the model frame); then one box prompt on the tiled image.
The memory cache is off (``cache_size=0``) so every repeat embeds again; medians.

    python benchmarks/bench_tiled.py --model samforge_nano --tiles 1024:256 256:64
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from samforge.data.phantoms import make_phantom
from samforge.inference import Predictor
from samforge.inference.tiled import TiledPredictor
from samforge.models import load_model
from samforge.testing.timing import machine_description


def median_seconds(function, repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="samforge_nano")
    parser.add_argument("--side", type=int, default=4000)
    parser.add_argument("--tiles", nargs="+", default=["1024:256", "256:64"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model)
    image = make_phantom("ct", shape=(args.side, args.side), seed=0)[0]
    print(machine_description())
    print(f"{args.model} (frame {model.config.image_size}²), {args.side}² CT phantom")
    predictor = Predictor(model, intensity="ct", cache_size=0)
    untiled = median_seconds(lambda: predictor.set_image(image), args.repeats)
    print(f"untiled set_image: {untiled:.2f} s")
    for pair in args.tiles:
        tile, halo = (int(value) for value in pair.split(":"))
        tiled = TiledPredictor(Predictor(model, intensity="ct", cache_size=0), tile, halo)
        tiled.set_image(image)
        seconds = median_seconds(tiled.embed_all, args.repeats)
        centre = args.side // 2
        box = [[centre - 60, centre - 40, centre + 60, centre + 40]]

        def first_prompt(tiled=tiled, box=box):
            tiled.set_image(image)  # forgets the current tile: the prompt embeds its own
            tiled.predict(boxes=box)

        prompt = median_seconds(first_prompt, args.repeats)
        print(
            f"tile {tile}, halo {halo}: {len(tiled.tiles)} tiles embedded in {seconds:.2f} s "
            f"({seconds / len(tiled.tiles):.3f} s a tile); one box (embeds its tile): "
            f"{prompt:.2f} s"
        )


if __name__ == "__main__":
    main()
