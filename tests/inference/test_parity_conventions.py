"""The ``medsam`` and ``sammed2d`` conventions against their reference predictors.

Neither reference is a package, so each is written out here from its published code, on the
official ``segment_anything`` model (both repositories build on it) with random weights
loaded strictly into samforge:

- MedSAM: ``MedSAM_Inference.py`` (github.com/bowang-lab/MedSAM): ``skimage`` resize to
  1024² (order 3, anti-aliased, ``preserve_range``), cast to uint8, min–max to [0, 1], the
  encoder without mean/std; boxes scaled by 1024/W and 1024/H; mask = sigmoid of the
  low-res logits resized bilinearly to (H, W), > 0.5.
- SAM-Med2D: ``segment_anything/predictor_sammed.py`` (github.com/OpenGVLab/SAM-Med2D,
  ``SammedPredictor``): ``(image - mean) / std`` in numpy, albumentations'
  ``A.Resize(S, S, interpolation=cv2.INTER_NEAREST)`` (a ``cv2.resize``), prompts scaled by
  S/W and S/H, multimask output reduced to the best predicted IoU, masks resized bilinearly
  to S² and then to (H, W) (``postprocess_masks``).

Images come in sizes that make both resize: smaller and larger than the frame, portrait,
landscape, odd, and grey.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.transform import resize

from helpers.official import build_official_sam
from samforge.inference import Predictor
from samforge.models import build_model
from samforge.models.config import VIT_TEST

RELATIVE_TOLERANCE = 1e-5
SMALL_ARCH = dict(embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,))
# Several objects per image: (x0, y0, x1, y1) as fractions of the image's width and height.
BOX_FRACTIONS = np.array(
    [[0.11, 0.2, 0.55, 0.83], [0.02, 0.5, 0.97, 0.98], [0.45, 0.05, 0.8, 0.35]]
)


def assert_close(ours, reference, name: str) -> None:
    ours = torch.as_tensor(np.asarray(ours), dtype=torch.float64)
    reference = torch.as_tensor(np.asarray(reference), dtype=torch.float64)
    assert ours.shape == reference.shape, f"{name}: shape {ours.shape} != {reference.shape}"
    error = (ours - reference).abs().max() / reference.abs().max().clamp_min(1e-12)
    assert error.item() <= RELATIVE_TOLERANCE, f"{name}: relative error {error.item():.2e}"


def textured_image(height: int, width: int, seed: int, grey: bool = False) -> np.ndarray:
    """(H, W, 3) or (H, W) uint8: 8-pixel blocks plus noise, so resizes have edges to blur."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(height // 8 + 1, width // 8 + 1, 3))
    image = np.kron(coarse, np.ones((8, 8, 1)))[:height, :width]
    image = np.clip(image + rng.integers(-20, 21, size=image.shape), 0, 255).astype(np.uint8)
    return image[..., 0] if grey else image


def paired_models(preprocessing: str, image_size: int, seed: int = 0):
    official = build_official_sam(image_size=image_size, seed=seed, **SMALL_ARCH)
    ours = build_model(VIT_TEST.with_changes(image_size=image_size, preprocessing=preprocessing))
    ours.load_state_dict(official.state_dict(), strict=True)
    return official.eval(), ours


@torch.no_grad()
def decode(sam, embedding, points=None, boxes=None, multimask: bool = False):
    sparse, dense = sam.prompt_encoder(points=points, boxes=boxes, masks=None)
    return sam.mask_decoder(
        image_embeddings=embedding,
        image_pe=sam.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=multimask,
    )


@torch.no_grad()
def medsam_reference(sam, image: np.ndarray, boxes: np.ndarray, frame: int = 1024):
    """MedSAM_Inference.py, with its 1024 written as ``frame``: (embedding, low-res logits
    (B, 1, 256, 256), probabilities (B, 1, H, W), mask (B, 1, H, W))."""
    img_3c = np.repeat(image[:, :, None], 3, axis=-1) if image.ndim == 2 else image
    height, width, _ = img_3c.shape
    img_1024 = resize(
        img_3c, (frame, frame), order=3, preserve_range=True, anti_aliasing=True
    ).astype(np.uint8)
    img_1024 = (img_1024 - img_1024.min()) / np.clip(
        img_1024.max() - img_1024.min(), a_min=1e-8, a_max=None
    )
    tensor = torch.tensor(img_1024).float().permute(2, 0, 1).unsqueeze(0)
    embedding = sam.image_encoder(tensor)
    box_1024 = boxes / np.array([width, height, width, height]) * frame
    box_torch = torch.as_tensor(box_1024, dtype=torch.float)[:, None, :]
    low_res, _ = decode(sam, embedding, boxes=box_torch)
    probabilities = F.interpolate(
        torch.sigmoid(low_res), size=(height, width), mode="bilinear", align_corners=False
    )
    return embedding, low_res, probabilities, probabilities > 0.5


