"""``Predictor(model, engine="onnxruntime")`` against the torch engine on the same model.

Images need resizing (smaller and larger than the 256 frame, odd, portrait, grey), several
objects are decoded at once, and prompts are boxes, points (with and without boxes), mask
prompts (alone too) and multimask output. Logits agree within 1e-4 of their range; masks
are identical except where a logit is within that tolerance of the threshold (ties).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samforge.errors import ConfigError
from samforge.inference import Predictor
from samforge.inference.disk_cache import DiskEmbeddingCache
from samforge.inference.engines.onnx_runtime import OnnxRuntimeEngine, cached_export_folder
from samforge.models import build_model
from samforge.models.config import VIT_TEST

from .test_parity_conventions import textured_image

pytest.importorskip("onnxruntime")

RELATIVE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("samforge-cache")
        patch.setenv("SAMFORGE_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(7)
    return build_model(VIT_TEST)


@pytest.fixture(scope="module")
def engines(cache_root, model):
    """(torch predictor, onnxruntime predictor) of one model; the graphs are exported into
    the cache on the first use."""
    # fp32 on both sides: the comparison is of the engines, not of the torch bf16 encoder.
    return Predictor(model, precision="fp32"), Predictor(model, engine="onnxruntime")


def assert_same_prediction(ours, reference) -> None:
    for name in ("scores", "low_res_logits", "logits"):
        expected = getattr(reference, name)
        error = np.abs(getattr(ours, name) - expected).max() / np.abs(expected).max()
        assert error <= RELATIVE_TOLERANCE, f"{name}: relative error {error:.2e}"
    ties = np.abs(reference.logits) <= RELATIVE_TOLERANCE * np.abs(reference.logits).max()
    assert np.array_equal(ours.masks[~ties], reference.masks[~ties])


def prompts_for(height: int, width: int) -> list[dict]:
    """Three objects, as every kind of prompt, in the image's pixels."""
    scale = np.array([width, height, width, height])
    boxes = np.array([[0.11, 0.2, 0.55, 0.83], [0.02, 0.5, 0.97, 0.98], [0.45, 0.05, 0.8, 0.35]])
    boxes = np.floor(boxes * scale).astype(np.float32)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    points = np.stack([centres, boxes[:, :2] + 1], axis=1)  # (3, 2, 2): inside, corner
    labels = np.array([[1, 0]] * 3)
    return [
        dict(boxes=boxes),
        dict(points=points, labels=labels),
        dict(points=points[:, :1], labels=labels[:, :1], multimask=True),
        dict(points=points, labels=labels, boxes=boxes),
    ]


@pytest.mark.parametrize(
    "shape, grey", [((181, 258), False), ((300, 97), True), ((600, 512), False)]
)
def test_onnxruntime_engine_matches_torch(engines, shape, grey, one_thread):
    torch_predictor, onnx_predictor = engines
    image = textured_image(*shape, seed=sum(shape), grey=grey)
    for predictor in engines:
        predictor.set_image(image)
    embedding_error = (
        onnx_predictor.image_embedding.embedding - torch_predictor.image_embedding.embedding
    ).abs().max() / torch_predictor.image_embedding.embedding.abs().max()
    assert embedding_error <= RELATIVE_TOLERANCE
    for prompt in prompts_for(*shape):
        reference = torch_predictor.predict(**prompt, return_logits=True)
        ours = onnx_predictor.predict(**prompt, return_logits=True)
        assert_same_prediction(ours, reference)
        # Fed back as mask prompts, with the same prompts and alone.
        mask = reference.low_res_logits[:, :1]
        for again in (dict(prompt, mask_input=mask), dict(mask_input=mask)):
            assert_same_prediction(
                onnx_predictor.predict(**again, return_logits=True),
                torch_predictor.predict(**again, return_logits=True),
            )


def test_from_onnx_serves_the_exported_graphs(engines, model, tmp_path, one_thread):
    """A predictor built from the export folder alone gives the engine's results, and a
    disk cache shared with the torch engine keeps their embeddings apart."""
    _, onnx_predictor = engines
    folder = cached_export_folder(model)
    cache = DiskEmbeddingCache(tmp_path)
    from_folder = Predictor.from_onnx(folder, disk_cache=cache)
    shared_torch = Predictor(model, disk_cache=cache, precision="fp32")
    image = textured_image(130, 170, seed=4)
    for predictor in (from_folder, onnx_predictor, shared_torch):
        predictor.set_image(image)
    assert len(cache) == 2
    boxes = prompts_for(130, 170)[0]["boxes"]
    expected = onnx_predictor.predict(boxes=boxes, return_logits=True)
    served = from_folder.predict(boxes=boxes, return_logits=True)
    np.testing.assert_array_equal(served.logits, expected.logits)
    # A second predictor from the folder is served from the disk cache.
    again = Predictor.from_onnx(folder, disk_cache=cache)
    again.set_image(image)
    assert cache.hits == 1


def test_embed_volume_through_onnxruntime(engines, one_thread):
    torch_predictor, onnx_predictor = engines
    volume = np.stack([textured_image(90, 120, seed=s)[..., 0] for s in range(3)])
    assert onnx_predictor.embed_volume(volume, batch_size=2) == 3
    onnx_predictor.set_image(volume[1], mapping=onnx_predictor.volume_mapping(volume))
    torch_predictor.set_image(volume[1], mapping=torch_predictor.volume_mapping(volume))
    ours = onnx_predictor.image_embedding.embedding
    reference = torch_predictor.image_embedding.embedding
    assert (ours - reference).abs().max() / reference.abs().max() <= RELATIVE_TOLERANCE


def test_bad_engine_settings_are_refused(model, cache_root):
    with pytest.raises(ConfigError, match="engine must be one of"):
        Predictor(model, engine="tensorrt")
    with pytest.raises(ConfigError, match="fp32"):
        Predictor(model, engine="onnxruntime", precision="bf16")
    with pytest.raises(ConfigError, match="samforge models export"):
        Predictor.from_onnx(cache_root / "nothing-here")
    assert Predictor(model, engine="onnxruntime", precision="auto").precision == "fp32"


def test_engine_reuses_the_cached_export(engines, model):
    """A second onnxruntime predictor of the same weights reads the cached graphs."""
    _, onnx_predictor = engines
    engine = OnnxRuntimeEngine.for_model(model)
    assert engine.export.export_id == onnx_predictor.engine.export.export_id
