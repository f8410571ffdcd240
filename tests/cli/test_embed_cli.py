"""``samforge embed``: a dataset's embeddings precomputed through Lightning into the disk
cache, then found there by a later Predictor.

The 2D dataset is an image/mask folder pair (``images/``, ``masks/``: the ``folders`` layout)
of CT phantom slices of three sizes; the 3D one a folder of NIfTI volumes. Two CPU
processes (``--devices 2``, DDP with the spawn start method) share the 2D cases.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from samforge.cli import app
from samforge.data import IntensitySettings, open_dataset
from samforge.data.phantoms import make_phantom
from samforge.inference import Predictor
from samforge.inference.disk_cache import DiskEmbeddingCache
from samforge.models import load_model
from samforge.workflows.embedding import EmbeddingJob, embed_dataset

runner = CliRunner()


@pytest.fixture
def image_folders(tmp_path):
    root = tmp_path / "slices"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for number, shape in enumerate([(120, 160), (200, 140), (96, 96)]):
        image, label, _ = make_phantom("ct", shape=shape, seed=number)
        grey = ((image.clip(-160, 240) + 160) / 400 * 255).astype(np.uint8)
        Image.fromarray(grey).save(root / "images" / f"case{number}.png")
        Image.fromarray(label).save(root / "masks" / f"case{number}.png")
    return root


def cache_files(cache) -> dict[str, int]:
    return {str(path): path.stat().st_mtime_ns for path in cache.glob("*/*.pt")}


def test_two_processes_fill_the_cache_that_a_later_predictor_reads(image_folders, tmp_path):
    cache = tmp_path / "cache"
    command = ["embed", str(image_folders), "--cache", str(cache), "--devices", "2"]
    result = runner.invoke(app, [*command, "--accelerator", "cpu"])
    assert result.exit_code == 0, result.output
    written = cache_files(cache)
    assert len(written) == 3

    model = load_model("samforge_nano")
    reader = Predictor(model, disk_cache=DiskEmbeddingCache(cache))
    direct = Predictor(model)
    settings = IntensitySettings()
    for case in open_dataset(image_folders):
        mapping = settings.case_mapping(case)
        reader.set_image(case.image, mapping=mapping)
        direct.set_image(case.image, mapping=mapping)
        torch.testing.assert_close(
            reader.image_embedding.embedding, direct.image_embedding.embedding
        )
    assert reader.disk_cache.hits == 3 and reader.disk_cache.misses == 0

    again = runner.invoke(app, ["embed", str(image_folders), "--cache", str(cache)])  # 1 process
    assert again.exit_code == 0, again.output
    assert cache_files(cache) == written  # nothing recomputed or rewritten
    assert "0 new embeddings" in again.output


def test_volumes_are_embedded_slice_by_slice_with_one_mapping(tmp_path):
    folder = tmp_path / "volumes"
    folder.mkdir()
    volume = make_phantom("ct", shape=(3, 96, 112), seed=5)[0]
    nib.save(
        nib.Nifti1Image(volume.transpose(2, 1, 0), np.diag([1.0, 1, 3, 1])), folder / "a.nii.gz"
    )
    cache = tmp_path / "cache"
    job = EmbeddingJob(str(folder), "samforge_nano", str(cache), intensity="ct")
    first = embed_dataset(job, accelerator="cpu", progress=False)
    assert first == [("a", 3, 3)]
    assert embed_dataset(job, accelerator="cpu", progress=False) == [("a", 0, 3)]

    case = open_dataset(folder)[0]
    reader = Predictor(
        load_model("samforge_nano"), intensity="ct", disk_cache=DiskEmbeddingCache(cache)
    )
    mapping = IntensitySettings("ct").case_mapping(case)
    for index in range(case.image.shape[0]):
        reader.set_image(case.image[index], mapping=mapping)
    assert reader.disk_cache.hits == 3 and reader.disk_cache.misses == 0


def test_a_missing_dataset_is_refused_before_any_process_starts(tmp_path):
    result = runner.invoke(
        app, ["embed", str(tmp_path / "nowhere"), "--cache", str(tmp_path / "c")]
    )
    assert result.exit_code != 0
    assert "does not exist" in str(result.exception)
    assert not (tmp_path / "c").exists()
