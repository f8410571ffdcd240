"""Interactive 2D segmentation: embed an image once, then decode any number of prompts.

>>> predictor = Predictor(samforge.load_model("sam_vit_b"))
>>> predictor.set_image(ct_slice, intensity="ct", window="soft_tissue")
>>> result = predictor.predict(boxes=[[40, 60, 120, 140]])
>>> result.masks.shape   # (objects, masks per object, H, W)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils._pytree import tree_map

from ..data import IntensityMapping, IntensitySettings
from ..errors import ConfigError, InputImageError
from ..models import SamModel
from ..models.sam.embeddings import Embeddings, to_device
from ..preprocessing import IMAGE_PATH_VERSION
from ..prompts import Prompts
from .disk_cache import DiskEmbeddingCache
from .embedding_cache import EmbeddingCache, content_key, model_state_key
from .engines import Engine, create_engine
from .precision import DEFAULT_PRECISION, PrecisionChoice, precision_choice
from .prediction import ImageEmbedding, Prediction

# Decoding memory grows with the objects decoded together: the decoder's activations with
# their number, the full-resolution logits with their number times the image's pixels. Both
# are bounded by decoding at most DECODE_BATCH objects at a time, and fewer on large images,
# so that one chunk's full-resolution logits stay within FULL_RESOLUTION_BUDGET bytes.
DECODE_BATCH = 32
FULL_RESOLUTION_BUDGET = 256 * 2**20
# On a CPU each object's decoder pass after the first layer runs over its own image tokens
# and upscaled features (4h·4w pixels × C/8 floats: 8 MiB for ViT-B). Objects decoded
# together beyond what stays in the caches run from main memory: 32 ViT-B boxes decode
# 1.3-1.4× faster in chunks of 2 than in one call (docs/performance.md), while the small
# built-in model's 0.5 MiB per object still decodes 32 at a time.
CPU_DECODER_WORKING_SET = 16 * 2**20


class Predictor:
    """Segments objects in one 2D image at a time from points, boxes and mask prompts.

    ``set_image`` accepts (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) arrays of any integer or
    float dtype and maps them to SAM's 0–255 RGB input with
    :class:`samforge.data.intensity.IntensitySettings` (``intensity="auto"`` by default:
    uint8 passes through, other data is clipped to its 1st–99th percentiles; ``"ct"`` with a
    ``window`` preset for CT). The model then sees what its reference predictor would show
    it (:mod:`samforge.preprocessing`): 8-bit RGB input takes the reference path bit for bit
    (the official ``SamPredictor`` for SAM-convention models), and any other input is first
    mapped to 0–255 by the intensity rule and rounded to 8 bits, then takes the same path.
    Embeddings are cached by image content, so returning to an image costs nothing.
    ``predict`` takes prompts as lists or arrays and returns numpy arrays; ``decode`` takes
    a :class:`samforge.prompts.Prompts` record and returns tensors (the evaluation protocols
    and propagation use it).

    ``precision`` sets the image encoder's arithmetic (:mod:`samforge.inference.precision`):
    ``"auto"`` (the default) is bf16 on CUDA and on CPUs with native bf16 (AVX-512/AMX),
    where its masks stay within IoU 0.99 of fp32's, and fp32 elsewhere; ``"fp32"`` is
    exact; ``"bf16"`` forces bf16. Embeddings are always returned and cached as float32;
    bf16 ones are cached under their own keys, so an fp32 predictor never receives them.
    Prompt decoding always runs in fp32.

    ``engine``: ``"torch"`` (the model) or ``"onnxruntime"`` (its ONNX graphs, fp32;
    :meth:`from_onnx`), see :mod:`samforge.inference.engines`.
    """

    def __init__(
        self,
        model: SamModel,
        *,
        intensity: str = "auto",
        window: str | tuple[float, float] | None = None,
        cache_size: int = 8,
        disk_cache: DiskEmbeddingCache | None = None,
        precision: str = DEFAULT_PRECISION,
        decode_batch: int = DECODE_BATCH,
        engine: str | Engine = "torch",
    ) -> None:
        if decode_batch < 1:
            raise ConfigError(f"decode_batch must be at least 1; got {decode_batch}.")
        self.model = model.eval()
        self.decode_batch = decode_batch
        self.engine = create_engine(engine, self.model)
        choice = precision_choice(precision, model.device)
        self.precision = self.engine.precision(precision, choice.precision)
        if self.precision != choice.precision:
            reason = f"the {self.engine.name} engine runs float32 graphs"
            choice = PrecisionChoice(precision, self.precision, reason)
        self.precision_choice: PrecisionChoice = choice
        self.encoder = self.engine.embedder(self.precision)
        self.transform = model.config.input_transform()
        self.intensity_settings = IntensitySettings(intensity, window)
        self.cache = EmbeddingCache(cache_size)
        self.disk_cache = disk_cache
        self._current: ImageEmbedding | None = None

    @classmethod
    def from_onnx(cls, folder, **options) -> Predictor:
        """A predictor running the graphs ``samforge models export --onnx`` wrote."""
        from .engines.onnx_runtime import OnnxRuntimeEngine

        engine = OnnxRuntimeEngine.from_folder(folder)
        return cls(engine.stand_in_model(), engine=engine, **options)

    @property
    def intensity(self) -> str:
        return self.intensity_settings.mode

    @property
    def window(self) -> str | tuple[float, float] | None:
        return self.intensity_settings.window

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def low_res_size(self) -> int:
        return 4 * self.model.config.embedding_size

    @property
    def embedding_shape(self) -> tuple[int, int, int, int]:
        """(1, C, h, w): the shape of the image embedding the model makes of one image."""
        size = self.model.config.embedding_size
        return (1, self.model.config.prompt_embed_dim, size, size)

    @property
    def image_embedding(self) -> ImageEmbedding:
        if self._current is None:
            raise InputImageError("no image is set: call predictor.set_image(image) first.")
        return self._current

    def set_image(
        self,
        image: np.ndarray,
        *,
        intensity: str | None = None,
        window: str | tuple[float, float] | None = None,
        modality: str | None = None,
        mapping: IntensityMapping | None = None,
    ) -> None:
        """Embed a 2D image (see the class docstring for accepted inputs).

        ``mapping`` replaces ``intensity``/``window`` with a mapping computed once for a
        whole volume (:meth:`volume_mapping`), so that every slice of the volume is
        normalised alike.
        """
        image = _as_image_array(image)
        intensity = intensity or self.intensity
        window = window if window is not None else self.window
        settings = mapping if mapping is not None else (intensity, window, modality)
        key, disk_key = self._keys(image, settings)
        embedding = self._cached(key, disk_key)
        if embedding is None:
            if mapping is None:
                mapping = IntensitySettings(intensity, window).image_mapping(image, modality)
            embedding = self.embed_rgb(mapping(image))
            self._store(key, disk_key, embedding)
        self._current = ImageEmbedding(embedding, (int(image.shape[0]), int(image.shape[1])))

    def embed_volume(
        self,
        volume: np.ndarray,
        *,
        mapping: IntensityMapping | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int = 4,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Embed the slices of a volume in batches into the memory (and disk) cache, so
        that ``set_image(volume[i], mapping=mapping)`` afterwards is a cache hit.

        Args:
            volume: (D, H, W) intensities, slice axis first.
            mapping: the volume's intensity mapping (default: :meth:`volume_mapping`, as
                ``propagate`` uses).
            indices: the slices to embed (default: all).
            batch_size: slices per encoder call.
            progress: called with (slices done, slices to do) after every batch.

        Returns:
            the number of slices that were embedded (the others were cached already).

        The memory cache grows to hold the requested slices; ``cache.clear()`` frees them.
        """
        volume = np.asarray(volume)
        if volume.ndim != 3 or 0 in volume.shape:
            raise InputImageError(
                f"embed_volume needs a (D, H, W) volume; got shape {volume.shape}. For a "
                "2D image, use set_image."
            )
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1; got {batch_size}.")
        if mapping is None:
            mapping = self.volume_mapping(volume)
        chosen = range(volume.shape[0]) if indices is None else sorted(set(indices))
        if any(not 0 <= index < volume.shape[0] for index in chosen):
            raise InputImageError(
                f"slice indices must lie in [0, {volume.shape[0]}); got {list(chosen)}."
            )
        self.cache.capacity = max(self.cache.capacity, len(chosen))
        missing = []
        for index in chosen:
            key, disk_key = self._keys(volume[index], mapping)
            if self._cached(key, disk_key) is None:
                missing.append((index, key, disk_key))
        for start in range(0, len(missing), batch_size):
            batch = missing[start : start + batch_size]
            rgb = np.stack([mapping(volume[index]) for index, _, _ in batch])
            embeddings = self.embed_rgb_batch(rgb)
            for number, (_, key, disk_key) in enumerate(batch):
                one = tree_map(lambda tensor, n=number: tensor[n : n + 1].clone(), embeddings)
                self._store(key, disk_key, one)
            if progress is not None:
                progress(start + len(batch), len(missing))
        return len(missing)

    def volume_mapping(self, volume: np.ndarray, modality: str | None = None) -> IntensityMapping:
        """The one intensity mapping of every slice of a (D, H, W) volume under this
        predictor's intensity settings: what ``embed_volume`` and ``propagate`` use unless
        given another."""
        return self.intensity_settings.volume_mapping(volume, modality)

    def _keys(self, image: np.ndarray, settings) -> tuple[tuple, str | None]:
        """(memory cache key, disk cache key or None) of an image and its settings."""
        extra = (() if self.precision == "fp32" else (self.precision,)) + self.engine.cache_tag
        content = content_key(
            image, settings, self.model.config.preprocessing, IMAGE_PATH_VERSION, *extra
        )
        key = (model_state_key(self.model), content)
        disk_key = None if self.disk_cache is None else self.disk_cache.key(self.model, content)
        return key, disk_key

    def _cached(self, key: tuple, disk_key: str | None) -> Embeddings | None:
        """The embedding from memory, else from disk (then also kept in memory), else None."""
        embedding = self.cache.get(key)
        # A disk key exists only with a disk cache.
        if embedding is None and disk_key is not None and self.disk_cache is not None:
            embedding = self.disk_cache.get(disk_key, self.embedding_shape)
            if embedding is not None:
                embedding = to_device(embedding, self.device)
                self.cache.put(key, embedding)
        return embedding

    def _store(self, key: tuple, disk_key: str | None, embedding: Embeddings) -> None:
        if disk_key is not None and self.disk_cache is not None:
            self.disk_cache.put(disk_key, embedding)
        self.cache.put(key, embedding)

    def set_embedding(self, embedding: ImageEmbedding) -> None:
        """Use an embedding computed earlier (e.g. from a cache on disk)."""
        self._current = embedding

    def embed_rgb(self, rgb: np.ndarray) -> Embeddings:
        """(H, W, 3) float image in [0, 255] -> the model's embeddings of it (batch 1)."""
        return self.embed_rgb_batch(np.asarray(rgb)[None])

    @torch.inference_mode()
    def embed_rgb_batch(self, rgb: np.ndarray) -> Embeddings:
        """(B, H, W, 3) float images in [0, 255] -> the model's float32 embeddings (batch B),
        computed in the predictor's precision."""
        tensor = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))
        # The reference resizes run on the CPU (Pillow, scikit-image); the model on its device.
        model_input = self.transform.image(tensor.permute(0, 3, 1, 2)).to(self.device)
        embeddings = self.encoder(model_input)
        return tree_map(lambda tensor: tensor.float(), embeddings)

    def predict(
        self,
        points=None,
        labels=None,
        boxes=None,
        mask_input=None,
        multimask: bool = False,
        return_logits: bool = False,
    ) -> Prediction[np.ndarray]:
        """Segment B objects at once.

        Args:
            points: (N, 2) or (B, N, 2) pixel coordinates (x, y) of the original image.
            labels: (N,) or (B, N): 1 foreground, 0 background, −1 padding.
            boxes: (4,) or (B, 4) boxes x0, y0, x1, y1 (end exclusive) in pixels.
            mask_input: (s, s), (1, s, s) or (B, 1, s, s) low-resolution logits from an
                earlier ``Prediction.low_res_logits`` (s = 256 for SAM).
            multimask: three masks per object (best for a single ambiguous point).
            return_logits: also return the full-resolution logits.

        Returns:
            a :class:`Prediction` of numpy arrays.
        """
        prompts = Prompts.from_user(points, labels, boxes, mask_input)
        return self.decode(prompts, multimask).numpy(logits=return_logits)

    @torch.inference_mode()
    def decode(self, prompts: Prompts, multimask: bool = False) -> Prediction[torch.Tensor]:
        """Decode prompts in original-image pixels of the current image.

        Objects are decoded in chunks (:meth:`decode_chunks`), so the working memory beyond
        the returned arrays does not grow with the number of objects.

        Returns:
            a :class:`Prediction` of tensors on the predictor's device: masks (B, M, H, W),
            scores (B, M; NaN where the model predicts none), low-resolution logits
            (B, M, s, s) and full-resolution logits (B, M, H, W).

        Raises:
            PromptError: a prompt lies outside the image, or a mask prompt has another size.
        """
        chunks = self.decode_chunks(prompts, multimask)
        first = next(chunks)
        if first.masks.shape[0] == prompts.num_objects:
            return first
        parts = [first, *chunks]
        return Prediction(
            *(torch.cat([getattr(part, name) for part in parts]) for name in PREDICTION_FIELDS)
        )

    def decode_chunks(
        self, prompts: Prompts, multimask: bool = False
    ) -> Iterator[Prediction[torch.Tensor]]:
        """:meth:`decode` a chunk of objects at a time, in order: at most ``decode_batch``
        objects, on large images as many as keep one chunk's full-resolution logits
        within :data:`FULL_RESOLUTION_BUDGET` bytes, and on a CPU as many as keep the
        decoder's features within :data:`CPU_DECODER_WORKING_SET` (at least one object)."""
        current = self.image_embedding
        size = current.original_size
        prompts.check_fits(size, self.low_res_size)
        masks_per_object = self.model.config.num_multimask_outputs if multimask else 1
        object_bytes = masks_per_object * size[0] * size[1] * 4
        step = max(
            1,
            min(
                self.decode_batch,
                FULL_RESOLUTION_BUDGET // object_bytes,
                self._objects_in_working_set(),
            ),
        )
        for start in range(0, prompts.num_objects, step):
            yield self._decode(current, prompts.select(slice(start, start + step)), multimask)

    def _objects_in_working_set(self) -> int:
        """How many objects one decoder pass should take for its features to stay in the
        CPU's caches (any number on other devices)."""
        if self.device.type != "cpu":
            return self.decode_batch
        feature_bytes = self.low_res_size**2 * (self.model.config.prompt_embed_dim // 8) * 4
        return CPU_DECODER_WORKING_SET // feature_bytes

    @torch.inference_mode()
    def _decode(
        self, current: ImageEmbedding, prompts: Prompts, multimask: bool
    ) -> Prediction[torch.Tensor]:
        size = current.original_size
        prompts = prompts.to(self.device)
        points = None
        if prompts.points is not None and prompts.labels is not None:  # given together
            points = (self.transform.coords(prompts.points, size), prompts.labels.long())
        boxes = None if prompts.boxes is None else self.transform.boxes(prompts.boxes, size)
        low_res, scores = self.engine.decode(
            current.embedding, points, boxes, prompts.mask_input, multimask_output=multimask
        )
        if scores is None:  # no IoU head (SAM-UNet): unknown quality, not zero
            scores = low_res.new_full(low_res.shape[:2], float("nan"))
        logits = self.transform.masks(low_res, size)
        return Prediction(logits > self.model.mask_threshold, scores, low_res, logits)


PREDICTION_FIELDS = ("masks", "scores", "low_res_logits", "logits")


def _as_image_array(image) -> np.ndarray:
    array = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image)
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        pass
    elif array.ndim != 2:
        hint = " For a volume, pass one slice, e.g. volume[12]." if array.ndim == 3 else ""
        raise InputImageError(
            f"image has shape {array.shape}; expected (H, W), (H, W, 1), (H, W, 3) or "
            f"(H, W, 4).{hint}"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise InputImageError(f"image has shape {array.shape}: it is empty.")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise InputImageError(
            f"image has dtype {array.dtype}; expected an integer or float intensity image."
        )
    return array
