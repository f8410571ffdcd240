"""A registry and download cache of the test's own, so registrations and downloads vanish
after it."""

from __future__ import annotations

from pathlib import Path

from samforge.models.checkpoints import hub, registry


def isolate_registry(monkeypatch, cache_root: Path) -> None:
    """Point the cache at ``cache_root`` and give the test copies of the registry's tables."""
    monkeypatch.setenv(hub.CACHE_ENV, str(cache_root))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
