"""What an annotated object is: its name, colour and status, and the prompts the user gave
it on each slice. Masks are kept beside these records (:mod:`.document`), slice by slice.

Records are immutable: every edit makes a new one, so the undo history can hold the old
ones as they were. All coordinates are (x, y) pixels of slice ``index`` of the case
(``case.image[index]``; 2D images have the one slice 0), boxes end-exclusive, as in
:meth:`samforge.prompts.Prompts.from_user`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from ...errors import PromptError
from ...prompts import Prompts

STATUSES = ("draft", "accepted")
# Distinct on grey images and for the common colour-vision deficiencies (Okabe–Ito first).
PALETTE = (
    "#e69f00",
    "#56b4e9",
    "#009e73",
    "#f0e442",
    "#0072b2",
    "#d55e00",
    "#cc79a7",
    "#ff4d4d",
    "#7cfc00",
    "#00ffff",
)
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_NAME = 80


@dataclass(frozen=True)
class SlicePrompts:
    """The prompts of one object on one slice: an optional box and clicked points.

    points: (x, y) pixels; labels: 1 (positive) or 0 (negative), one per point.
    """

    box: tuple[float, float, float, float] | None = None
    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if len(self.points) != len(self.labels):
            raise PromptError(
                f"{len(self.points)} points but {len(self.labels)} labels: give one label "
                "(1 positive, 0 negative) per point."
            )
        if any(label not in (0, 1) for label in self.labels):
            raise PromptError(f"point labels must be 1 or 0; got {list(self.labels)}.")
        if not self.is_empty:
            self.to_prompts()  # checks finite values and box order, with the usual messages

    @property
    def is_empty(self) -> bool:
        return self.box is None and not self.points

    def to_prompts(self) -> Prompts:
        """The prompts as a :class:`~samforge.prompts.Prompts` record of one object."""
        if self.is_empty:
            raise PromptError("this slice has no prompt: give a box or a point.")
        boxes = None if self.box is None else [list(self.box)]
        if not self.points:
            return Prompts.from_user(boxes=boxes)
        return Prompts.from_user([list(self.points)], [list(self.labels)], boxes)

    def to_json(self) -> dict[str, Any]:
        return {
            "box": None if self.box is None else list(self.box),
            "points": [
                [x, y, label] for (x, y), label in zip(self.points, self.labels, strict=True)
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SlicePrompts:
        """From ``{"box": [x0, y0, x1, y1] | null, "points": [[x, y, label], ...]}``."""
        box = data.get("box")
        points = data.get("points") or []
        try:
            return cls(
                None if box is None else _four(box),
                tuple((float(x), float(y)) for x, y, _ in points),
                tuple(int(label) for _, _, label in points),
            )
        except (TypeError, ValueError):
            raise PromptError(
                f"prompts must be {{'box': [x0, y0, x1, y1] or null, 'points': [[x, y, "
                f"label], ...]}}; got {dict(data)!r}."
            ) from None


def _four(box: Any) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(value) for value in box)
    return x0, y0, x1, y1


@dataclass(frozen=True)
class ObjectInfo:
    """One object of a document, without its mask.

    id: its label value in saved label maps (1, 2, ...; never reused in a document).
    prompts: slice index -> that slice's prompts; the slices the object was prompted on.
    painted: slices whose mask the user touched up with the brush or eraser; propagation
        leaves them (and the prompted slices) as they are.
    """

    id: int
    name: str
    colour: str
    status: str = "draft"
    prompts: Mapping[int, SlicePrompts] = field(default_factory=dict)
    painted: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > MAX_NAME:
            raise PromptError(f"an object's name must be 1 to {MAX_NAME} characters.")
        if not _COLOUR.match(self.colour):
            raise PromptError(f"colour must look like '#1f77b4'; got {self.colour!r}.")
        if self.status not in STATUSES:
            raise PromptError(f"status must be one of {', '.join(STATUSES)}; not {self.status!r}.")
        object.__setattr__(self, "prompts", MappingProxyType(dict(self.prompts)))

    @property
    def user_slices(self) -> frozenset[int]:
        """Slices whose mask the user made (prompted or painted): propagation keeps them."""
        return frozenset(self.prompts) | self.painted

    def with_prompts(self, index: int, prompts: SlicePrompts) -> ObjectInfo:
        """This object with ``prompts`` on slice ``index`` (none: the slice loses its
        prompts)."""
        changed = dict(self.prompts)
        if prompts.is_empty:
            changed.pop(index, None)
        else:
            changed[index] = prompts
        return replace(self, prompts=changed)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "colour": self.colour,
            "status": self.status,
            "prompts": {str(index): p.to_json() for index, p in sorted(self.prompts.items())},
            "painted": sorted(self.painted),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ObjectInfo:
        prompts = {int(i): SlicePrompts.from_json(p) for i, p in data.get("prompts", {}).items()}
        return cls(
            int(data["id"]),
            str(data["name"]),
            str(data["colour"]),
            str(data.get("status", "draft")),
            prompts,
            frozenset(int(index) for index in data.get("painted", [])),
        )


def default_colour(object_id: int) -> str:
    return PALETTE[(object_id - 1) % len(PALETTE)]
