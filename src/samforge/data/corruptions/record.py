"""A corruption type as a record: its group, its five-level severity ladder and the
function that applies it (see :mod:`samforge.data.corruptions` for the ladders)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...errors import ConfigError

FloatImage = NDArray[np.float64]
Params = dict[str, Any]
# (image as float64 on 0–255, this level's ladder value, rng) -> (unclipped image, parameters)
ApplyFn = Callable[[FloatImage, Any, np.random.Generator], tuple[FloatImage, Params]]

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
PAPER_SEVERITY = 3


@dataclass(frozen=True)
class Corruption:
    """One corruption type: its group, its severity ladder and the function that applies it.

    Attributes:
        name: The type's name, e.g. ``"gaussian_noise"``.
        group: ``modality_agnostic``, ``image_pipeline``, ``ultrasound``, ``mri`` or ``ct_xray``.
        parameter: What the ladder values mean.
        ladder: The parameter at severities 1..5; ``ladder[PAPER_SEVERITY - 1]`` is the paper's.
        apply: ``(image, ladder value, rng) -> (image, drawn parameters)`` on float64 images
            with values in [0, 255]; the result is clipped by the caller.
    """

    name: str
    group: str
    parameter: str
    ladder: tuple[Any, Any, Any, Any, Any]
    apply: ApplyFn

    @property
    def paper(self) -> Any:
        """The paper's parameter (the ladder's value at :data:`PAPER_SEVERITY`)."""
        return self.ladder[PAPER_SEVERITY - 1]

    def level(self, severity: int) -> Any:
        """The ladder value of a severity in 1..5; ConfigError otherwise."""
        if isinstance(severity, bool) or not isinstance(severity, int | np.integer):
            raise ConfigError(f"severity must be an integer 1–5; got {severity!r}.")
        if severity not in SEVERITIES:
            raise ConfigError(f"severity must be 1–5 (3 = the paper's setting); got {severity}.")
        return self.ladder[int(severity) - 1]
