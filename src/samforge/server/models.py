"""The models a server offers, each loaded once and shared by every session.

Each model has one memory cache of embeddings (locked: sessions and background jobs use it
from several threads) and all share one disk cache in the workspace, so reopening a case,
in this process or after a restart, embeds nothing again. Every user of a model gets its
own :class:`~samforge.inference.Predictor` (they hold the current image), wrapped around
the shared model and caches; torch runs concurrent forward passes of one module safely.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import NotFoundError
from ..inference import Predictor
from ..inference.disk_cache import DiskEmbeddingCache
from ..inference.embedding_cache import EmbeddingCache
from ..inference.engines import Engine, create_engine
from ..models import SamModel, get_model_spec, list_models, load_model
from ..models.checkpoints import hub
from ..models.sam.embeddings import Embeddings
from .settings import MIB, ServerSettings

ModelLoader = Callable[[str], SamModel]


class SharedEmbeddingCache(EmbeddingCache):
    """The LRU embedding cache, safe to use from several threads."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Embeddings | None:
        with self._lock:
            return super().get(key)

    def put(self, key: tuple, embedding: Embeddings) -> None:
        with self._lock:
            super().put(key, embedding)

    def clear(self) -> None:
        with self._lock:
            super().clear()


@dataclass
class LoadedModel:
    name: str
    model: SamModel
    cache: SharedEmbeddingCache
    engine: Engine  # shared by the model's predictors (one bf16 encoder copy, one ONNX export)


class ModelPool:
    """Loads models on first use (one at a time) and makes predictors for them.

    Args:
        settings: the default model, the extra ones, the memory budget, the workspace.
        loader: name -> model (default :func:`samforge.load_model`); tests pass their own.
    """

    def __init__(self, settings: ServerSettings, loader: ModelLoader | None = None) -> None:
        self.settings = settings
        self.loader = loader or load_model
        self.disk_cache = DiskEmbeddingCache(settings.workspace / "embeddings")
        self._loaded: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Every model the page may switch to: the ones given to the server, then the
        registry's."""
        given = [self.settings.model, *self.settings.extra_models]
        return list(dict.fromkeys([*given, *list_models()]))

    def describe(self) -> list[dict]:
        """The models with what loading them costs: ``local`` is False where the weights
        would be downloaded first."""
        described = []
        for name in self.names():
            entry = {"name": name, "loaded": name in self._loaded, "local": True, "info": ""}
            try:
                spec = get_model_spec(name)
            except Exception:  # a checkpoint file given with -m: local by definition
                spec = None
            if spec is not None:
                entry["local"] = spec.is_built_in or hub.is_cached(spec)
                entry["info"] = spec.description
            described.append(entry)
        return described

    def get(self, name: str) -> LoadedModel:
        """The loaded model ``name`` (loading it first if needed).

        Raises:
            NotFoundError: ``name`` is not one of :meth:`names`.
        """
        if name not in self.names():
            raise NotFoundError(
                f"model {name!r} is not offered by this server; choose one of "
                f"{', '.join(self.names())} (or start samforge serve with -m {name})."
            )
        with self._lock:
            if name not in self._loaded:
                model = self.loader(name)
                capacity = max(16, self.settings.cache_mb * MIB // _embedding_bytes(model))
                engine = create_engine(self.settings.engine, model)
                cache = SharedEmbeddingCache(capacity)
                self._loaded[name] = LoadedModel(name, model, cache, engine)
            return self._loaded[name]

    def predictor(self, name: str) -> Predictor:
        """A new Predictor for model ``name``, sharing its memory cache and the disk cache."""
        loaded = self.get(name)
        predictor = Predictor(
            loaded.model,
            disk_cache=self.disk_cache,
            engine=loaded.engine,
            precision=self.settings.precision,
        )
        predictor.cache = loaded.cache
        return predictor


def _embedding_bytes(model: SamModel) -> int:
    """Roughly the bytes of one image's embedding (256 channels on the embedding grid;
    families with extra feature maps take more, which the budget tolerates)."""
    size = model.config.embedding_size
    return 256 * size * size * 4
