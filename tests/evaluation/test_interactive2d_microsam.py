"""The interactive 2D protocol's first round against micro-sam 1.8.14's own
``run_inference_with_iterative_prompting`` (installed with ``--no-deps``, see the Makefile;
its compiled dependencies stand in as tests/helpers/micro_sam.py says): the same weights in
the official SAM and in samforge, the same image embedding, the same objects (micro-sam gets
samforge's objects as its instance ground truth, in the same order, written as TIFF as its
evaluation reads them). The box start is deterministic in both, so round 1 must give the
same masks; the point start differs by construction (micro-sam's centre is the pixel
farthest from the object's inner boundary, samforge's the farthest from the background,
medico-sam's choice), which is checked on what it changes: the point, not the decoder."""

from __future__ import annotations

import dataclasses

import imageio.v3 as imageio
import numpy as np
import pytest
import torch

from helpers.micro_sam import import_micro_sam_inference
from samforge.data.phantoms import make_phantom
from samforge.evaluation import InteractiveSettings
from samforge.evaluation.interactive2d import interactive_rounds, object_masks
from samforge.inference import ImageEmbedding, Predictor
from samforge.models import build_model
from samforge.models.config import VIT_TEST
from samforge.testing.official import build_official_sam, official_predictor
from samforge.testing.timing import SMALL_ARCHITECTURE


@pytest.fixture(scope="module")
def models():
    """A small encoder at micro-sam's fixed 1024² frame (its prompts are resized to 1024
    whatever the model): the decoder is SAM's full one."""
    official = build_official_sam(**SMALL_ARCHITECTURE, image_size=1024, window_size=14)
    ours = build_model(dataclasses.replace(VIT_TEST, image_size=1024))
    ours.load_state_dict(official.state_dict(), strict=True)
    return official, ours.eval()


def micro_sam_first_round(official, embedding, image, instances, folder, start):
    inference = import_micro_sam_inference()
    saved = []
    original_save = inference._save_segmentation
    original_embeddings = inference.util.precompute_image_embeddings
    predictor = official_predictor(official)
    height, width = instances.shape
    scale = 1024 / max(height, width)
    features = {
        "features": embedding,
        "original_size": (height, width),
        "input_size": (int(height * scale + 0.5), int(width * scale + 0.5)),
    }
    imageio.imwrite(folder / "slice.tif", image)
    imageio.imwrite(folder / "slice_gt.tif", instances)
    inference._save_segmentation = lambda masks, path: saved.append(masks[:, 0].bool())
    inference.util.precompute_image_embeddings = lambda *args, **options: features
    try:
        np.random.seed(0)  # noqa: NPY002 (micro-sam draws from numpy's global generator)
        inference.run_inference_with_iterative_prompting(
            predictor,
            [folder / "slice.tif"],
            [folder / "slice_gt.tif"],
            embedding_dir=folder / "embeddings",
            prediction_dir=folder / f"predictions_{start}",
            start_with_box_prompt=start == "box",
            n_iterations=1,
        )
    finally:
        inference._save_segmentation = original_save
        inference.util.precompute_image_embeddings = original_embeddings
    return saved[0]


def test_box_start_matches_micro_sam(models, tmp_path):
    official, ours = models
    _, label, _ = make_phantom("ct", shape=(150, 190), seed=3)  # resized: 808×1024
    masks, _ = object_masks(label, min_size=20)
    assert len(masks) >= 4  # several objects in one batch
    instances = np.zeros(label.shape, dtype=np.uint16)
    for index, mask in enumerate(masks.numpy(), start=1):
        instances[mask] = index
    embedding = torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(1))
    theirs = micro_sam_first_round(
        official, embedding, np.zeros((*label.shape, 3), np.uint8), instances, tmp_path, "box"
    )
    predictor = Predictor(ours, precision="fp32")
    predictor.set_embedding(ImageEmbedding(embedding, label.shape))
    settings = InteractiveSettings(start="box", rounds=1)
    mine = interactive_rounds(predictor, masks, settings, settings.generator("slice"))[0]
    assert theirs.shape == mine.shape
    areas = mine.flatten(1).sum(dim=1)
    # Not vacuous: the masks differ between objects and are neither empty nor the image.
    assert (areas > 0).all() and (areas < mine[0].numel()).all() and len(set(areas.tolist())) > 1
    for k in range(len(masks)):
        union = (theirs[k] | mine[k]).sum()
        iou = (theirs[k] & mine[k]).sum() / union if union else 1.0
        # Logits exactly at the threshold may round either way (two resizes in the
        # official code, two matrix products in samforge's): a handful of pixels at most.
        assert iou >= 0.999, (k, float(iou))
