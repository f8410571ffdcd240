"""SA-Med2D-20M as SAM-Med2D publishes it, read as SAM-Med2D and SAM-UNet train and score it.

The fixture is the ``data_demo/`` folder of the SAM-Med2D repository (OpenGVLab/SAM-Med2D,
``data_demo/image2label_train.json`` and ``data_demo/label2image_test.json``) in exactly its
published shape: the same file names, the same two index kinds, and paths that start from
the repository root (``data_demo/images/amos_0006_90.png``), the index's parent folder.
Only the pixels are drawn here (64×64 instead of the release's images), with masks that
overlap and a mask of two pieces, which a merged label map would lose.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from helpers.fake_models import BoxSam
from samforge.cli import app
from samforge.data import ObjectSegmentationDataset, detect_layout, open_dataset
from samforge.evaluation import InteractiveSettings, evaluate_image
from samforge.inference import Predictor

SIZE = 64
# data_demo/image2label_train.json (first image) and data_demo/label2image_test.json, as
# published: the keys and values below are the repository's, in its order.
TRAIN = {
    "data_demo/images/amos_0006_90.png": [
        "data_demo/masks/amos_0006_90_liver_000.png",
        "data_demo/masks/amos_0006_90_spleen_000.png",
        "data_demo/masks/amos_0006_90_inferior_vena_cava_000.png",
        "data_demo/masks/amos_0006_90_aorta_000.png",
    ]
}
TEST = {
    "data_demo/masks/amos_0004_75_inferior_vena_cava_000.png": "data_demo/images/amos_0004_75.png",
    "data_demo/masks/amos_0004_75_liver_000.png": "data_demo/images/amos_0004_75.png",
    "data_demo/masks/amos_0004_75_aorta_000.png": "data_demo/images/amos_0004_75.png",
    "data_demo/masks/s0619_32_femur_right_000.png": "data_demo/images/s0619_32.png",
    "data_demo/masks/s0619_32_gluteus_maximus_left_000.png": "data_demo/images/s0619_32.png",
    "data_demo/masks/s0619_32_hip_left_000.png": "data_demo/images/s0619_32.png",
    "data_demo/masks/s0619_32_colon_000.png": "data_demo/images/s0619_32.png",
    "data_demo/masks/s0619_32_hip_right_000.png": "data_demo/images/s0619_32.png",
    "data_demo/masks/s0619_32_hip_right_001.png": "data_demo/images/s0619_32.png",
    "data_demo/masks/s0619_32_hip_left_001.png": "data_demo/images/s0619_32.png",
    "data_demo/masks/s0619_32_gluteus_maximus_right_000.png": "data_demo/images/s0619_32.png",
}


def _box(y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _masks_of(names: list[str]) -> dict[str, np.ndarray]:
    """A distinct rectangle per mask; the first two overlap, the third has two pieces."""
    masks = {}
    for k, name in enumerate(names):
        mask = _box(2 + 4 * k, 2 + 3 * k, 22 + 4 * k, 26 + 3 * k)
        if k == 2:
            mask = _box(40, 4, 50, 14) | _box(52, 30, 62, 60)  # two pieces, one structure
        masks[name] = mask
    return masks


@pytest.fixture()
def sam_med2d_repo(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A SAM-Med2D checkout's ``data_demo/`` (see the module docstring): (repo root, masks)."""
    demo = tmp_path / "SAM-Med2D" / "data_demo"
    rng = np.random.default_rng(0)
    by_image: dict[str, list[str]] = {i: list(m) for i, m in TRAIN.items()}
    for mask, image in TEST.items():
        by_image.setdefault(image, []).append(mask)
    truth = {}
    for image, masks in by_image.items():
        path = demo.parent / image
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)).save(path)
        for name, mask in _masks_of(masks).items():
            (demo.parent / name).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask.astype(np.uint8) * 255).save(demo.parent / name)
            truth[Path(name).stem] = mask
    (demo / "image2label_train.json").write_text(json.dumps(TRAIN, indent=4))
    (demo / "label2image_test.json").write_text(json.dumps(TEST, indent=4))
    return demo.parent, truth


