"""Tests of the custom layers, the twin and head, and SignatureModel (an untrained, seeded model)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from siamese.errors import ImageError, ModelError, NoInkError
from siamese.layers import L1Distance, L2Normalization
from siamese.model import EMBED_BATCH, SignatureModel
from siamese.network import EMBEDDING_DIM, build_head
from siamese.preprocess import CANVAS_HEIGHT, CANVAS_WIDTH, preprocess
from tests.synthetic import png_bytes, synthetic_signature

REPO_ROOT = Path(__file__).resolve().parent.parent


def _unit_rows(count: int, seed: int) -> np.ndarray:
    """``count`` random unit vectors of the embedding dimension, float32."""
    rows = np.random.default_rng(seed).normal(size=(count, EMBEDDING_DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def model() -> SignatureModel:
    """The untrained model with seed 0, built once for this module."""
    return SignatureModel.untrained(0)


@pytest.fixture(scope="module")
def saved_model_path(model: SignatureModel, tmp_path_factory) -> Path:
    """``model`` saved as a .keras file."""
    path = tmp_path_factory.mktemp("model") / "siamese.keras"
    model.keras_model.save(path)
    return path


@pytest.fixture(scope="module")
def signatures() -> list[Image.Image]:
    """Six synthetic signatures of three writers."""
    return [synthetic_signature(writer, sample) for writer in (1, 2, 3) for sample in (1, 2)]


# --- custom layers --------------------------------------------------------------------------------


def test_l2_normalization_gives_unit_rows_and_keeps_direction() -> None:
    rows = np.random.default_rng(1).normal(size=(5, 7)).astype(np.float32) * 30
    out = np.asarray(L2Normalization()(rows))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out * np.linalg.norm(rows, axis=1, keepdims=True), rows, rtol=1e-4)
    assert np.all(np.isfinite(np.asarray(L2Normalization()(np.zeros((2, 7), np.float32)))))


def test_l1_distance_is_absolute_difference_and_symmetric() -> None:
    first, second = _unit_rows(4, 2), _unit_rows(4, 3)
    forward = np.asarray(L1Distance()([first, second]))
    np.testing.assert_allclose(forward, np.abs(first - second), rtol=1e-6)
    np.testing.assert_array_equal(forward, np.asarray(L1Distance()([second, first])))


@pytest.mark.parametrize(
    "layer", [L2Normalization(epsilon=1e-7, name="norm"), L1Distance(name="dist")], ids=["l2", "l1"]
)
def test_layer_config_round_trip(layer) -> None:
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    if isinstance(layer, L2Normalization):
        assert clone.epsilon == 1e-7
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == f"sigverify>{type(layer).__name__}"
    restored = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert type(restored) is type(layer) and restored.get_config() == config


LOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras

    tiny_path, siamese_path, inputs_path = sys.argv[1:4]
    import siamese.layers  # noqa: F401  (registers the custom layers)

    inputs = np.load(inputs_path)
    tiny = keras.models.load_model(tiny_path, safe_mode=True)
    twin = keras.models.load_model(siamese_path, safe_mode=True).get_layer("twin")
    outputs = {
        "tiny": np.asarray(tiny([inputs["a"], inputs["b"]])).tolist(),
        "twin": np.asarray(twin(inputs["canvas"], training=False)).tolist(),
    }
    print(json.dumps(outputs))
    """
)


