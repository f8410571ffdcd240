"""Semantic models named on a command line, and the data they are evaluated on.

A ``--model`` value is a semantic checkpoint (samforge's, MedicoSAM's with its decoder) or
the folder of a finished ``samforge train`` run (semantic presets and ``monai:unet`` /
``monai:swinunetr`` runs alike), which stands for the ``model.pth`` it exported. Every
model becomes a ``segment(image, spacing, modality)`` callable (:class:`SemanticPredictor`),
so the evaluation (:mod:`samforge.evaluation.semantic`) sees no difference between them;
each case's modality picks the intensity rule, as it did in training.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data import CaseList, choose_split, open_dataset
from ..errors import ConfigError
from ..evaluation import Segmenter, SemanticSettings
from ..inference import SemanticPredictor
from ..models.semantic import SemanticInfo, load_semantic_model
from ..training.sources import select_subjects
from .leakage import check_evaluation_overlap
from .predictors import model_labels

RUN_MODEL = "model.pth"  # what `samforge train` exports into a run folder


def model_files(sources: Sequence[str]) -> list[str]:
    """The ``--model`` values, a run folder replaced by its exported model.

    Raises:
        ConfigError: a folder that holds no exported model (a run still training).
    """
    files = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            if not (path / RUN_MODEL).is_file():
                raise ConfigError(
                    f"{path} is a folder without {RUN_MODEL}: give a semantic checkpoint or the "
                    "folder of a finished `samforge train` run."
                )
            path = path / RUN_MODEL
        files.append(str(path))
    return files


def semantic_labels(files: Sequence[str]) -> list[str]:
    """One label per model file (:func:`model_labels`); a run's exported model is named
    after its run folder, since every run exports ``model.pth``."""
    labels = model_labels(files)
    runs = [Path(file).parent.name for file in files if Path(file).name == RUN_MODEL]
    return [
        Path(file).parent.name
        if Path(file).name == RUN_MODEL and runs.count(Path(file).parent.name) == 1
        else label
        for file, label in zip(files, labels, strict=True)
    ]


def load_segmenters(
    files: Sequence[str], *, overlap: float = 0.25, sw_batch_size: int = 4, device: str = "cpu"
) -> tuple[dict[str, Segmenter], SemanticInfo]:
    """Label -> ``segment(image, spacing, modality)`` of each model file, and the models'
    common info.

    Raises:
        ConfigError: models with different classes or dimensions (they cannot share a
            table); CheckpointError / ModelNotFoundError: a file that is not a semantic model.
    """
    labels = semantic_labels(files)
    models = [load_semantic_model(file, device=device) for file in files]
    first = models[0].info
    for label, model in zip(labels, models, strict=True):
        if _described(model.info) != _described(first):
            raise ConfigError(
                f"models {labels[0]} and {label} differ: {_described(first)} vs "
                f"{_described(model.info)}; compare models of the same classes (label values) "
                "and dimensions."
            )
    segmenters = {
        label: _segmenter(SemanticPredictor(model, overlap=overlap, sw_batch_size=sw_batch_size))
        for label, model in zip(labels, models, strict=True)
    }
    return segmenters, first


def _described(info: SemanticInfo) -> str:
    classes = ", ".join(f"{v} {n}" for v, n in zip(info.values, info.class_names, strict=True))
    return f"{info.spatial_dims}D [{classes}]"


def _segmenter(predictor: SemanticPredictor) -> Segmenter:
    def segment(image: np.ndarray, spacing: tuple[float, ...], modality: str) -> np.ndarray:
        if len(spacing) == 3 and predictor.info.spatial_dims == 2:  # a volume, slice by slice
            return predictor.predict_slices(image, modality=modality)
        return predictor.predict(image, spacing, modality=modality)

    return segment


def evaluation_settings(
    info: SemanticInfo, classes: Sequence[str] | None, tolerance_mm: float
) -> SemanticSettings:
    """What a run scores: the models' classes (or the ``--classes`` among them)."""
    everything = SemanticSettings(info.class_names, spatial_dims=info.spatial_dims)
    chosen = everything.class_ids(classes) if classes else None
    return SemanticSettings(
        info.class_names, chosen, tolerance_mm, info.spatial_dims, info.label_values
    )


def semantic_datasets(
    data: Sequence[Path],
    split: str | None,
    subjects: Sequence[str] | None,
    models: Sequence[str],
    allow_overlap: bool = False,
) -> list[tuple[str, CaseList]]:
    """(name, cases) of each ``--data`` value: its ``split`` (default ``test`` where it has
    named splits), then the ``subjects`` (ids or ranges such as ``250-299``), checked
    against the cases the models' runs trained on."""
    datasets = []
    for folder in data:
        cases = open_dataset(folder, split=choose_split(folder, "auto", split, "test"))
        datasets.append((folder.name, select_subjects(cases, subjects) if subjects else cases))
    check_evaluation_overlap(models, datasets, allow_overlap)
    return datasets
