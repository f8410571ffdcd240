"""Listing tensor names in error messages: shared by every part of models/, so it sits
below them, beside config.py."""

from __future__ import annotations

from collections.abc import Iterable

MAX_LISTED = 10


def preview_names(items: Iterable[str], limit: int = MAX_LISTED) -> str:
    """The first ``limit`` names, comma-separated, and how many more there are."""
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f", … ({len(items) - limit} more)" if len(items) > limit else "")
