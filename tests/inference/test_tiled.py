"""Tiled embedding and segmentation of images larger than the model frame.

The closed-form cases use the fake models of tests/helpers/fake_models.py on VIT_TEST
(model frame 256, low-resolution logits 64): a 64-pixel tile (tile plus halo) maps one
image pixel to one low-resolution pixel, so answers come back pixel-exact. The real model
(samforge_nano) checks that a tile decodes exactly as an untiled predictor on the same crop.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers.fake_models import BoxSam, ObjectOracleSam
from helpers.synthetic import OBJECT_VALUE
from samforge.data.phantoms import make_phantom
from samforge.errors import ConfigError, PromptError
from samforge.inference import Predictor
from samforge.inference.objects import segment_objects
from samforge.inference.tiled import TiledPredictor, tile_grid
from samforge.models import load_model
from samforge.prompts import Prompts


def disc_image(size: int, centre: tuple[int, int], radius: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 image, bool disc): a bright disc on a dark background."""
    rows, columns = np.mgrid[:size, :size]
    disc = (rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 <= radius**2
    return np.where(disc, OBJECT_VALUE, 20).astype(np.uint8), disc


def test_tiles_cover_the_image_once_and_halos_stay_inside():
    tiles = tile_grid((300, 200), 128, 32)
    covered = np.zeros((300, 200), dtype=int)
    for tile in tiles:
        y0, x0, y1, x1 = tile.inner
        covered[y0:y1, x0:x1] += 1
        oy0, ox0, oy1, ox1 = tile.outer
        assert 0 <= oy0 <= y0 - min(32, y0) and oy1 == min(y1 + 32, 300)
        assert 0 <= ox0 <= x0 - min(32, x0) and ox1 == min(x1 + 32, 200)
    assert (covered == 1).all() and len(tiles) == 3 * 2


def test_a_box_inside_one_tile_gives_the_untiled_mask_of_that_tile():
    model = load_model("samforge_nano")
    image = make_phantom("ct", shape=(300, 380), seed=4)[0]
    tiled = TiledPredictor(Predictor(model, intensity="ct"), tile_shape=160, halo=40)
    tiled.set_image(image)
    box = [200, 170, 280, 250]  # centre (240, 210): tile (1, 1), inner y 160–300, x 160–320
    result = tiled.predict(boxes=[box])
    tile = tiled.tile_of(Prompts.from_user(boxes=[box]), 0)
    assert tile.inner == (160, 160, 300, 320)
    y0, x0, y1, x1 = tile.outer
    untiled = Predictor(model)
    untiled.set_image(image[y0:y1, x0:x1], mapping=tiled._mapping)
    crop = untiled.predict(boxes=[[box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0]])
    expected = np.zeros_like(result.masks)
    expected[..., y0:y1, x0:x1] = crop.masks
    assert crop.masks.any()
    np.testing.assert_array_equal(result.masks, expected)
    np.testing.assert_array_equal(result.scores, crop.scores)


def test_an_object_crossing_a_tile_border_comes_back_whole():
    image, disc = disc_image(128, centre=(48, 58), radius=12)  # x 46–70 crosses x = 64
    tiled = TiledPredictor(Predictor(ObjectOracleSam()), tile_shape=32, halo=16)
    tiled.set_image(image)
    mask = tiled.predict(points=[[58, 48]], labels=[1]).masks[0, 0]
    np.testing.assert_array_equal(mask, disc)
    without_halo = TiledPredictor(Predictor(ObjectOracleSam()), tile_shape=32, halo=0)
    without_halo.set_image(image)
    cut = without_halo.predict(points=[[58, 48]], labels=[1]).masks[0, 0]
    assert not cut[:, 64:].any() and disc[:, 64:].any()  # the halo is what keeps it whole


def test_objects_in_different_tiles_come_back_in_order_in_image_pixels():
    model = BoxSam()
    tiled = TiledPredictor(Predictor(model), tile_shape=64, halo=0)
    tiled.set_image(np.full((128, 192), 30, dtype=np.uint8))
    boxes = [[130, 70, 150, 100], [5, 6, 30, 20], [140, 80, 160, 90]]
    masks = tiled.predict(boxes=boxes).masks[:, 0]
    for mask, (x0, y0, x1, y1) in zip(masks, boxes, strict=True):
        expected = np.zeros((128, 192), dtype=bool)
        expected[y0:y1, x0:x1] = True
        np.testing.assert_array_equal(mask, expected)
    labels, _ = segment_objects(tiled, Prompts.from_user(boxes=[boxes[1]]), multimask=False)
    assert labels.shape == (128, 192) and labels[6:20, 5:30].all() and labels.sum() == 14 * 25


def test_tiles_are_embedded_when_needed_and_kept_in_the_bounded_cache():
    model = BoxSam()
    predictor = Predictor(model, cache_size=2)
    tiled = TiledPredictor(predictor, tile_shape=64, halo=0)
    tiled.set_image(np.random.default_rng(0).integers(0, 255, (192, 192), dtype=np.uint8))
    assert model.embedded == 0
    tiled.predict(boxes=[[5, 5, 20, 20]])
    tiled.predict(boxes=[[30, 30, 40, 40]])  # the same tile
    assert model.embedded == 1
    tiled.predict(boxes=[[70, 5, 90, 20]])
    tiled.predict(boxes=[[140, 140, 150, 150]])
    assert model.embedded == 3 and len(predictor.cache) == 2  # at most two tiles in memory
    tiled.predict(boxes=[[5, 5, 20, 20]])  # evicted: embedded again
    assert model.embedded == 4


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (dict(boxes=[[150, 10, 210, 40]]), "outside"),
        (dict(points=[[10, 300]], labels=[1]), "outside"),
        (dict(boxes=[[10, 10, 120, 40]]), "beyond its tile and halo"),
        (dict(points=[[10, 10], [100, 10]], labels=[1, 1]), "beyond its tile and halo"),
    ],
)
def test_prompts_outside_the_image_or_the_tile_are_refused(prompt, message):
    tiled = TiledPredictor(Predictor(BoxSam()), tile_shape=64, halo=8)
    tiled.set_image(np.zeros((192, 192), dtype=np.uint8))
    with pytest.raises(PromptError, match=message):
        tiled.predict(**prompt)