def test_models_with_custom_layers_load_in_safe_mode_without_custom_objects(
    model, saved_model_path, tmp_path
) -> None:
    """In a fresh interpreter, ``import siamese.layers`` is all a safe_mode load needs.

    Without that import Keras 3 cannot load the file (TypeError: Could not locate class
    'L2Normalization'): it imports only keras' own modules while deserialising, never ours.
    """
    first, second = keras.Input((6,)), keras.Input((6,))
    distance = L1Distance(name="dist")([L2Normalization(name="norm_a")(first), L2Normalization()(second)])
    tiny = keras.Model([first, second], keras.layers.Dense(1, name="out")(distance))
    tiny_path, inputs_path = tmp_path / "tiny.keras", tmp_path / "inputs.npz"
    tiny.save(tiny_path)
    a, b = (np.random.default_rng(seed).normal(size=(3, 6)).astype(np.float32) for seed in (4, 5))
    canvas = preprocess(synthetic_signature(4, 1))[None]
    np.savez(inputs_path, a=a, b=b, canvas=canvas)
    completed = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(tiny_path), str(saved_model_path), str(inputs_path)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    outputs = json.loads(completed.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(outputs["tiny"], np.asarray(tiny([a, b])), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs["twin"], model.embed_preprocessed(canvas), atol=1e-5)


# --- twin and head --------------------------------------------------------------------------------


def test_twin_gives_unit_vectors_of_the_embedding_size(model, signatures) -> None:
    canvases = np.stack([preprocess(image) for image in signatures])
    vectors = np.asarray(model.twin(canvases, training=False))
    assert vectors.shape == (len(signatures), EMBEDDING_DIM)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.ptp(vectors, axis=0).max() > 1e-3  # different images, different vectors


def test_head_is_symmetric_and_in_unit_interval(model) -> None:
    first, second = _unit_rows(32, 6), _unit_rows(32, 7)
    forward = np.asarray(model.head([first, second]))
    backward = np.asarray(model.head([second, first]))
    assert forward.shape == (32, 1)
    np.testing.assert_array_equal(forward, backward)
    assert np.all((forward > 0) & (forward < 1))


def test_head_of_identical_vectors_is_sigmoid_of_the_bias() -> None:
    """|a - a| = 0, so by construction the score of a pair of equal vectors is sigmoid(bias)."""
    head = build_head()
    head.get_layer("similarity").set_weights([np.ones((EMBEDDING_DIM, 1), np.float32), np.array([0.7])])
    rows = _unit_rows(3, 8)
    np.testing.assert_allclose(np.asarray(head([rows, rows]))[:, 0], 1 / (1 + np.exp(-0.7)), rtol=1e-6)


def test_score_equals_the_keras_head(model) -> None:
    first, second = _unit_rows(40, 9), _unit_rows(40, 10)
    expected = np.asarray(model.head([first, second]))[:, 0]
    scores = model.score(first, second)
    assert scores.shape == (40,) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    np.testing.assert_allclose(model.score(second, first), scores, atol=1e-7)
    assert np.all((scores >= 0) & (scores <= 1))


def test_score_broadcasts_one_row_against_many(model) -> None:
    query, references = _unit_rows(1, 11), _unit_rows(5, 12)
    broadcast = model.score(query[0], references)
    one_by_one = np.array([model.score(query, reference[None])[0] for reference in references])
    np.testing.assert_allclose(broadcast, one_by_one, atol=1e-7)


def test_score_matrix_is_consistent_with_score(model) -> None:
    first, second = _unit_rows(4, 13), _unit_rows(6, 14)
    matrix = model.score_matrix(first, second)
    assert matrix.shape == (4, 6) and matrix.dtype == np.float32
    for row in range(4):
        np.testing.assert_allclose(matrix[row], model.score(first[row], second), atol=1e-6)
    np.testing.assert_allclose(model.score_matrix(second, first), matrix.T, atol=1e-6)


# --- SignatureModel: save, load, embed ------------------------------------------------------------


def test_save_then_load_gives_identical_embeddings(model, saved_model_path, signatures) -> None:
    assert model.version == "untrained-0" and model.threshold == 0.5
    loaded = SignatureModel.load(saved_model_path)
    assert loaded.threshold == 0.5  # no model card beside the file: the default
    assert loaded.version == hashlib.sha256(saved_model_path.read_bytes()).hexdigest()
    np.testing.assert_allclose(loaded.embed(signatures), model.embed(signatures), atol=1e-6)
    rows = _unit_rows(5, 15)
    np.testing.assert_allclose(loaded.score(rows, rows[::-1]), model.score(rows, rows[::-1]), atol=1e-7)


def test_load_reads_the_threshold_from_the_model_card(saved_model_path, tmp_path) -> None:
    path = tmp_path / "carded.keras"
    path.write_bytes(saved_model_path.read_bytes())
    path.with_suffix(".json").write_text(json.dumps({"threshold": 0.73}))
    loaded = SignatureModel.load(path)
    assert loaded.threshold == 0.73 and loaded.card["threshold"] == 0.73


def _zip_without_config(path: Path) -> None:
    """Write a zip archive that is not a Keras model."""
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not a model")


def _other_keras_model(path: Path) -> None:
    """Save a valid Keras model that has no twin or head."""
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]).save(path)