# MedSAM's own 1024 frame once (scikit-image's order-3 resize of a 1024² RGB image takes
# seconds); the other sizes at a 256 frame, which exercises the same path.
@pytest.mark.parametrize(
    "frame, shape, grey",
    [
        (1024, (540, 800), False),
        (256, (181, 258), False),
        (256, (97, 301), True),
        (256, (1200, 1000), False),
        (256, (255, 256), False),
    ],
)
def test_medsam_convention_matches_medsam_inference(frame, shape, grey):
    official, ours = paired_models("medsam", frame)
    image = textured_image(*shape, seed=3, grey=grey)
    boxes = np.round(BOX_FRACTIONS * np.array([shape[1], shape[0]] * 2))
    embedding, low_res, probabilities, mask = medsam_reference(official, image, boxes, frame)

    predictor = Predictor(ours, precision="fp32")
    predictor.set_image(image)
    prediction = predictor.predict(boxes=boxes, return_logits=True)
    assert_close(predictor.image_embedding.embedding, embedding, "embedding")
    assert_close(prediction.low_res_logits, low_res, "low-res logits")
    assert_close(1 / (1 + np.exp(-prediction.logits)), probabilities, "probabilities")
    decided = (probabilities - 0.5).abs() > 1e-5
    np.testing.assert_array_equal(prediction.masks[decided.numpy()], mask[decided].numpy())


def cv2_nearest(image: np.ndarray, size: int) -> np.ndarray:
    cv2 = pytest.importorskip("cv2")
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_NEAREST)


@torch.no_grad()
def sammed2d_reference(sam, image: np.ndarray, prompt: dict, multimask: bool):
    """SammedPredictor.set_image + predict (one object): (embedding, low-res logits
    (1, 1, s, s), IoU (1, 1), logits (1, 1, H, W))."""
    size = sam.image_encoder.img_size
    mean = sam.pixel_mean.squeeze().numpy()
    std = sam.pixel_std.squeeze().numpy()
    input_image = cv2_nearest((image - mean) / std, size)
    embedding = sam.image_encoder(torch.from_numpy(input_image).permute(2, 0, 1)[None])
    old_h, old_w = image.shape[:2]
    scale = np.array([size / old_w, size / old_h])
    point_prompt = box_prompt = None
    if "points" in prompt:
        coords = np.asarray(prompt["points"], dtype=float) * scale
        labels = torch.as_tensor(prompt["labels"], dtype=torch.int)
        point_prompt = (torch.as_tensor(coords, dtype=torch.float)[None], labels[None])
    if "boxes" in prompt:
        corners = np.asarray(prompt["boxes"], dtype=float).reshape(-1, 2, 2) * scale
        box_prompt = torch.as_tensor(corners.reshape(-1, 4), dtype=torch.float)[None]
    low_res, iou = decode(sam, embedding, point_prompt, box_prompt, multimask)
    if multimask:
        best_iou, best = torch.max(iou, dim=1)
        iou, low_res = best_iou.unsqueeze(1), low_res[:, best]
    full = F.interpolate(low_res, (size, size), mode="bilinear", align_corners=False)
    logits = F.interpolate(full, (old_h, old_w), mode="bilinear", align_corners=False)
    return embedding, low_res, iou, logits


SAMMED2D_PROMPTS = {
    "box": dict(boxes=[30.0, 10.0, 140.0, 90.0]),
    "points": dict(points=[[60.0, 70.0], [100.0, 40.0], [20.0, 90.0]], labels=[1, 0, 1]),
    "point": dict(points=[[61.0, 75.0]], labels=[1]),
}


@pytest.mark.parametrize("shape", [(181, 258), (384, 512), (540, 800), (97, 301)])
def test_sammed2d_convention_matches_sammed_predictor(shape):
    official, ours = paired_models("sammed2d", 256)
    image = textured_image(*shape, seed=4)
    predictor = Predictor(ours, precision="fp32")
    predictor.set_image(image)
    for name, prompt in SAMMED2D_PROMPTS.items():
        multimask = name == "point"
        embedding, low_res, iou, logits = sammed2d_reference(official, image, prompt, multimask)
        ours = predictor.predict(**prompt, multimask=multimask, return_logits=True).best()
        assert_close(predictor.image_embedding.embedding, embedding, "embedding")
        assert_close(ours.low_res_logits, low_res, f"{name} low-res logits")
        assert_close(ours.scores, iou, f"{name} iou")
        assert_close(ours.logits, logits, f"{name} logits")
