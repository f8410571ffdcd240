"""``samforge models export --onnx`` and ``samforge segment --engine onnxruntime``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from samforge.cli import app

pytest.importorskip("onnxruntime")

runner = CliRunner()


def test_export_onnx_writes_checked_graphs(tmp_path):
    folder = tmp_path / "onnx"
    result = runner.invoke(
        app, ["models", "export", "samforge_random_tiny", "--onnx", str(folder), "--single-mask"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((folder / "samforge_onnx.json").read_text())
    assert manifest["single_mask"] is True
    for graph in ("image_encoder", "decoder", "decoder_batched"):
        assert (folder / f"{graph}.onnx").is_file()
        assert manifest["relative_errors"][graph] <= 1e-4
        assert f"{graph}.onnx" in result.output


def test_export_needs_exactly_one_destination(tmp_path):
    result = runner.invoke(
        app,
        ["models", "export", "samforge_random_tiny", str(tmp_path / "m.pth"), "--onnx", "x"],
    )
    assert result.exit_code != 0
    assert "not both or none" in result.output
    assert list(tmp_path.iterdir()) == []


def test_segment_with_the_onnxruntime_engine_writes_the_torch_mask(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMFORGE_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    image = rng.integers(0, 60, (150, 210), dtype=np.uint8)
    image[40:110, 50:160] += 150
    Image.fromarray(image).save(tmp_path / "image.png")
    masks = {}
    for engine in ("torch", "onnxruntime"):
        output = tmp_path / f"{engine}.png"
        arguments = ["segment", str(tmp_path / "image.png"), "--box", "45", "35", "165", "115"]
        arguments += ["--model", "samforge_random_tiny", "-o", str(output), "--engine", engine]
        arguments += ["--precision", "fp32"]  # the engines compared, not torch's bf16 encoder
        result = runner.invoke(app, arguments)
        assert result.exit_code == 0, result.output
        masks[engine] = np.asarray(Image.open(output))
    assert masks["torch"].any()
    np.testing.assert_array_equal(masks["onnxruntime"], masks["torch"])