def test_published_paths_resolve_from_the_folder_the_file_or_the_repository(sam_med2d_repo):
    root, _ = sam_med2d_repo
    demo = root / "data_demo"
    for where in (demo, demo / "image2label_train.json", root):
        assert detect_layout(where) == "samed2d"
    expected = ["amos_0006_90", "amos_0004_75", "s0619_32"]  # index by index
    assert open_dataset(demo).names == expected
    assert open_dataset(root).names == expected
    assert open_dataset(demo / "image2label_train.json").names == ["amos_0006_90"]
    assert open_dataset(demo / "label2image_test.json").names == ["amos_0004_75", "s0619_32"]
    assert open_dataset(root, split="test").names == ["amos_0004_75", "s0619_32"]
    assert open_dataset(root, split="train").names == ["amos_0006_90"]


def test_each_mask_is_its_own_object_with_its_structure_as_class(sam_med2d_repo):
    root, truth = sam_med2d_repo
    cases = {c.name: c for c in open_dataset(root, split="test")}
    case = cases["s0619_32"]
    assert case.objects is not None and len(case.objects) == 8  # one object per mask
    names = case.meta["label_names"]
    for item in case.objects:
        np.testing.assert_array_equal(item.mask, truth[item.name])  # overlaps kept whole
        structure = item.name.removeprefix("s0619_32_").rsplit("_", 1)[0]
        assert names[item.class_id] == structure
    hips = [o for o in case.objects if o.name.startswith("s0619_32_hip_left")]
    assert len(hips) == 2 and hips[0].class_id == hips[1].class_id  # two instances, one class
    assert case.meta["overlap_pixels"] > 0  # the merged label map would have lost pixels
    assert set(names.values()) >= {"liver", "aorta", "inferior_vena_cava", "colon", "hip_left"}


def test_data_inspect_counts_the_published_masks(sam_med2d_repo):
    root, _ = sam_med2d_repo
    result = CliRunner().invoke(app, ["data", "inspect", str(root)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "3 cases of 3" in result.output and "15 objects" in result.output  # 4 + 3 + 8 masks


def test_training_items_are_the_published_masks_not_label_map_components(sam_med2d_repo):
    root, truth = sam_med2d_repo
    cases = open_dataset(root, split="train")
    dataset = ObjectSegmentationDataset(
        cases, n_obj=4, image_size=SIZE * 4, min_size=1, preprocessing="medsam"
    )
    item = dataset[0]
    # The model frame is the image scaled ×4 (medsam: straight resize), so a published
    # mask comes back as its ×4 nearest-neighbour enlargement.
    wanted = {
        name: np.kron(mask, np.ones((4, 4), dtype=bool))
        for name, mask in truth.items()
        if name.startswith("amos_0006_90")
    }
    got = [m.numpy() > 0.5 for m in item["masks"]]
    assert len(got) == 4
    for mask in got:
        assert any(np.array_equal(mask, w) for w in wanted.values())
    assert len({m.tobytes() for m in got}) == 4  # all four masks, each once


def test_the_2d_protocol_scores_each_mask_on_its_own(sam_med2d_repo):
    root, truth = sam_med2d_repo
    case = open_dataset(root, split="test")[1]  # s0619_32: overlapping and two-piece masks
    result = evaluate_image(
        Predictor(BoxSam()),
        case.image,
        case.label,
        InteractiveSettings(start="box", rounds=1),
        name=case.name,
        objects=case.objects,
    )
    assert result is not None and result.mask_names == tuple(o.name for o in case.objects)
    # Independently: BoxSam answers with the box of the mask's largest 8-connected piece.
    for k, name in enumerate(result.mask_names):
        mask = truth[name]
        pieces, _ = ndimage.label(mask, structure=np.ones((3, 3)))
        largest = pieces == 1 + int(np.argmax(np.bincount(pieces.ravel())[1:]))
        ys, xs = np.nonzero(largest)
        answer = _box(ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
        expected = 2 * (answer & mask).sum() / (answer.sum() + mask.sum())
        assert result.dice[k, 0] == pytest.approx(expected, abs=1e-12), name
    assert (result.dice[:, 0] < 1).any()  # the two-piece mask: its box covers one piece
