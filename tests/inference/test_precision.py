"""The image encoder's precision: what ``"auto"`` picks and why, and that bf16 keeps the
masks of a trained model (the shipped samforge_nano) where fp32 puts them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.precision import bf16_mask_ious, pooled
from samforge.data import open_dataset, read_case, slice_volume
from samforge.data.phantoms import make_phantom
from samforge.inference import Predictor
from samforge.inference.engines import TorchEngine
from samforge.inference.precision import EncoderRunner, cpu_has_native_bf16, precision_choice
from samforge.models import build_model, get_config, load_model

# The bar for bf16 as the default: masks within IoU 0.99 of fp32 on average; a
# small object (a few hundred pixels) loses more IoU per flipped pixel, hence the floor.
MEAN_IOU, OBJECT_IOU = 0.99, 0.95


@pytest.fixture(scope="module")
def nano():
    return load_model("samforge_nano")


@pytest.mark.parametrize(
    ("capability", "expected"),
    [("AVX512", "bf16"), ("AMX", "bf16"), ("AVX2", "fp32"), ("DEFAULT", "fp32")],
)
def test_auto_picks_bf16_only_where_the_cpu_has_it(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    choice = precision_choice("auto", torch.device("cpu"))
    assert choice.precision == expected
    assert capability in choice.reason
    assert precision_choice("fp32", torch.device("cpu")).precision == "fp32"
    assert precision_choice("bf16", torch.device("cpu")).precision == "bf16"


def test_predictor_defaults_to_auto():
    predictor = Predictor(build_model(get_config("vit_test")))
    assert predictor.precision == ("bf16" if cpu_has_native_bf16() else "fp32")


def test_the_engine_chooses_the_encoder_for_the_precision():
    """The Predictor embeds with what its engine gives for the precision, whatever the
    engine's name: an engine that wraps the torch model still gets its own encoder."""
    model = build_model(get_config("vit_test")).eval()
    calls = []

    class CountingEngine(TorchEngine):
        name = "counting"

        def embedder(self, precision):
            runner = super().embedder(precision)
            return lambda images: calls.append(precision) or runner(images)

    predictor = Predictor(model, engine=CountingEngine(model), precision="fp32")
    predictor.set_image(np.zeros((40, 50), dtype=np.uint8))
    assert calls == ["fp32"]
    torch_engine = TorchEngine(model)
    assert torch_engine.embedder("bf16") is torch_engine.embedder("bf16")  # one copy each
    assert torch_engine.embedder("bf16") is not torch_engine.embedder("fp32")


def test_bf16_masks_match_fp32_on_phantoms(nano):
    images = []
    for modality, intensity in (("ct", "ct"), ("us", "auto")):
        image, label, _ = make_phantom(modality, shape=(240, 320), seed=1)
        images.append((image, label, intensity))
    ious = bf16_mask_ious(nano, images)
    assert len(ious) > 10
    assert np.mean(ious) >= MEAN_IOU and min(ious) >= OBJECT_IOU, pooled(ious)


@pytest.mark.real_data
def test_bf16_masks_match_fp32_on_hc18_and_ct(nano, shared_data):
    """HC18 ultrasound (800×540, a head per image) and TotalSegmentator CT slices (many
    organs each): images of both sizes need resizing to the model frame."""
    hc18 = open_dataset(shared_data / "hc18")
    ultrasound = [(hc18[i].image, hc18[i].label, "auto") for i in range(3)]
    folder = shared_data / "totalsegmentator"
    volume = read_case(folder / "example_ct_sm.nii.gz", folder / "example_seg.nii.gz")
    slices = list(slice_volume(volume, 0, True))
    ct = [(plane.image, plane.label, "ct") for plane in slices[12:14]]
    for name, images in (("hc18", ultrasound), ("ct", ct)):
        ious = bf16_mask_ious(nano, images)
        assert len(ious) >= len(images)
        assert np.mean(ious) >= MEAN_IOU and min(ious) >= OBJECT_IOU, f"{name}: {pooled(ious)}"


def test_bf16_encoder_weights_follow_fine_tuning():
    """The bf16 copies of the encoder's weights are remade when the weights change, so a
    predictor made before fine-tuning embeds with the fine-tuned weights."""
    model = build_model(get_config("vit_test")).eval()
    runner = EncoderRunner(model, "bf16")
    images = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        before = runner(images)
    assert before.dtype == torch.bfloat16  # the encoder ran on bf16 weights, not autocast
    with torch.no_grad():
        model.image_encoder.neck[0].weight.mul_(-1)
    with torch.inference_mode():
        after, fresh = runner(images), EncoderRunner(model, "bf16")(images)
    assert torch.equal(after, fresh) and not torch.equal(after, before)


def test_threads_sharing_a_model_embed_in_bf16_together():
    """The annotator's sessions share one model across threads: each must see whole bf16
    weights (a copy of the encoder, never the model's own parameters swapped in place)."""
    from concurrent.futures import ThreadPoolExecutor

    model = build_model(get_config("vit_test"))
    images = [np.random.default_rng(seed).uniform(0, 255, (60, 80)) for seed in range(6)]
    expected = []
    for image in images:
        predictor = Predictor(model, precision="bf16", cache_size=0)
        predictor.set_image(image)
        expected.append(predictor.image_embedding.embedding)

    def embed(index: int) -> torch.Tensor:
        predictor = Predictor(model, precision="bf16", cache_size=0)
        predictor.set_image(images[index])
        return predictor.image_embedding.embedding

    with ThreadPoolExecutor(max_workers=3) as pool:
        together = list(pool.map(embed, range(len(images))))
    for got, want in zip(together, expected, strict=True):
        torch.testing.assert_close(got, want)
    assert all(parameter.dtype == torch.float32 for parameter in model.parameters())