@pytest.mark.parametrize(
    "make_file",
    [
        None,
        lambda path: path.write_bytes(b"garbage, not a zip archive"),
        lambda path: path.write_bytes(b""),
        _zip_without_config,
        _other_keras_model,
    ],
    ids=["missing", "garbage", "empty", "zip without config", "model without twin"],
)
def test_load_of_an_unusable_file_raises_model_error(tmp_path, make_file) -> None:
    path = tmp_path / "model.keras"
    if make_file is not None:
        make_file(path)
    with pytest.raises(ModelError) as caught:
        SignatureModel.load(path)
    assert caught.value.code == "model_error" and caught.value.http_status == 500


def test_load_of_a_model_made_for_another_canvas_size_raises_model_error(tmp_path) -> None:
    from siamese.network import NetworkConfig, build_siamese, build_twin

    other = (CANVAS_HEIGHT - 30, CANVAS_WIDTH + 60)
    tiny_wide = NetworkConfig(height=other[0], width=other[1], stem_filters=8, stages=((8, 1),))
    path = tmp_path / "wide.keras"
    build_siamese(build_twin(tiny_wide), build_head()).save(path)
    expected = (f"takes {other[0]}x{other[1]} canvases, but this version of sigverify makes "
                f"{CANVAS_HEIGHT}x{CANVAS_WIDTH} ones")
    with pytest.raises(ModelError, match=expected):
        SignatureModel.load(path)


def test_load_of_a_truncated_model_raises_model_error(saved_model_path, tmp_path) -> None:
    path = tmp_path / "truncated.keras"
    data = saved_model_path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError):
        SignatureModel.load(path)


def test_embed_of_nothing(model) -> None:
    vectors = model.embed([])
    assert vectors.shape == (0, EMBEDDING_DIM) and vectors.dtype == np.float32
    empty = np.zeros((0, CANVAS_HEIGHT, CANVAS_WIDTH, 1), np.float32)
    assert model.embed_preprocessed(empty).shape == (0, EMBEDDING_DIM)


def test_embed_accepts_every_input_kind(model, signatures, tmp_path) -> None:
    image = signatures[0]
    path = tmp_path / "signature.png"
    image.save(path)
    inputs = [path, str(path), png_bytes(image), image, np.asarray(image), np.asarray(image) / 255.0]
    vectors = model.embed(inputs)
    assert vectors.shape == (len(inputs), EMBEDDING_DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, np.repeat(vectors[:1], len(inputs), axis=0), atol=1e-6)
    np.testing.assert_allclose(model.embed_preprocessed(preprocess(image)[None])[0], vectors[0], atol=1e-6)
    np.testing.assert_allclose(model.embed_preprocessed(preprocess(image)[None, :, :, 0])[0], vectors[0],
                               atol=1e-6)  # (n, H, W) canvases get their channel axis added


def test_embed_raises_the_image_error_of_a_bad_image(model, signatures) -> None:
    with pytest.raises(NoInkError) as caught:
        model.embed([signatures[0], np.full((100, 100), 255, np.uint8)])
    assert isinstance(caught.value, ImageError)


def test_embedding_in_batches_equals_one_by_one(model) -> None:
    count = EMBED_BATCH + 6  # more than one batch, the last one partial
    images = [png_bytes(synthetic_signature(index % 10, index)) for index in range(count)]
    batched = model.embed(images)
    assert batched.shape == (count, EMBEDDING_DIM)
    one_by_one = np.concatenate([model.embed([image]) for image in images])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert np.ptp(batched, axis=0).max() > 1e-3  # the 70 vectors differ, so row order was checked