@pytest.mark.parametrize(("tile", "halo"), [(8, 0), (64, 64), (64, -1)])
def test_bad_tiling_is_refused(tile, halo):
    with pytest.raises(ConfigError):
        TiledPredictor(Predictor(BoxSam()), tile_shape=tile, halo=halo)


def test_a_4000_pixel_image_is_prompted_anywhere_in_image_pixels():
    """micro-sam's usual tiling (1024, halo 256) on a 4000 × 4000 image: a box in the last
    tile and a point at the far right edge come back where they were given (BoxSam: the
    box itself, or a disc around a lone point, up to the resizing of the tile)."""
    model = BoxSam()
    tiled = TiledPredictor(Predictor(model), tile_shape=1024, halo=256)
    tiled.set_image(np.full((4000, 4000), 50, dtype=np.uint8))
    assert len(tiled.tiles) == 16 and model.embedded == 0
    box = [3700, 3100, 3900, 3300]
    mask = tiled.predict(boxes=[box]).masks[0, 0]
    rows, columns = np.nonzero(mask)
    found = [columns.min(), rows.min(), columns.max() + 1, rows.max() + 1]
    # One low-resolution pixel of the 1184-pixel last tile is 18.5 image pixels.
    np.testing.assert_allclose(found, box, atol=19)
    point = tiled.predict(points=[[3995, 20]], labels=[1]).masks[0, 0]
    rows, columns = np.nonzero(point)
    assert point[20, 3995] and rows.max() < 200 and columns.min() > 3800  # around the point
    assert model.embedded == 2  # two of the sixteen tiles
