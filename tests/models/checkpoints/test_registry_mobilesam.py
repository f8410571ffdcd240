"""The registry's MobileSAM-architecture models and the xxh128 checksums micro-sam publishes.

No test touches the network: the "published" file is a MobileSAM checkpoint in its
published layout (a bare state dict, as ``weights/mobile_sam.pt``) served from a
``file://`` URL, under the registry entry with only its URL (and, where the test says so,
its checksum) replaced.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from helpers.registry import isolate_registry
from samforge.cli import app
from samforge.errors import DownloadError
from samforge.models import build_model, get_config, get_model_spec, load_model
from samforge.models.checkpoints import hub, registry

# micro-sam's pooch registry (micro_sam/v1/util.py, models()): name -> (URL, xxh128).
MICROSAM_PUBLISHED = {
    "vit_t": (
        "https://owncloud.gwdg.de/index.php/s/TuDzuwVDHd1ZDnQ/download",
        "8eadbc88aeb9d8c7e0b4b60c3db48bd0",
    ),
    "vit_t_lm": (
        "https://uk1s3.embassy.ebi.ac.uk/public-datasets/bioimage.io/faithful-chicken/1.1/files/vit_t.pt",
        "72ec5074774761a6e5c05a08942f981e",
    ),
    "vit_t_em_organelles": (
        "https://uk1s3.embassy.ebi.ac.uk/public-datasets/bioimage.io/greedy-whale/1/files/vit_t.pt",
        "253474720c497cce605e57c9b1d18fd9",
    ),
}
# XXH3 128-bit of the empty input, seed 0 (the xxHash reference's test vector).
XXH128_OF_NOTHING = "99aa06d3014798d86001c324468d497f"


@pytest.fixture(autouse=True)
def cache(monkeypatch, tmp_path) -> Path:
    isolate_registry(monkeypatch, tmp_path / "cache")
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def published_bytes(tmp_path_factory) -> bytes:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("published") / "mobile_sam.pt"
    torch.save(build_model(get_config("vit_t")).state_dict(), path)
    return path.read_bytes()


def publish(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "server" / "vit_t.pt"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path.as_uri()


def test_mobilesam_entry_points_at_the_file_in_its_repository():
    spec = get_model_spec("mobilesam_vit_t")
    assert spec.url == "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt"
    assert spec.filename == "mobile_sam.pt" and spec.checksum is None
    assert "none published" in spec.checksum_source
    assert spec.config == get_config("vit_t") and spec.config.family == "mobilesam"


@pytest.mark.parametrize("name", list(MICROSAM_PUBLISHED))
def test_micro_sam_entries_carry_its_urls_and_xxh128_checksums(name):
    url, xxh128 = MICROSAM_PUBLISHED[name]
    spec = get_model_spec(name)  # micro-sam's own name is an alias
    assert spec is get_model_spec(f"microsam_{name}")
    assert (spec.url, spec.checksum) == (url, f"xxh128:{xxh128}")
    assert spec.config == get_config("vit_t") and spec.preprocessing == "sam"
    assert "micro-sam" in spec.checksum_source


def test_models_list_shows_the_vit_t_models():
    result = CliRunner().invoke(app, ["models", "list"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name in ("mobilesam_vit_t", "microsam_vit_t", "microsam_vit_t_lm"):
        assert name in result.output
    assert "microsam_vit_t_em_organelles" in result.output


def test_xxh128_digest_matches_the_reference_test_vector(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert hub.file_digest(empty, "xxh128") == XXH128_OF_NOTHING


def test_micro_sam_model_downloads_verifies_and_loads(tmp_path, published_bytes):
    import xxhash

    spec = get_model_spec("vit_t_lm")
    checksum = f"xxh128:{xxhash.xxh128(published_bytes).hexdigest()}"
    registry.register_model(
        replace(spec, url=publish(tmp_path, published_bytes), checksum=checksum), overwrite=True
    )
    model = load_model("vit_t_lm")
    assert model.provenance["name"] == "microsam_vit_t_lm"
    assert type(model).__name__ == "MobileSam" and model.config == get_config("vit_t")

    # A cached file changed afterwards fails its xxh128 and is not loaded.
    cached = hub.cached_path(get_model_spec("vit_t_lm"))
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0xFF
    cached.write_bytes(bytes(data))
    with pytest.raises(DownloadError, match="xxh128"):
        load_model("vit_t_lm")


def test_tampered_download_fails_its_xxh128_and_leaves_nothing(tmp_path, published_bytes, cache):
    spec = get_model_spec("vit_t_em_organelles")  # the published checksum, another file
    registry.register_model(replace(spec, url=publish(tmp_path, published_bytes)), overwrite=True)
    with pytest.raises(DownloadError, match="xxh128"):
        hub.fetch(get_model_spec("vit_t_em_organelles"), progress=False)
    models = cache / "models"
    assert not models.exists() or not any(models.iterdir())
