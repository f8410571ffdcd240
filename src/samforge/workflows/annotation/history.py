"""Undo and redo: every edit of a document is one :class:`Change` of one object.

A change holds the object's record before and after (``None``: the object did not exist)
and the masks of the slices it touched, before and after (``None``: empty). Masks are never
modified in place, so a change can keep references to them instead of copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .objects import ObjectInfo

MaskSlices = Mapping[int, "np.ndarray | None"]


@dataclass(frozen=True)
class Change:
    """One edit of one object; :meth:`inverse` undoes it."""

    object_id: int
    before: ObjectInfo | None
    after: ObjectInfo | None
    masks_before: MaskSlices = field(default_factory=dict)
    masks_after: MaskSlices = field(default_factory=dict)

    def inverse(self) -> Change:
        return Change(self.object_id, self.after, self.before, self.masks_after, self.masks_before)


class History:
    """Two stacks of changes; a new change clears what could be redone. At most ``limit``
    changes are kept (the oldest go first)."""

    def __init__(self, limit: int = 100) -> None:
        self.limit = limit
        self._undo: list[Change] = []
        self._redo: list[Change] = []

    def push(self, change: Change) -> None:
        self._undo.append(change)
        del self._undo[: -self.limit]
        self._redo.clear()

    def undo(self) -> Change | None:
        """The change that reverts the last edit (None: nothing to undo)."""
        if not self._undo:
            return None
        change = self._undo.pop()
        self._redo.append(change)
        return change.inverse()

    def redo(self) -> Change | None:
        """The change that repeats the last undone edit (None: nothing to redo)."""
        if not self._redo:
            return None
        change = self._redo.pop()
        self._undo.append(change)
        return change

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)
