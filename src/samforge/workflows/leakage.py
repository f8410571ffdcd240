"""Evaluation never scores a model on the cases it was trained on, unless told.

A model exported by ``samforge train`` lies in its run folder beside the resolved
``config.yaml``. Before an evaluation, :func:`check_evaluation_overlap` opens the training
sources that config names (file names only, nothing is read) and refuses when a case to be
evaluated is one of them: the same file under the same name, e.g. a MedSegBench file's
``train`` arrays evaluated with ``--split train``. Registered models and checkpoints outside
a run folder carry no record of their training data and are not checked.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from ..data import CaseList, overlapping_cases
from ..errors import ConfigError, SamforgeError
from ..training.config import load_config
from ..training.sources import collect_cases

RUN_CONFIG = "config.yaml"


def check_evaluation_overlap(
    models: Sequence[str], datasets: Sequence[tuple[str, CaseList]], allow: bool = False
) -> None:
    """Refuse to evaluate a trained model on its own training cases.

    Args:
        models: the ``--model`` values (registry names or checkpoint files).
        datasets: (label, cases to evaluate) of each ``--data`` value.
        allow: skip the check (``--allow-overlap``).

    Raises:
        ConfigError: naming the model, the dataset, how many cases are shared and the ways
            out (another ``--split``, or ``--allow-overlap``).
    """
    if allow:
        return
    for model in models:
        trained = training_cases(Path(model))
        if trained is None:
            continue
        for label, cases in datasets:
            shared = overlapping_cases(cases, trained)
            if shared:
                raise ConfigError(
                    f"model {model} was trained on {len(shared)} of the {len(cases)} cases of "
                    f"{label} to evaluate (e.g. {', '.join(shared[:3])}), per its run's "
                    f"{RUN_CONFIG}: scores on training cases measure memory. Evaluate another "
                    "split (--split test) or other data, or pass --allow-overlap if this is "
                    "intended."
                )


def training_cases(model: Path) -> CaseList | None:
    """The training cases of a model file in a run folder (None: not from a run folder)."""
    config_file = model.parent / RUN_CONFIG
    if not model.is_file() or not config_file.is_file():
        return None
    try:
        config = load_config(config_file)
        # Phantoms are generated in memory and never count (see overlapping_cases).
        sources = [s for s in config.data.train if s.phantoms is None]
        return collect_cases(sources, "train")
    except SamforgeError as error:
        warnings.warn(
            f"cannot tell which cases {model} was trained on ({error}); evaluating without "
            "the training/evaluation overlap check.",
            stacklevel=2,
        )
        return None
