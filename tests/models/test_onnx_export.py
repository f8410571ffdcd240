"""ONNX export: SAM's own ONNX decoder as the reference, and the refusals.

The reference graph is made as ``segment_anything``'s ``scripts/export_onnx_model.py``
makes it: ``SamOnnxModel(sam, return_single_mask)`` traced with the script's dummy inputs
(5 points with labels 0–3, a mask, ``has_mask_input`` 1, ``orig_im_size`` (1500, 2250)),
opset 17, ``num_points`` dynamic, on the official ``Sam`` with random weights that are
loaded into samforge strictly. Under torch 2 the official graph freezes its padding crop at
the dummy's original size (``int()`` of a traced tensor), so graph against graph compares
at (1500, 2250); at other sizes ours is compared with the official ``SamOnnxModel`` run in
PyTorch.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
import torch

from helpers.configs import ROBUST_TEST, SAMMED2D_TEST, SAMUNET_TEST
from helpers.official import build_official_sam
from samforge.errors import ConfigError, ExportCheckError, MissingDependencyError
from samforge.models import OnnxExport, build_model, export_onnx, get_config
from samforge.models.config import VIT_TEST
from samforge.models.onnx.runtime import inference_session

pytest.importorskip("onnxruntime")

SMALL_ARCH = dict(embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,))
RELATIVE_TOLERANCE = 1e-4
OUTPUTS = ("masks", "iou_predictions", "low_res_masks")


def export_official_decoder(sam, path, return_single_mask: bool) -> dict[str, torch.Tensor]:
    """``scripts/export_onnx_model.py``'s export of ``sam``; returns its dummy inputs."""
    from segment_anything.utils.onnx import SamOnnxModel

    onnx_model = SamOnnxModel(model=sam, return_single_mask=return_single_mask)
    embed_size = sam.prompt_encoder.image_embedding_size
    generator = torch.Generator().manual_seed(0)
    dummy_inputs = {
        "image_embeddings": torch.randn(1, 256, *embed_size, generator=generator),
        "point_coords": torch.randint(0, 1024, (1, 5, 2), generator=generator).float(),
        "point_labels": torch.randint(0, 4, (1, 5), generator=generator).float(),
        "mask_input": torch.randn(1, 1, *[4 * x for x in embed_size], generator=generator),
        "has_mask_input": torch.tensor([1], dtype=torch.float),
        "orig_im_size": torch.tensor([1500, 2250], dtype=torch.float),
    }
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            onnx_model,
            tuple(dummy_inputs.values()),
            str(path),
            export_params=True,
            opset_version=17,
            do_constant_folding=True,
            input_names=list(dummy_inputs),
            output_names=list(OUTPUTS),
            dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
            dynamo=False,
        )
    return dummy_inputs


def relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    assert ours.shape == reference.shape, (ours.shape, reference.shape)
    return float(np.abs(ours - reference).max() / np.abs(reference).max())


def decoder_feeds(embedding: np.ndarray, frame: int) -> list[dict[str, np.ndarray]]:
    """Prompts of every kind in the official convention: points with the padding point,
    a box with points, a box alone; with and without a mask prompt."""
    rng = np.random.default_rng(3)
    feeds = []
    for coords, labels, has_mask in [
        ([[30.5, 40], [200, 100], [0, 0]], [1, 0, -1], 0.0),
        ([[50, 60], [20, 30], [220, 180]], [1, 2, 3], 1.0),
        ([[20, 30], [220, 180]], [2, 3], 0.0),
        ([[100, 128], [0, 0]], [1, -1], 1.0),
    ]:
        feeds.append(
            {
                "image_embeddings": embedding,
                "point_coords": np.array([coords], np.float32) * frame / 256,
                "point_labels": np.array([labels], np.float32),
                "mask_input": 3 * rng.standard_normal((1, 1, 64, 64)).astype(np.float32),
                "has_mask_input": np.array([has_mask], np.float32),
            }
        )
    return feeds


@pytest.fixture(scope="module")
def official_and_ours():
    official = build_official_sam(image_size=256, seed=5, **SMALL_ARCH)
    ours = build_model(VIT_TEST)
    ours.load_state_dict(official.state_dict(), strict=True)
    return official, ours


