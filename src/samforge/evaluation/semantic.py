"""Semantic evaluation: per-class Dice, HD95 and NSD of whole label maps, per case and mean.

A model is any callable ``segment(image, spacing, modality) -> labels`` (a
:class:`~samforge.inference.SemanticPredictor`'s ``predict``, a MONAI network wrapped
alike, a function in a test): it gets a case's image as read, (H, W), (H, W, C) or
(D, H, W), with its spacing and modality (which pick the intensity rule, as in training),
and returns an integer label map of the image's spatial shape.

Metrics are MONAI's (``compute_dice``, ``compute_hausdorff_distance(percentile=95)``,
``compute_surface_dice``) on one-hot maps of the scored classes, with the case's voxel
spacing: HD95 and the NSD tolerance are in mm (in pixels for images whose files carry no
pixel size, such as the HC18 PNGs).

An empty class is scored as MONAI scores it, with one exception (Dice of a false
positive, where MONAI's default ``ignore_empty=True`` returns NaN and so would forgive a
class painted on a case that has none):

=====================  =====================  ================  =====  =====
class in reference     class in prediction    Dice              HD95   NSD
=====================  =====================  ================  =====  =====
absent                 absent                 NaN (not scored)  NaN    NaN
absent                 present                0.0               NaN    0.0
present                absent                 0.0               NaN    0.0
=====================  =====================  ================  =====  =====

Means skip NaN, as MONAI's metric reductions do. HD95 is undefined when one side is empty;
the summary counts those cases beside the mean (``hd95_undefined``), so a model that misses
a class is not flattered by its HD95 alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..data import Case
from ..errors import ConfigError, DataError, InputImageError
from ..models.semantic.info import renumbered
from .runs import done_keys, progress_bar

Segmenter = Callable[[np.ndarray, tuple[float, ...], str], np.ndarray]
"""``segment(image, spacing, modality) -> labels``: (H, W[, C]) or (D, H, W) -> (H, W) or
(D, H, W) int."""

METRICS = ("dice", "hd95", "nsd")


@dataclass(frozen=True)
class SemanticSettings:
    """What is scored.

    Attributes:
        class_names: the model's classes, index 0 ``"background"``; the data's labels must
            be among these ids.
        classes: the class ids scored (never 0); None: every class but the background.
        tolerance_mm: the NSD tolerance, in the units of the cases' spacing.
        spatial_dims: 2 or 3 when the model takes only images or only volumes; the cases
            must match (a 2D model also labels volumes, slice by slice). None: any.
        label_values: the data's label value of each class where the model's training
            renumbered them (:attr:`samforge.models.semantic.SemanticInfo.label_values`):
            the references are renumbered alike (other values become background). None:
            the labels are the class ids.
    """

    class_names: tuple[str, ...]
    classes: tuple[int, ...] | None = None
    tolerance_mm: float = 2.0
    spatial_dims: int | None = None
    label_values: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.class_names) < 2:
            raise ConfigError(
                f"a semantic model needs the background and at least one class; got "
                f"{list(self.class_names)}."
            )
        if not self.tolerance_mm >= 0:
            raise ConfigError(f"the NSD tolerance must be ≥ 0 mm; got {self.tolerance_mm}.")
        if self.spatial_dims not in (None, 2, 3):
            raise ConfigError(f"spatial_dims must be 2 or 3; got {self.spatial_dims}.")
        known = range(1, len(self.class_names))
        bad = [c for c in self.classes or () if c not in known]
        if bad or self.classes == ():
            raise ConfigError(
                f"classes {list(self.classes or ())} cannot be scored: choose among "
                f"{self.describe_classes()}."
            )

    @property
    def scored(self) -> tuple[int, ...]:
        """The class ids scored, in order."""
        return self.classes or tuple(range(1, len(self.class_names)))

    def describe_classes(self) -> str:
        return ", ".join(f"{i} {name}" for i, name in enumerate(self.class_names) if i)

    def class_ids(self, wanted: Sequence[str]) -> tuple[int, ...]:
        """Class ids of names or id strings (``--classes``), in the order given.

        Raises:
            ConfigError: a name or id that is not one of the model's classes.
        """
        lookup = {name.lower(): i for i, name in enumerate(self.class_names) if i}
        lookup |= {str(i): i for i in range(1, len(self.class_names))}
        bad = [w for w in wanted if w.strip().lower() not in lookup]
        if bad:
            raise ConfigError(
                f"--classes {bad} are not classes of the model; it has {self.describe_classes()}."
            )
        return tuple(dict.fromkeys(lookup[w.strip().lower()] for w in wanted))


def class_metrics(
    prediction: np.ndarray,
    reference: np.ndarray,
    classes: Sequence[int],
    spacing: Sequence[float],
    tolerance: float,
) -> dict[str, np.ndarray]:
    """Dice, HD95 and NSD of each class, MONAI's functions on one-hot maps.

    Args:
        prediction, reference: integer label maps of one shape, (H, W) or (D, H, W).
        classes: the K class ids scored.
        spacing: one size per array axis (dy, dx) or (dz, dy, dx).
        tolerance: the NSD tolerance in the units of ``spacing``.

    Returns:
        ``{"dice", "hd95", "nsd"}`` -> (K,) float64, with the module's empty-class rules.
    """
    from monai.metrics import compute_dice, compute_hausdorff_distance, compute_surface_dice

    predicted, expected = _one_hot(prediction, classes), _one_hot(reference, classes)
    spacing = [float(s) for s in spacing]
    with warnings.catch_warnings():
        # MONAI warns on every empty class; the table above says what those give.
        warnings.simplefilter("ignore")
        dice = compute_dice(predicted, expected, include_background=True, ignore_empty=False)
        hd95 = compute_hausdorff_distance(
            predicted, expected, include_background=True, percentile=95, spacing=spacing
        )
        nsd = compute_surface_dice(
            predicted,
            expected,
            class_thresholds=[float(tolerance)] * len(classes),
            include_background=True,
            spacing=spacing,
        )
    scores = {
        name: v[0].double().numpy() for name, v in zip(METRICS, (dice, hd95, nsd), strict=True)
    }
    neither = ~(predicted[0].flatten(1).any(1) | expected[0].flatten(1).any(1)).numpy()
    scores["dice"][neither] = np.nan  # ignore_empty=False says 1.0: nothing to score
    return scores


def _one_hot(labels: np.ndarray, classes: Sequence[int]) -> torch.Tensor:
    """(*S) label map -> (1, K, *S) float one-hot of ``classes``."""
    tensor = torch.as_tensor(np.asarray(labels))
    return torch.stack([tensor == c for c in classes])[None].double()


def score_case(
    prediction: np.ndarray, case: Case, settings: SemanticSettings, **fields
) -> list[dict]:
    """One row per scored class of ``case``: ``fields`` (model, dataset, ...), class id and
    name, Dice, HD95, NSD and the voxel counts of the class in reference and prediction."""
    reference = checked_reference(case, settings)
    if prediction.shape != reference.shape:
        raise InputImageError(
            f"model {fields.get('model', '')!r} returned labels of shape {prediction.shape} "
            f"for case {case.name} of shape {reference.shape}; a segmenter must return the "
            "input's spatial shape."
        )
    scored = settings.scored
    scores = class_metrics(prediction, reference, scored, case.spacing, settings.tolerance_mm)
    return [
        {
            **fields,
            "case": case.name,
            "class_id": class_id,
            "class": settings.class_names[class_id],
            **{name: float(scores[name][k]) for name in METRICS},
            "voxels": int((reference == class_id).sum()),
            "voxels_predicted": int((prediction == class_id).sum()),
        }
        for k, class_id in enumerate(scored)
    ]


def checked_reference(case: Case, settings: SemanticSettings) -> np.ndarray:
    """The case's label map, checked against the model's classes and dimensions.

    Raises:
        DataError: no label map, labels the model does not know, or an image where the
            model takes volumes (or the other way round).
    """
    if case.label is None:
        raise DataError(
            f"case {case.name} has no label map: semantic evaluation scores every case of the "
            "data, so each needs its labels (see `samforge data inspect`)."
        )
    dims = len(case.spacing)
    if settings.spatial_dims is not None and dims < settings.spatial_dims:
        kind = {2: "2D images", 3: "3D volumes"}
        raise DataError(
            f"case {case.name} is a {dims}D {'volume' if dims == 3 else 'image'}, but the model "
            f"segments {kind[settings.spatial_dims]}: evaluate it on "
            f"{kind[settings.spatial_dims]} or use a {dims}D model."
        )
    label, data_names = np.asarray(case.label), dict(case.meta.get("label_names") or {})
    if settings.label_values is not None:  # as the model's training renumbered them
        label = renumbered(label, settings.label_values)
        index = {value: i for i, value in enumerate(settings.label_values)}
        data_names = {index[int(v)]: n for v, n in data_names.items() if int(v) in index}
    unknown = sorted(set(np.unique(label).tolist()) - set(range(len(settings.class_names))))
    renamed = _renamed_classes(data_names, settings.class_names)
    if unknown or renamed:
        found = f"labels {unknown}" if unknown else f"classes named {renamed}"
        raise DataError(
            f"case {case.name} has {found} that are not classes of the model "
            f"({settings.describe_classes()}): evaluate on data labelled like the model's "
            "training data."
        )
    return label


def _renamed_classes(data_names: dict, class_names: Sequence[str]) -> dict[int, str]:
    """Class ids the data names otherwise than the model does. A model without names of
    its own (``class_3``, a MedicoSAM checkpoint's) agrees with any."""

    def plain(name: object) -> str:
        return str(name).lower().replace("_", " ").strip()

    return {
        int(i): str(name)
        for i, name in data_names.items()
        if 0 < int(i) < len(class_names)
        and plain(class_names[int(i)]) not in (plain(name), f"class {int(i)}")
    }


def run_semantic(
    segmenters: dict[str, Segmenter],
    datasets: Iterable[tuple[str, Iterable[Case]]],
    settings: SemanticSettings,
    *,
    rows: list[dict] | None = None,
    checkpoint: Callable[[list[dict]], object] | None = None,
    show_progress: bool = True,
) -> list[dict]:
    """Segment and score every (model, dataset, case) not yet in ``rows``.

    Args:
        segmenters: model name -> ``segment(image, spacing, modality)`` (names go into
            ``model``).
        datasets: (dataset name, its cases).
        rows: results of an earlier run into the same folder; their cases are skipped.
        checkpoint: called with all rows after each case (e.g. to rewrite the CSV).

    Returns:
        All rows (old and new), one per model, case and scored class.
    """
    rows = list(rows or [])
    finished = done_keys(rows, ("model", "dataset", "case"))
    with progress_bar("semantic") as progress:
        task = progress.add_task("cases", total=None, visible=show_progress)
        for dataset, cases in datasets:
            for case in cases:
                todo = [m for m in segmenters if (m, dataset, case.name) not in finished]
                if todo:
                    checked_reference(case, settings)  # before any model runs on it
                for model in todo:
                    prediction = np.asarray(
                        segmenters[model](case.image, case.spacing, case.modality)
                    )
                    fields = {"model": model, "dataset": dataset, "modality": case.modality}
                    rows.extend(score_case(prediction, case, settings, **fields))
                if todo and checkpoint is not None:
                    checkpoint(rows)
                progress.advance(task)
    return rows


def case_means(rows: Iterable[dict]) -> list[dict]:
    """Per (model, dataset, case): the mean over its scored classes of each metric (NaN
    skipped), and how many classes were scored."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["dataset"], row["case"]), []).append(row)
    return [
        {
            "model": model,
            "dataset": dataset,
            "case": case,
            **_nanmeans(members),
            "classes": int(np.isfinite([float(r["dice"]) for r in members]).sum()),
        }
        for (model, dataset, case), members in groups.items()
    ]


def _nanmeans(rows: Sequence[dict]) -> dict[str, float]:
    means = {}
    for name in METRICS:
        values = np.array([float(row[name]) for row in rows], dtype=float)
        values = values[np.isfinite(values)]
        means[name] = float(values.mean()) if values.size else float("nan")
    return means


def summarize_semantic(rows: Sequence[dict], settings: SemanticSettings) -> dict:
    """Per class and per model (and dataset): means over cases, NaN skipped.

    ``per_class``: each class's mean over the cases where it was scored, the number of those
    cases and of the cases whose HD95 is undefined (one side empty). ``per_model``: the mean
    over classes of those class means (each class weighs the same, however large).
    ``per_case``: each case's mean over its classes, worst Dice first.
    """
    per_class: list[dict] = []
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["dataset"], int(row["class_id"])), []).append(row)
    for (model, dataset, class_id), members in groups.items():  # models in the run's order
        dice = np.array([float(r["dice"]) for r in members])
        hd95 = np.array([float(r["hd95"]) for r in members])
        per_class.append(
            {
                "model": model,
                "dataset": dataset,
                "class_id": class_id,
                "class": members[0]["class"],
                **_nanmeans(members),
                "cases": int(np.isfinite(dice).sum()),
                "hd95_undefined": int((np.isfinite(dice) & ~np.isfinite(hd95)).sum()),
            }
        )
    per_model = []
    for model, dataset in dict.fromkeys((r["model"], r["dataset"]) for r in per_class):
        members = [r for r in per_class if (r["model"], r["dataset"]) == (model, dataset)]
        cases = {r["case"] for r in rows if (r["model"], r["dataset"]) == (model, dataset)}
        per_model.append(
            {
                "model": model,
                "dataset": dataset,
                **_nanmeans(members),
                "cases": len(cases),
                "hd95_undefined": sum(r["hd95_undefined"] for r in members),
            }
        )
    return {
        "protocol": "semantic",
        "settings": {
            "tolerance_mm": settings.tolerance_mm,
            "classes": {i: settings.class_names[i] for i in settings.scored},
            "metrics": "MONAI compute_dice, compute_hausdorff_distance(percentile=95), "
            "compute_surface_dice; distances in the units of the voxel spacing",
        },
        "per_model": per_model,
        "per_class": per_class,
        "per_case": sorted(case_means(rows), key=lambda r: (_sort_key(r["dice"]), r["case"])),
    }


def _sort_key(value: float) -> float:
    return value if np.isfinite(value) else np.inf  # unscored cases last


def worst_cases(rows: Sequence[dict], per_model: int = 2) -> list[tuple[str, str, str]]:
    """(model, dataset, case) of each model's ``per_model`` cases of lowest mean Dice."""
    means = sorted(case_means(rows), key=lambda r: (_sort_key(r["dice"]), r["case"]))
    chosen: list[tuple[str, str, str]] = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in means if r["model"] == model and np.isfinite(r["dice"])]
        chosen += [(model, r["dataset"], r["case"]) for r in mine[:per_model]]
    return chosen
