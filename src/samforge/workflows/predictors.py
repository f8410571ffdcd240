"""Models named on a command line, loaded as Predictors with one label each.

Every evaluation command (``interactive2d``, ``interactive3d``, ``robustness``) loads its
``--model`` values here, so they name models alike: a registry name stays as it is, a
checkpoint file is named by its stem, and by ``<folder>/<stem>`` when two files share a
stem (every training run exports ``model.pth``: ``runs/a/model.pth`` -> ``a/model``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError
from ..inference import Predictor
from ..inference.disk_cache import DiskEmbeddingCache
from ..models import load_model


def model_labels(sources: Sequence[str]) -> list[str]:
    """One label per model source (registry name or checkpoint file), in order.

    Raises:
        ConfigError: two sources get the same label (a model given twice).
    """
    files = [Path(source) for source in sources if Path(source).is_file()]
    stems = [path.stem for path in files]
    labels = []
    for source in sources:
        path = Path(source)
        if not path.is_file():
            label = str(source)
        elif stems.count(path.stem) == 1:
            label = path.stem
        else:
            label = f"{path.parent.name}/{path.stem}"
        if label in labels:
            raise ConfigError(f"model {source!r} is given twice (as {label!r}); give each once.")
        labels.append(label)
    return labels


def load_predictors(sources: Sequence[str], cache_dir: Path | None = None) -> dict[str, Predictor]:
    """Label -> Predictor of each model source (see :func:`model_labels`), all sharing one
    on-disk embedding cache in ``cache_dir`` (none if None).

    Raises:
        ConfigError: a model given twice; ModelNotFoundError / CheckpointError: a source
            that is neither a registered name nor a readable checkpoint.
    """
    labels = model_labels(sources)
    disk_cache = DiskEmbeddingCache(cache_dir) if cache_dir is not None else None
    return {
        label: Predictor(load_model(source), disk_cache=disk_cache)
        for label, source in zip(labels, sources, strict=True)
    }