@pytest.mark.parametrize("single_mask", [False, True])
def test_decoder_is_sams_onnx_decoder(tmp_path, official_and_ours, single_mask, one_thread):
    official, ours = official_and_ours
    dummy = export_official_decoder(official, tmp_path / "official.onnx", single_mask)
    export = export_onnx(ours, tmp_path / "ours", single_mask=single_mask)
    reference = inference_session(tmp_path / "official.onnx")
    session = inference_session(export.path("decoder"))

    # The signature tools rely on: names, element types and ranks, in order.
    def signature(arguments):
        return [(a.name, a.type, len(a.shape)) for a in arguments]

    assert signature(session.get_inputs()) == signature(reference.get_inputs())
    assert signature(session.get_outputs()) == signature(reference.get_outputs())

    from segment_anything.utils.onnx import SamOnnxModel

    official_torch = SamOnnxModel(official, return_single_mask=single_mask)
    embedding = torch.randn(1, 256, 16, 16, generator=torch.Generator().manual_seed(1)).numpy()
    for feed in decoder_feeds(embedding, 256):
        # Graph against graph at the size the official graph was traced for.
        feed["orig_im_size"] = dummy["orig_im_size"].numpy()
        for ours_out, theirs, name in zip(
            session.run(None, feed), reference.run(None, feed), OUTPUTS, strict=True
        ):
            assert relative_error(ours_out, theirs) <= RELATIVE_TOLERANCE, name
        # Other sizes (odd, portrait, smaller than the frame): the official model in torch.
        for size in ([97, 301], [300, 181], [256, 256]):
            feed["orig_im_size"] = np.array(size, np.float32)
            with torch.no_grad():
                expected = official_torch(**{k: torch.from_numpy(v) for k, v in feed.items()})
            for ours_out, theirs, name in zip(
                session.run(None, feed), expected, OUTPUTS, strict=True
            ):
                assert relative_error(ours_out, theirs.numpy()) <= RELATIVE_TOLERANCE, (name, size)

    assert OnnxExport.read(export.folder).export_id == export.export_id
    assert max(export.errors.values()) <= RELATIVE_TOLERANCE


def test_batched_decoder_matches_one_object_at_a_time(tmp_path, official_and_ours, one_thread):
    """B objects in one run of ``decoder_batched.onnx`` = each object alone through the
    official-signature graph (its four masks)."""
    _, ours = official_and_ours
    export = export_onnx(ours, tmp_path)
    single = inference_session(export.path("decoder"))
    batched = inference_session(export.path("decoder_batched"))
    embedding = torch.randn(1, 256, 16, 16, generator=torch.Generator().manual_seed(2)).numpy()
    feeds = decoder_feeds(embedding, 256)[:2]  # same number of points: 3
    for has_mask in (0.0, 1.0):
        stacked = {
            "image_embeddings": embedding,
            "point_coords": np.concatenate([f["point_coords"] for f in feeds]),
            "point_labels": np.concatenate([f["point_labels"] for f in feeds]),
            "mask_input": np.concatenate([f["mask_input"] for f in feeds]),
            "has_mask_input": np.array([has_mask], np.float32),
        }
        scores, low_res = batched.run(None, stacked)
        for index, feed in enumerate(feeds):
            alone = dict(
                feed,
                has_mask_input=stacked["has_mask_input"],
                orig_im_size=np.array([256, 256], np.float32),
            )
            _, expected_scores, expected_low_res = single.run(None, alone)
            assert relative_error(scores[index : index + 1], expected_scores) <= RELATIVE_TOLERANCE
            assert relative_error(low_res[index : index + 1], expected_low_res) <= 1e-4


@pytest.mark.parametrize(
    "config",
    [
        SAMMED2D_TEST,
        VIT_TEST.with_changes(preprocessing="medsam"),
        get_config("vit_t").with_changes(image_size=256),
        # 32×32 tokens: eager CPU inference slices the MLP and the attention bias here.
        VIT_TEST.with_changes(image_size=512),
    ],
    ids=["sammed2d-adapters", "medsam-convention", "mobilesam-tinyvit", "vit-512-sliced"],
)
def test_other_families_export_checked(tmp_path, config, one_thread):
    """SAM-Med2D (adapters in the encoder, its own mask resizes), MedSAM's convention
    (resized probabilities), MobileSAM's TinyViT and a ViT large enough for samforge's
    sliced eager paths pass the export-time checks against PyTorch (every output, two
    original sizes)."""
    torch.manual_seed(0)
    export = export_onnx(build_model(config), tmp_path)
    assert max(export.errors.values()) <= RELATIVE_TOLERANCE
    assert export.config == config


@pytest.mark.parametrize("config", [ROBUST_TEST, SAMUNET_TEST], ids=["robustsam", "sam-unet"])
def test_families_needing_more_than_the_embedding_are_refused(tmp_path, config):
    with pytest.raises(ConfigError, match="engine='torch'"):
        export_onnx(build_model(config), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_graph_failing_its_check_leaves_nothing(tmp_path, official_and_ours):
    _, ours = official_and_ours
    with pytest.raises(ExportCheckError, match="nothing was written"):
        export_onnx(ours, tmp_path, tolerance=0.0)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="export"):
        OnnxExport.read(tmp_path)


def test_missing_onnxruntime_names_the_extra(tmp_path, official_and_ours, monkeypatch):
    _, ours = official_and_ours
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if absent
    with pytest.raises(MissingDependencyError, match=r"samforge\[onnx\]"):
        export_onnx(ours, tmp_path)
    assert list(tmp_path.iterdir()) == []
