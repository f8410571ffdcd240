"""samforge's SAM against the official ``segment_anything`` on the same random weights.

The official model is built by the official code; its state dict is loaded strictly into
samforge. Embeddings, masks, IoU predictions and low-res logits must agree within 1e-5 of
the largest value (fp32), for every prompt type, multimask on and off, through the
Predictor on one side and ``SamPredictor`` on the other. Images come in sizes that make
both resize (square, portrait, landscape; smaller and larger than the 1024 frame), since
the resize is where implementations drift apart: the official one goes through Pillow on
8-bit images (``ResizeLongestSide.apply_image``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.official import OFFICIAL_ARCHITECTURES, build_official_sam, official_predictor
from helpers.parity import run_both
from helpers.synthetic import blocky_rgb
from samforge.inference import Predictor
from samforge.models import build_model
from samforge.models.config import VIT_B, VIT_TEST

RELATIVE_TOLERANCE = 1e-5

SMALL_ARCH = dict(embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,))


def assert_close(ours, reference, name: str) -> None:
    ours = torch.as_tensor(np.asarray(ours), dtype=torch.float64)
    reference = torch.as_tensor(np.asarray(reference), dtype=torch.float64)
    assert ours.shape == reference.shape, f"{name}: shape {ours.shape} != {reference.shape}"
    scale = reference.abs().max().clamp_min(1e-12)
    error = ((ours - reference).abs().max() / scale).item()
    assert error <= RELATIVE_TOLERANCE, f"{name}: relative error {error:.2e}"


def assert_masks_agree(ours_masks, ref_logits, name: str) -> None:
    """Masks equal wherever the reference logit is not within the tolerance of 0."""
    ref_logits = np.asarray(ref_logits)
    decided = np.abs(ref_logits) > RELATIVE_TOLERANCE * np.abs(ref_logits).max()
    np.testing.assert_array_equal(
        ours_masks[decided], ref_logits[decided] > 0, err_msg=f"{name} masks"
    )


def paired_models(config, arch: dict, seed: int = 0):
    official = build_official_sam(image_size=config.image_size, seed=seed, **arch)
    ours = build_model(config)
    ours.load_state_dict(official.state_dict(), strict=True)
    return official, ours


def random_rgb(height: int, width: int, seed: int) -> np.ndarray:
    return blocky_rgb(height, width, seed, block=8, noise=20)


PROMPTS = {
    "point": dict(point_coords=[[60.0, 70.0]], point_labels=[1]),
    "points": dict(
        point_coords=[[60.0, 70.0], [100.0, 40.0], [20.0, 140.0]], point_labels=[1, 0, 1]
    ),
    "box": dict(box=[30.0, 40.0, 140.0, 150.0]),
    "box+points": dict(
        box=[30.0, 40.0, 140.0, 150.0], point_coords=[[80.0, 90.0], [35, 45]], point_labels=[1, 0]
    ),
}


def check_model_parity(config, arch, image: np.ndarray) -> None:
    official, ours = paired_models(config, arch)
    reference_predictor = official_predictor(official)
    reference_predictor.set_image(image)
    predictor = Predictor(ours, precision="fp32")
    predictor.set_image(image)
    assert_close(predictor.image_embedding.embedding, reference_predictor.features, "embedding")

    for name, prompt in PROMPTS.items():
        for multimask in (True, False):
            (ref_logits, ref_iou, ref_low), ours_pred = run_both(
                reference_predictor, predictor, prompt, multimask
            )
            label = f"{name} multimask={multimask}"
            assert_close(ours_pred.logits[0], ref_logits, f"{label} logits")
            assert_close(ours_pred.scores[0], ref_iou, f"{label} iou")
            assert_close(ours_pred.low_res_logits[0], ref_low, f"{label} low-res")
            assert_masks_agree(ours_pred.masks[0], ref_logits, label)
    # Mask prompt: feed back the previous low-res logits, as in iterative correction.
    _, _, previous = reference_predictor.predict(
        point_coords=np.array([[60.0, 70.0]]), point_labels=np.array([1]), multimask_output=False
    )
    for multimask in (True, False):
        (ref_logits, ref_iou, ref_low), ours_pred = run_both(
            reference_predictor, predictor, PROMPTS["points"], multimask, mask=previous
        )
        assert_close(ours_pred.logits[0], ref_logits, f"mask prompt multimask={multimask}")
        assert_close(ours_pred.scores[0], ref_iou, f"mask prompt iou multimask={multimask}")


@pytest.mark.parametrize("shape", [(256, 256), (256, 192), (160, 256)])
def test_small_config_matches_official(shape):
    check_model_parity(VIT_TEST, SMALL_ARCH, random_rgb(*shape, seed=1))


def test_batched_boxes_match_official_batched_call():
    official, ours = paired_models(VIT_TEST, SMALL_ARCH)
    image = random_rgb(256, 224, seed=2)
    reference_predictor = official_predictor(official)
    reference_predictor.set_image(image)
    boxes = np.array([[10, 20, 100, 120], [50, 50, 200, 250], [0, 0, 224, 256]], dtype=np.float32)
    transformed = reference_predictor.transform.apply_boxes_torch(
        torch.from_numpy(boxes), image.shape[:2]
    )
    with torch.no_grad():
        ref_logits, ref_iou, _ = reference_predictor.predict_torch(
            None, None, boxes=transformed, multimask_output=False, return_logits=True
        )
    predictor = Predictor(ours, precision="fp32")
    predictor.set_image(image)
    ours_pred = predictor.predict(boxes=boxes, return_logits=True)
    assert ours_pred.masks.shape == (3, 1, 256, 224)
    assert_close(ours_pred.logits, ref_logits, "batched logits")
    assert_close(ours_pred.scores, ref_iou, "batched iou")


# A small encoder at the full 1024 frame: the official resize path, at little cost.
FULL_FRAME = VIT_TEST.with_changes(image_size=1024)
# (H, W): landscape smaller than the frame, landscape, portrait, square, and larger ones.
RESIZED_SHAPES = [(181, 258), (384, 512), (800, 540), (700, 700), (1200, 1600), (1500, 1100)]


@pytest.mark.parametrize("shape", RESIZED_SHAPES)
def test_resized_images_match_official(shape):
    check_model_parity(FULL_FRAME, SMALL_ARCH, random_rgb(*shape, seed=5))


def test_grey_and_non_8_bit_images_take_the_official_8_bit_path():
    """A grey image is the official predictor's RGB image with three equal channels; a
    float image with intensity "none" is rounded to the nearest grey level (0.3 down,
    0.6 up) and then takes the same path."""
    official, ours = paired_models(FULL_FRAME, SMALL_ARCH, seed=2)
    grey = random_rgb(300, 420, seed=6)[..., 0].clip(0, 254)
    reference = official_predictor(official)
    predictor = Predictor(ours, intensity="none", precision="fp32")
    for ours_input, official_grey in (
        (grey, grey),
        (grey + np.float32(0.3), grey),
        (grey + np.float32(0.6), grey + 1),
    ):
        reference.set_image(np.repeat(official_grey[..., None], 3, axis=-1))
        predictor.set_image(ours_input)
        assert_close(predictor.image_embedding.embedding, reference.features, "embedding")
        (ref_logits, _, ref_low), ours_pred = run_both(reference, predictor, PROMPTS["box"], False)
        assert_close(ours_pred.low_res_logits[0], ref_low, "low-res")
        assert_close(ours_pred.logits[0], ref_logits, "logits")


@pytest.mark.slow
def test_vit_b_matches_official():
    """ViT-B on the image of the reported drift (384×512, resized to 717×1024 and padded)."""
    check_model_parity(VIT_B, OFFICIAL_ARCHITECTURES["vit_b"], random_rgb(384, 512, seed=3))


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_export_loads_strictly_in_segment_anything_and_predicts_the_same(tmp_path, suffix):
    from safetensors.torch import load_file

    from helpers.official import official_sam_from_state_dict
    from samforge.models import export_official, load_model

    _, ours = paired_models(VIT_TEST, SMALL_ARCH, seed=7)
    path = export_official(ours, tmp_path / f"model{suffix}")
    state = load_file(path) if suffix == ".safetensors" else torch.load(path, weights_only=True)
    official = official_sam_from_state_dict(state, image_size=256, **SMALL_ARCH)
    reloaded = load_model(path)

    image = random_rgb(200, 256, seed=4)
    reference = official_predictor(official)
    reference.set_image(image)
    for model in (ours, reloaded):
        predictor = Predictor(model, precision="fp32")
        predictor.set_image(image)
        for name, prompt in PROMPTS.items():
            (ref_logits, ref_iou, _), ours_pred = run_both(reference, predictor, prompt, True)
            assert_close(ours_pred.logits[0], ref_logits, f"exported {name} logits")
            assert_close(ours_pred.scores[0], ref_iou, f"exported {name} iou")


def disk_image(height: int, width: int, centre: tuple[int, int], radius: int) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    inside = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius**2
    image = np.where(inside, 200, 40).astype(np.uint8)
    return np.repeat(image[..., None], 3, axis=-1)


def test_disk_from_box_and_from_point_matches_official():
    """A synthetic disk on a non-square image, prompted by its box and by its centre."""
    official, ours = paired_models(VIT_TEST, SMALL_ARCH, seed=3)
    centre, radius = (150, 70), 40
    image = disk_image(180, 256, centre, radius)
    reference = official_predictor(official)
    reference.set_image(image)
    predictor = Predictor(ours, precision="fp32")
    predictor.set_image(image)
    x, y = centre
    prompts = {
        "box": dict(box=[x - radius, y - radius, x + radius + 1, y + radius + 1]),
        "point": dict(point_coords=[[float(x), float(y)]], point_labels=[1]),
    }
    for name, prompt in prompts.items():
        (ref_logits, ref_iou, ref_low), ours_pred = run_both(
            reference, predictor, prompt, multimask=name == "point"
        )
        assert ours_pred.masks.shape[-2:] == (180, 256)
        assert_close(ours_pred.logits[0], ref_logits, f"disk {name} logits")
        assert_close(ours_pred.scores[0], ref_iou, f"disk {name} iou")
        assert_close(ours_pred.low_res_logits[0], ref_low, f"disk {name} low-res")
        assert_masks_agree(ours_pred.masks[0], ref_logits, f"disk {name}")
