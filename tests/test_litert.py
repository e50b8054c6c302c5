"""The LiteRT runtime: the flatbuffer beside a model gives TensorFlow's vectors, or is not used."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from siamese.errors import ModelError
from siamese.litert import KNOWN_STDERR, _filtered_stderr, litert_path_for
from siamese.model import SHIPPED_MODEL, SignatureModel
from store.settings import Settings
from tests.synthetic import png_bytes, synthetic_signature
from verify.runtime import load_signature_model
from webapp.cli import main

IMAGES = [png_bytes(synthetic_signature(writer, sample)) for writer in range(4) for sample in range(2)]


@pytest.fixture()
def other_model(tmp_path) -> Path:
    """Another untrained model (seed 1) saved without a flatbuffer."""
    path = tmp_path / "other.keras"
    SignatureModel.untrained(1).keras_model.save(path)
    return path


def test_the_default_runtime_gives_tensorflows_vectors_at_every_batch_size(model_path):
    lite = SignatureModel.load(model_path)
    tensorflow = SignatureModel.load(model_path, runtime="tensorflow")
    assert (lite.runtime, tensorflow.runtime) == ("litert", "tensorflow")
    assert lite.version == tensorflow.version
    canvases = np.random.default_rng(5).random((70, 120, 280, 1), dtype=np.float32)
    for size in (1, 3, 70, 2, 1):  # the interpreter is resized up and down; 70 is two batches of 64 and 6
        np.testing.assert_allclose(lite.embed_preprocessed(canvases[:size]),
                                   tensorflow.embed_preprocessed(canvases[:size]), rtol=0, atol=1e-5)
    np.testing.assert_allclose(lite.embed(IMAGES), tensorflow.embed(IMAGES), rtol=0, atol=1e-5)


def test_the_shipped_flatbuffer_matches_the_shipped_model():
    """Retraining the shipped weights without `sigverify export-litert` fails here."""
    assert litert_path_for(SHIPPED_MODEL).is_file()
    assert SignatureModel.load().runtime == "litert"


def test_export_writes_a_flatbuffer_that_the_model_then_uses(other_model):
    result = CliRunner().invoke(main, ["export-litert", "--model", str(other_model)])
    assert result.exit_code == 0, result.output
    assert litert_path_for(other_model).is_file() and "gives the model's vectors" in result.output
    assert SignatureModel.load(other_model).runtime == "litert"


def test_a_flatbuffer_of_other_weights_is_not_used(model_path, other_model, caplog):
    shutil.copy(litert_path_for(model_path), litert_path_for(other_model))
    with caplog.at_level(logging.WARNING, logger="siamese.litert"):
        model = SignatureModel.load(other_model)
    assert model.runtime == "tensorflow"
    assert "holds other weights than its model" in caplog.text and "export-litert" in caplog.text


def test_an_unreadable_flatbuffer_is_not_used(other_model, caplog):
    litert_path_for(other_model).write_bytes(b"not a flatbuffer" * 64)
    with caplog.at_level(logging.WARNING, logger="siamese.litert"):
        model = SignatureModel.load(other_model)
    assert model.runtime == "tensorflow" and "LiteRT cannot use" in caplog.text
    assert model.embed(IMAGES[:2]).shape == (2, 256)


def test_without_the_litert_package_tensorflow_embeds_and_export_writes_nothing(other_model, monkeypatch,
                                                                                 caplog):
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import fails
    result = CliRunner().invoke(main, ["export-litert", "--model", str(other_model)])
    assert result.exit_code == 1 and "nothing written" in result.output
    assert not litert_path_for(other_model).exists()
    assert "ai-edge-litert package is missing" in caplog.text


def test_the_tensorflow_runtime_ignores_the_flatbuffer_and_unknown_runtimes_are_refused(model_path):
    assert SignatureModel.load(model_path, runtime="tensorflow").runtime == "tensorflow"
    with pytest.raises(ModelError, match="unknown model runtime 'onnx'"):
        SignatureModel.load(model_path, runtime="onnx")
    with pytest.raises(ModelError, match="unknown model runtime"):
        load_signature_model(Settings.from_env({"SIGVERIFY_MODEL_RUNTIME": "onnx"}, model_path=model_path))
    result = CliRunner().invoke(main, ["--model-runtime", "onnx", "model-card"])
    assert result.exit_code == 2 and "'onnx' is not one of" in result.output


def test_the_setting_chooses_the_runtime_of_the_service(model_path):
    settings = Settings.from_env({"SIGVERIFY_MODEL_RUNTIME": "tensorflow"}, model_path=model_path)
    assert load_signature_model(settings).runtime == "tensorflow"
    assert load_signature_model(Settings(model_path=model_path)).runtime == "litert"


def test_loading_hides_litert_start_up_line_but_not_others(model_path, capfd):
    SignatureModel.load(model_path)
    assert "XNNPACK" not in capfd.readouterr().err
    with _filtered_stderr(lambda line: not KNOWN_STDERR.match(line)):
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"E0000 something went wrong\n")
    assert capfd.readouterr().err == "E0000 something went wrong\n"
    with pytest.raises(RuntimeError), _filtered_stderr(lambda line: False):
        os.write(2, b"converter: why it failed\n")
        raise RuntimeError("conversion failed")
    assert capfd.readouterr().err == "converter: why it failed\n"  # kept when the block fails


def test_threads_embedding_at_once_each_get_their_own_vectors(model_path):
    lite = SignatureModel.load(model_path)
    canvases = np.random.default_rng(6).random((8, 120, 280, 1), dtype=np.float32)
    expected = SignatureModel.load(model_path, runtime="tensorflow").embed_preprocessed(canvases)
    errors: list[str] = []

    def worker(size: int) -> None:
        for _ in range(20):
            if not np.allclose(lite.embed_preprocessed(canvases[:size]), expected[:size], atol=1e-5):
                errors.append(f"batch of {size}")

    threads = [threading.Thread(target=worker, args=(size,)) for size in (1, 2, 5, 8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


@pytest.mark.parametrize("runtime", ["litert", "tensorflow"])
def test_healthz_says_which_runtime_embeds(model_path, tmp_path, runtime):
    from webapp import create_app

    settings = Settings.from_env({"SIGVERIFY_MODEL_RUNTIME": runtime}, data_dir=tmp_path / "web",
                                 model_path=model_path, admin_password="a-long-test-password")
    app = create_app(settings)
    try:
        health = app.test_client().get("/healthz").get_json()
    finally:
        app.extensions["sigverify"].close()
    assert health["model_runtime"] == runtime and health["status"] == "ok"
