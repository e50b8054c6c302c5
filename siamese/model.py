"""SignatureModel: the one small interface the rest of sigverify uses to talk to the network."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from siamese.errors import ModelError
from siamese.litert import (
    DEFAULT_RUNTIME,
    RUNTIMES,
    LiteTwin,
    litert_path_for,
    load_lite_twin,
    probe_canvases,
)
from siamese.preprocess import (
    CANVAS_HEIGHT,
    CANVAS_WIDTH,
    DEFAULT_MAX_PIXELS,
    ImageSource,
    preprocess,
)
from siamese.scoring import ScoreNormalisation, aggregate_scores
from siamese.views import average_views, checked_zooms, model_version, zooms_from_card

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED_MODEL = WEIGHTS_DIR / "siamese_signature.keras"
DEFAULT_THRESHOLD = 0.5
EMBED_BATCH = 64


def card_path_for(model_path: Path) -> Path:
    """The model card (JSON) that sits beside a ``.keras`` file."""
    return model_path.with_suffix(".json")


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def version_of(model_path: Path) -> str:
    """The version the model at ``model_path`` stamps on embeddings, read without TensorFlow.

    Raises:
        ModelError: its card is unreadable or names unusable test-time zooms.
    """
    return model_version(file_sha256(model_path), zooms_from_card(read_card(model_path)))


def read_card(model_path: Path) -> dict[str, Any]:
    """The model card beside ``model_path`` ({} when there is none).

    Raises:
        ModelError: the card is unreadable or not a JSON object.
    """
    card_file = card_path_for(model_path)
    try:
        card = json.loads(card_file.read_text()) if card_file.is_file() else {}
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot read the model card {card_file}: {error}") from None
    if not isinstance(card, dict):
        raise ModelError(f"the model card {card_file} is not a JSON object")
    return card


class SignatureModel:
    """The twin and the head behind ``embed`` and ``score``.

    ``version`` is stamped on every stored embedding: the sha256 of the weights file, or with test-time
    views (``siamese.views``) a sha256 of it and the zooms; ``threshold`` is the calibrated decision
    threshold from the model card.
    """

    def __init__(self, siamese: Any, weights_sha256: str, card: dict[str, Any] | None = None) -> None:
        import tensorflow as tf

        self.keras_model = siamese
        self.twin = siamese.get_layer("twin")
        canvas = tuple(self.twin.input_shape[1:3])
        if canvas != (CANVAS_HEIGHT, CANVAS_WIDTH):
            raise ModelError(
                f"the model takes {canvas[0]}x{canvas[1]} canvases, but this version of sigverify "
                f"makes {CANVAS_HEIGHT}x{CANVAS_WIDTH} ones: use the version it was trained with, or "
                "retrain it")
        self.head = siamese.get_layer("head")
        kernel, bias = self.head.get_layer("similarity").get_weights()
        self._head_kernel = np.asarray(kernel, dtype=np.float32)[:, 0]
        self._head_bias = float(np.asarray(bias)[0])
        self.card: dict[str, Any] = dict(card or {})
        self.weights_sha256 = weights_sha256
        self._zooms = zooms_from_card(self.card)
        self.version = model_version(weights_sha256, self._zooms)
        self.threshold = float(self.card.get("threshold", DEFAULT_THRESHOLD))
        self.normalisation = ScoreNormalisation.from_card(self.card)
        self.embedding_dim = int(self._head_kernel.shape[0])
        twin = self.twin
        spec = tf.TensorSpec([None, CANVAS_HEIGHT, CANVAS_WIDTH, 1], tf.float32)
        self._embed_fn = tf.function(lambda batch: twin(batch, training=False),
                                     input_signature=[spec], autograph=False)
        self._lite: LiteTwin | None = None

    @classmethod
    def load(cls, path: str | Path | None = None, runtime: str = DEFAULT_RUNTIME) -> SignatureModel:
        """Load a saved model (default: the shipped weights) with ``safe_mode=True``.

        ``runtime`` "litert" embeds through the LiteRT flatbuffer beside the file when it gives the
        same vectors (``siamese.litert``), "tensorflow" always with TensorFlow.

        Raises:
            ModelError: the file is missing or is not a sigverify model, its card is unreadable or
                names unusable test-time zooms, or the runtime is unknown.
        """
        import keras

        import siamese.layers  # noqa: F401  (registers the custom layers)

        if runtime not in RUNTIMES:
            raise ModelError(f"unknown model runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
        model_path = Path(path) if path is not None else SHIPPED_MODEL
        if not model_path.is_file():
            raise ModelError(f"model file not found: {model_path}")
        try:
            siamese_model = keras.models.load_model(model_path, safe_mode=True, compile=False)
            siamese_model.get_layer("twin")
            siamese_model.get_layer("head").get_layer("similarity")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ModelError(f"cannot load model {model_path}: {error}") from None
        model = cls(siamese_model, file_sha256(model_path), read_card(model_path))
        if runtime == "litert":
            model.use_litert(litert_path_for(model_path))
        return model

    def use_litert(self, path: Path) -> bool:
        """Embed through the LiteRT flatbuffer at ``path`` from now on if it gives this twin's vectors
        (see ``siamese.litert``); returns whether it does. Otherwise TensorFlow embeds, as before."""
        self._lite = load_lite_twin(path, self._embed_fn(probe_canvases()).numpy())
        return self._lite is not None

    @property
    def zooms(self) -> tuple[float, ...]:
        """The test-time zooms every embedding averages over besides the canvas (``siamese.views``)."""
        return self._zooms

    @zooms.setter
    def zooms(self, zooms: Sequence[float]) -> None:
        self._zooms = checked_zooms(tuple(zooms))
        self.version = model_version(self.weights_sha256, self._zooms)

    @property
    def runtime(self) -> str:
        """What embeds: "litert" or "tensorflow"."""
        return "litert" if self._lite is not None else "tensorflow"

    @classmethod
    def untrained(cls, seed: int = 0) -> SignatureModel:
        """A randomly initialised model with the shipped architecture (for tests and development)."""
        import keras

        from siamese.network import build_head, build_siamese, build_twin

        keras.utils.set_random_seed(seed)
        siamese_model = build_siamese(build_twin(), build_head())
        return cls(siamese_model, f"untrained-{seed}", {"threshold": DEFAULT_THRESHOLD})

    def embed(
        self, images: Sequence[ImageSource], max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> np.ndarray:
        """Embed raw images (paths, bytes, PIL images or pixel arrays) as ``(n, 256)`` unit vectors.

        Raises:
            ImageError: one of the images is unusable (see ``siamese.preprocess``).
        """
        batch = [preprocess(image, max_pixels=max_pixels) for image in images]
        if not batch:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        return self.embed_preprocessed(np.stack(batch))

    def embed_preprocessed(self, batch: np.ndarray) -> np.ndarray:
        """Embed already preprocessed canvases ``(n, H, W, 1)``, averaged over the test-time views."""
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim == 3:
            batch = batch[..., None]
        if self._zooms and len(batch):
            return average_views(self._embed_canvases, batch, self._zooms)
        return self._embed_canvases(batch)

    def _embed_canvases(self, batch: np.ndarray) -> np.ndarray:
        """The twin's vectors of ``(n, H, W, 1)`` canvases, in batches of 64."""
        lite = self._lite
        parts = [
            lite(part) if lite is not None else self._embed_fn(part).numpy()
            for part in (batch[start : start + EMBED_BATCH] for start in range(0, len(batch), EMBED_BATCH))
        ]
        if not parts:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        return np.concatenate(parts).astype(np.float32)

    def score(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Head similarity in [0, 1] of row i of ``a`` with row i of ``b`` (rows broadcast)."""
        first = np.atleast_2d(np.asarray(a, dtype=np.float32))
        second = np.atleast_2d(np.asarray(b, dtype=np.float32))
        logits = np.abs(first - second) @ self._head_kernel + self._head_bias
        return _sigmoid(logits)

    def score_matrix(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Head similarity of every row of ``a`` with every row of ``b``: shape ``(len(a), len(b))``."""
        first = np.atleast_2d(np.asarray(a, dtype=np.float32))
        second = np.atleast_2d(np.asarray(b, dtype=np.float32))
        logits = np.abs(first[:, None, :] - second[None, :, :]) @ self._head_kernel
        return _sigmoid(logits + self._head_bias)

    def aggregate(self, query_scores: np.ndarray, reference_scores: np.ndarray | None = None) -> float:
        """The decision score of one query: ``aggregate_scores`` with this model's normalisation."""
        return aggregate_scores(query_scores, reference_scores, self.normalisation)

    def set_head_weights(self, kernel: np.ndarray, bias: float) -> None:
        """Replace the head's Dense(1) weights (kernel shape ``(D,)``) in the Keras model and in ``score``."""
        kernel = np.asarray(kernel, dtype=np.float32).reshape(self.embedding_dim)
        self.head.get_layer("similarity").set_weights([kernel[:, None], np.array([bias], np.float32)])
        self._head_kernel = kernel
        self._head_bias = float(bias)

    def save(self, path: Path) -> str:
        """Write the Keras file (twin and head) to ``path``; returns and adopts its new ``version``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.keras_model.save(path)
        self.weights_sha256 = file_sha256(path)
        self.version = model_version(self.weights_sha256, self._zooms)
        return self.version


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function, float32."""
    logits = np.asarray(logits, dtype=np.float64)
    return (0.5 * (1.0 + np.tanh(0.5 * logits))).astype(np.float32)
