"""MobileSAM (TinyViT ``vit_t``) against MobileSAM's own code (``mobile_sam``, PyPI's
``mobilesam-mirror`` 1.0.0) on the same random weights.

The package's ``build_sam_vit_t`` builds the reference (every parameter, attention bias and
batch-norm statistic random); samforge loads its state dict through ``load_model`` (family
and stage layout recognised from the keys and shapes, strict) and must reproduce, within
1e-5 of the largest value (fp32), the embedding and the low-res logits, masks and IoUs of
the package's ``SamPredictor`` for points, boxes, both, several boxes at once and a mask
prompt. Files are written in the published layouts: MobileSAM's ``weights/mobile_sam.pt``
(a bare state dict) and micro-sam's trainer checkpoint (``model_state`` with ``sam.``
keys, optionally ``decoder_state``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.mobile import build_mobile_sam, import_mobile_sam, mobile_sam_predictor
from helpers.parity import run_both
from helpers.synthetic import blocky_rgb
from samforge.errors import CheckpointError
from samforge.inference import Predictor
from samforge.models import (
    build_model,
    export_model,
    export_official,
    family_of,
    get_config,
    load_model,
)
from samforge.models.checkpoints.shape_inference import infer_config

RELATIVE_TOLERANCE = 1e-5


def relative_error(ours, reference) -> float:
    ours = torch.as_tensor(np.asarray(ours), dtype=torch.float64)
    reference = torch.as_tensor(np.asarray(reference), dtype=torch.float64)
    assert ours.shape == reference.shape, f"shape {tuple(ours.shape)} != {tuple(reference.shape)}"
    return ((ours - reference).abs().max() / reference.abs().max().clamp_min(1e-12)).item()


@pytest.fixture(scope="module")
def reference():
    return build_mobile_sam(seed=3)


@pytest.fixture(scope="module")
def state(reference):
    return {key: value.clone() for key, value in reference.state_dict().items()}


@pytest.fixture(scope="module")
def ours(state):
    return load_model(state)


def test_architecture_has_the_package_keys_and_shapes():
    """``build_sam_vit_t`` of the package, with its buffers (batch-norm statistics)."""
    package = import_mobile_sam().build_sam_vit_t().state_dict()
    samforge = build_model(get_config("vit_t")).state_dict()
    assert {k: tuple(v.shape) for k, v in samforge.items()} == {
        k: tuple(v.shape) for k, v in package.items()
    }


def test_checkpoint_is_recognised_as_mobilesam(state, ours):
    assert infer_config(state) == get_config("vit_t")
    assert ours.config == get_config("vit_t")
    assert ours.provenance["family"] == family_of(ours.config).name == "MobileSAM"


def test_stage_layout_is_read_from_shapes():
    """Another TinyViT (the 11M one's widths and heads, deeper third stage) is read from its
    shapes, not assumed."""
    config = get_config("vit_t").with_changes(
        tiny_vit_embed_dims=(64, 128, 256, 448),
        tiny_vit_depths=(2, 2, 4, 2),
        tiny_vit_num_heads=(2, 4, 8, 14),
        tiny_vit_window_sizes=(7, 5, 14, 7),
    )
    with torch.device("meta"):
        state = build_model(config).state_dict()
    assert infer_config(state) == config


def image_of_shape(height: int, width: int, seed: int) -> np.ndarray:
    return blocky_rgb(height, width, seed, block=32, noise=25)


# Prompts in original-image pixels; several points, boxes and their mix.
PROMPTS = {
    "point": dict(point_coords=[[300.0, 420.0]], point_labels=[1]),
    "points": dict(point_coords=[[300.0, 420.0], [640, 200], [90, 700]], point_labels=[1, 0, 1]),
    "box": dict(box=[120.0, 160.0, 560.0, 600.0]),
    "box+points": dict(
        box=[120.0, 160.0, 560.0, 600.0], point_coords=[[320, 380], [130, 170]], point_labels=[1, 0]
    ),
}


def predictor_pair(reference, ours, image: np.ndarray):
    """The package's SamPredictor and samforge's Predictor, both set to ``image``."""
    reference_predictor = mobile_sam_predictor(reference)
    reference_predictor.set_image(image)
    predictor = Predictor(ours, precision="fp32")
    predictor.set_image(image)
    return reference_predictor, predictor


def check_predictor_parity(reference_predictor, predictor) -> None:
    error = relative_error(predictor.image_embedding.embedding, reference_predictor.features)
    assert error <= RELATIVE_TOLERANCE, f"embedding: relative error {error:.1e}"

    previous = None
    for name, prompt in PROMPTS.items():
        for multimask in (True, False):
            for mask_input in (None, previous):
                if mask_input is None and previous is not None and name != "points":
                    continue
                expected, got = run_both(
                    reference_predictor, predictor, prompt, multimask, mask_input
                )
                label = f"{name} multimask={multimask} mask_input={mask_input is not None}"
                for ours_value, ref_value, what in (
                    (got.low_res_logits[0], expected[2], "low-res logits"),
                    (got.logits[0], expected[0], "logits"),
                    (got.scores[0], expected[1], "IoU"),
                ):
                    error = relative_error(ours_value, ref_value)
                    assert error <= RELATIVE_TOLERANCE, f"{label} {what}: {error:.1e}"
        if previous is None:  # feed the first low-res logits back as a mask prompt
            previous = expected[2][:1]


@pytest.fixture(scope="module")
def predictors(reference, ours):
    # 768×1024 needs no resize of the uint8 image, only padding to 1024².
    return predictor_pair(reference, ours, image_of_shape(768, 1024, seed=1))


def test_predictor_matches_mobile_sam_predictor(predictors):
    check_predictor_parity(*predictors)


def test_predictor_matches_mobile_sam_predictor_on_a_resized_image(reference, ours):
    check_predictor_parity(*predictor_pair(reference, ours, image_of_shape(800, 1200, seed=5)))


def test_several_boxes_at_once_match_the_package(predictors):
    reference_predictor, predictor = predictors
    boxes = np.array([[10, 20, 300, 400], [500, 500, 1000, 700], [0, 0, 1024, 768]], np.float32)
    transformed = reference_predictor.transform.apply_boxes_torch(
        torch.from_numpy(boxes), reference_predictor.original_size
    )
    with torch.no_grad():
        ref_logits, ref_iou, ref_low = reference_predictor.predict_torch(
            None, None, boxes=transformed, multimask_output=True, return_logits=True
        )
    got = predictor.predict(boxes=boxes, multimask=True, return_logits=True)
    pairs = ((got.low_res_logits, ref_low), (got.logits, ref_logits), (got.scores, ref_iou))
    for ours_value, ref_value in pairs:
        assert relative_error(ours_value, ref_value) <= RELATIVE_TOLERANCE


def test_export_loads_strictly_in_mobile_sam(tmp_path, state, ours):
    """export_model writes MobileSAM's layout, which the package's model loads strictly,
    every tensor as it was. SAM's official format cannot hold TinyViT."""
    path = export_model(ours, tmp_path / "mobile_sam.pt")
    exported = torch.load(path, weights_only=True)
    reloaded = import_mobile_sam().build_sam_vit_t()
    reloaded.load_state_dict(exported, strict=True)
    for key, value in reloaded.state_dict().items():
        assert torch.equal(value, state[key]), key
    with pytest.raises(CheckpointError, match="export_model"):
        export_official(ours, tmp_path / "official.pth")


def test_published_mobile_sam_file_loads_as_the_registered_model(tmp_path, state, ours):
    """MobileSAM's weights/mobile_sam.pt is a bare state dict (what build_sam_vit_t loads)."""
    path = tmp_path / "mobile_sam.pt"
    torch.save(state, path)
    model = load_model(path)
    assert model.provenance["name"] == "mobilesam_vit_t"
    assert model.config == get_config("vit_t") and model.provenance["format"] == "bare"
    for key, value in model.state_dict().items():
        assert torch.equal(value, ours.state_dict()[key]), key


def test_micro_sam_trainer_checkpoints_load(tmp_path, state, ours):
    """micro-sam's trainer saves {"model_state": <TrainableSAM state: "sam." keys>, ...}, and
    for models with a UNETR decoder also "decoder_state"."""
    trainer = {
        "model_state": {f"sam.{key}": value for key, value in state.items()},
        "optimizer_state": {"state": {}, "param_groups": []},
        "epoch": 3,
    }
    torch.save(trainer, tmp_path / "best.pt")
    plain = load_model(tmp_path / "best.pt")
    assert plain.provenance["format"] == "model_state" and plain.config == get_config("vit_t")

    decoder = {"base.conv.weight": torch.randn(4, 256, 3, 3), "out_conv.bias": torch.zeros(3)}
    torch.save({**trainer, "decoder_state": decoder}, tmp_path / "with_decoder.pt")
    with pytest.warns(UserWarning, match="decoder"):
        with_decoder = load_model(tmp_path / "with_decoder.pt", strict=False)
    assert type(with_decoder) is type(ours)
    for model in (plain, with_decoder):
        for key, value in model.state_dict().items():
            assert torch.equal(value, ours.state_dict()[key]), key


def test_incomplete_tiny_vit_fails_with_a_clear_error(state):
    lacking_one = {
        k: v for k, v in state.items() if k != "image_encoder.layers.3.blocks.1.mlp.fc2.bias"
    }
    with pytest.raises(CheckpointError, match=r"missing tensor \(image_encoder: .*mlp\.fc2\.bias"):
        load_model(lacking_one)
    lacking_a_stage = {
        k: v for k, v in state.items() if not k.startswith("image_encoder.layers.3.")
    }
    with pytest.raises(CheckpointError, match="four stages"):
        load_model(lacking_a_stage)
