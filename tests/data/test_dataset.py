"""ObjectSegmentationDataset: shapes, sampling, resizing conventions, volumes, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from samforge.data import Case, ObjectSegmentationDataset, collate_objects, normalize_intensity
from samforge.errors import ConfigError, DataError
from samforge.preprocessing import SAM_PIXEL_MEAN, SAM_PIXEL_STD, resized_shape


def _image_case(name: str, objects: int, shape=(60, 90)) -> Case:
    rng = np.random.default_rng(len(name))
    image = rng.integers(0, 4000, shape, dtype=np.uint16)
    label = np.zeros(shape, np.uint8)
    for i in range(objects):  # squares of 8×8 along a row, classes 1 and 2
        label[10:18, 5 + 12 * i : 13 + 12 * i] = 1 + i % 2
    label[50, 50] = 1  # a single pixel: below min_size
    return Case(image, label, (1.0, 1.0), None, "us", name)


def _volume_case() -> Case:
    image = np.full((5, 40, 30), -1000, np.int16)
    label = np.zeros((5, 40, 30), np.uint8)
    label[1:4, 10:20, 5:15] = 3
    image[label > 0] = 60
    return Case(image, label, (3.0, 1.0, 1.0), np.eye(4), "ct", "vol")


@pytest.fixture
def cases() -> list[Case]:
    return [_image_case("three", 3), _image_case("none", 0), _image_case("seven", 7)]


def test_items_hold_model_ready_images_and_masks(cases):
    data = ObjectSegmentationDataset(cases, n_obj=5, image_size=64, min_size=20)
    assert len(data) == 2  # the image without objects is skipped
    item = data[1]
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
    assert torch.isfinite(item["image"]).all()
    assert item["masks"].shape == (5, 64, 64)
    assert set(torch.unique(item["masks"]).tolist()) <= {0.0, 1.0}
    assert item["original_size"].tolist() == [60, 90] and item["name"] == "seven"
    assert item["input_size"].tolist() == list(resized_shape(60, 90, 64)) == [43, 64]
    assert set(item["class_ids"].tolist()) <= {1, 2}
    # objects without replacement: five different squares
    flat = item["masks"].flatten(1)
    assert torch.linalg.matrix_rank(flat).item() == 5
    assert len(data[0]["masks"]) == 3  # fewer objects than n_obj: all of them


def test_padding_is_bottom_right_and_content_keeps_its_place(cases):
    data = ObjectSegmentationDataset(cases[:1], n_obj=1, image_size=64, min_size=20)
    item = data[0]
    h, w = item["input_size"].tolist()
    assert (h, w) == (43, 64)  # 60×90 → 43×64, padded below
    assert item["image"][:, h:, :].abs().max() == 0 and item["masks"][:, h:, :].max() == 0
    ys, xs = torch.nonzero(item["masks"][0], as_tuple=True)
    scale = 64 / 90  # the 8×8 squares span rows 10–17 of the original
    assert ys.min() == pytest.approx(10 * scale, abs=1) and ys.max() + 1 == pytest.approx(
        18 * scale, abs=1
    )
    assert xs.max() - xs.min() + 1 == pytest.approx(8 * scale, abs=1.5)


def test_medsam_resizes_straight_to_the_square(cases):
    data = ObjectSegmentationDataset(
        cases[:1], n_obj=2, image_size=32, preprocessing="medsam", min_size=20
    )
    item = data[0]
    assert item["input_size"].tolist() == [32, 32] and item["masks"].shape == (2, 32, 32)
    rows = torch.nonzero(item["masks"].sum(0))[:, 0]
    assert rows.min() == pytest.approx(10 * 32 / 60, abs=1) and rows.max() + 1 == pytest.approx(
        18 * 32 / 60, abs=1
    )


def test_sampling_is_seeded_per_item_and_epoch(cases):
    data = ObjectSegmentationDataset(cases, n_obj=2, image_size=32, seed=5)
    again = ObjectSegmentationDataset(cases, n_obj=2, image_size=32, seed=5)
    assert torch.equal(data[1]["masks"], again[1]["masks"])
    draws = set()
    for epoch in range(6):
        data.set_epoch(epoch)
        first_pixels = data[1]["masks"].flatten(1).argmax(1)  # identifies each object
        assert len(set(first_pixels.tolist())) == 2  # two different objects
        draws.add(tuple(first_pixels.tolist()))
    assert len(draws) > 2  # new epochs, new objects


def test_volumes_give_slices_with_objects_and_one_intensity_mapping():
    data = ObjectSegmentationDataset([_volume_case()], n_obj=1, image_size=32, min_size=20)
    assert len(data) == 3 and [i for _, i in data.index] == [1, 2, 3]
    item = data[0]
    assert item["name"] == "vol_z001" and item["original_size"].tolist() == [40, 30]
    rows, cols = torch.nonzero(item["masks"][0], as_tuple=True)
    centre = item["image"][0, int(rows.float().mean()), int(cols.float().mean())]
    windowed = (60 + 160) / 400 * 255  # soft-tissue window: level 40, width 400
    assert centre == pytest.approx((windowed - SAM_PIXEL_MEAN[0]) / SAM_PIXEL_STD[0], abs=0.01)


def test_collate_keeps_the_smallest_object_count(cases):
    data = ObjectSegmentationDataset(cases, n_obj=5, image_size=32)
    batch = next(iter(DataLoader(data, batch_size=2, collate_fn=collate_objects)))
    assert batch["image"].shape == (2, 3, 32, 32) and batch["masks"].shape == (2, 3, 32, 32)
    assert batch["class_ids"].shape == (2, 3) and batch["name"] == ["three", "seven"]


def test_errors(cases):
    with pytest.raises(
        DataError, match=r"no image among 1 cases \(none; 0 without.*Lower min_size"
    ):
        ObjectSegmentationDataset(cases[1:2], min_size=20)
    with pytest.raises(DataError, match="1 without labels"):
        ObjectSegmentationDataset([Case(np.zeros((4, 4)), None, (1, 1), None, "us", "x")])
    with pytest.raises(ConfigError, match="preprocessing"):
        ObjectSegmentationDataset(cases, preprocessing="sam2")
    with pytest.raises(ConfigError, match="unknown intensity mode"):
        ObjectSegmentationDataset(cases, intensity="zscore")


def test_images_are_exactly_what_the_predictor_feeds_the_model(cases):
    from samforge.inference import Predictor
    from samforge.models import build_model
    from samforge.models.config import VIT_TEST

    predictor = Predictor(build_model(VIT_TEST.with_changes(image_size=96)))
    data = ObjectSegmentationDataset(cases[:1], n_obj=1, transform=predictor.transform, min_size=20)
    rgb = torch.from_numpy(normalize_intensity(cases[0].image)).permute(2, 0, 1)[None]
    assert torch.equal(data[0]["image"], predictor.transform.image(rgb)[0])
    assert data[0]["image"][:, 64:, :].eq(0).all()  # 60×90 → 64×96, padded below after norm


@pytest.mark.parametrize("shape", [(181, 258, 3), (1200, 900, 3), (300, 420)])
def test_training_images_are_what_the_official_predictor_feeds_its_encoder(shape):
    """8-bit images that need resizing, colour and grey: the Dataset's image is the official
    ``SamPredictor``'s encoder input (``ResizeLongestSide.apply_image``, which resizes
    through Pillow, then ``Sam.preprocess``), so training sees what inference sees."""
    from helpers.official import build_official_sam, segment_anything

    rng = np.random.default_rng(shape[0])
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    label = np.zeros(shape[:2], np.uint8)
    label[40:90, 60:140] = 1
    data = ObjectSegmentationDataset([Case(image, label, (1.0, 1.0), None, "other", "rgb")])
    official = build_official_sam(embed_dim=16, depth=1, num_heads=1, global_attn_indexes=(0,))
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
    resized = segment_anything.utils.transforms.ResizeLongestSide(1024).apply_image(rgb)
    with torch.no_grad():
        expected = official.preprocess(torch.from_numpy(resized).permute(2, 0, 1)[None].float())
    torch.testing.assert_close(data[0]["image"], expected[0], atol=1e-6, rtol=0)


def test_items_carry_the_same_objects_at_the_original_size(cases):
    """``original_masks`` (what training scores) are the objects of ``masks``, unresized:
    resized into the frame they give ``masks`` back, object for object. The vanishing
    case: a one-pixel-wide line of a 60×200 image disappears at 16², and is dropped from
    both."""
    data = ObjectSegmentationDataset(cases, n_obj=5, image_size=64, min_size=20)
    for item in (data[0], data[1]):
        originals = item["original_masks"]
        assert originals.dtype == torch.bool and originals.shape == (len(item["masks"]), 60, 90)
        assert torch.equal(data.transform.label_masks(originals[None].float())[0], item["masks"])
        assert all(int(o.sum()) == 64 for o in originals)  # each an 8×8 square
    label = np.zeros((60, 200), np.uint8)
    label[20:40, 20:60] = 1
    label[5:55, 150] = 2  # a vertical line one pixel wide
    case = Case(np.zeros((60, 200), np.uint8), label, (1.0, 1.0), None, "us", "thin")
    item = ObjectSegmentationDataset([case], n_obj=2, image_size=16, min_size=20)[0]
    assert item["class_ids"].tolist() == [1] and len(item["original_masks"]) == 1
    assert int(item["original_masks"][0].sum()) == 20 * 40
    batch = collate_objects([item, item])
    assert isinstance(batch["original_masks"], list) and len(batch["original_masks"]) == 2
