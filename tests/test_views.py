"""Test-time views (``siamese.views``): the zooms, the averaged embedding, the card setting, the model
version it changes, and the commands that set it or meet it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from siamese.errors import ModelError
from siamese.litert import litert_path_for
from siamese.model import SignatureModel, card_path_for, file_sha256, version_of
from siamese.preprocess import CANVAS_HEIGHT, CANVAS_WIDTH, preprocess
from siamese.views import average_views, checked_zooms, model_version, zoomed
from store.settings import Settings
from tests.conftest import signature_png, write_signature
from webapp.cli import main

ZOOMS = [0.9, 1.1]


def model_copy(model_path: Path, folder: Path, zooms=ZOOMS) -> Path:  # type: ignore[no-untyped-def]
    """The session's model with its flatbuffer, copied into ``folder`` with a card naming ``zooms``."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "viewed.keras"
    shutil.copyfile(model_path, copy)
    shutil.copyfile(litert_path_for(model_path), litert_path_for(copy))
    card_path_for(copy).write_text(json.dumps({"threshold": 0.0, "test_time_zooms": zooms}))
    return copy


def box_canvas() -> np.ndarray:
    """One canvas holding a 20 x 40 block of ink at its centre."""
    canvas = np.zeros((1, CANVAS_HEIGHT, CANVAS_WIDTH, 1), np.float32)
    top, left = CANVAS_HEIGHT // 2 - 10, CANVAS_WIDTH // 2 - 20
    canvas[0, top : top + 20, left : left + 40] = 1.0
    return canvas


def ink_box(canvas: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(canvas[..., 0] > 0.5)
    return int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())


def test_zoomed_draws_each_canvas_larger_or_smaller_about_its_centre() -> None:
    canvas = box_canvas()
    np.testing.assert_allclose(zoomed(canvas, 1.0), canvas, atol=1e-6)
    top, bottom, left, right = ink_box(canvas[0])
    for zoom in (0.5, 2.0):
        drawn = zoomed(canvas, zoom)
        assert drawn.shape == canvas.shape and drawn.dtype == np.float32
        assert drawn.sum() == pytest.approx(canvas.sum() * zoom**2, rel=0.1)
        new_top, new_bottom, new_left, new_right = ink_box(drawn[0])
        assert (new_top + new_bottom) / 2 == pytest.approx((top + bottom) / 2, abs=1)
        assert (new_left + new_right) / 2 == pytest.approx((left + right) / 2, abs=1)
        assert new_right - new_left + 1 == pytest.approx(40 * zoom, abs=2)
    corner = np.zeros_like(canvas)
    corner[0, :5, :5] = 1.0
    assert zoomed(corner, 1.5).sum() == 0.0, "ink pushed past the edge is cut"


@pytest.mark.parametrize("zoom", [0.9, 1.1, 0.5, 2.0, 0.73, 1.37])
def test_zoomed_gives_the_pixels_of_scipys_bilinear_affine_transform(zoom) -> None:
    from scipy import ndimage

    batch = np.random.default_rng(0).random((3, CANVAS_HEIGHT, CANVAS_WIDTH, 1)).astype(np.float32)
    centre = np.array([(CANVAS_HEIGHT - 1) / 2, (CANVAS_WIDTH - 1) / 2])
    offset = centre - centre / zoom
    expected = np.stack([ndimage.affine_transform(canvas[..., 0], np.full(2, 1 / zoom), offset=offset,
                                                  order=1, mode="constant", cval=0.0)[..., None]
                         for canvas in batch])
    np.testing.assert_allclose(zoomed(batch, zoom), expected, atol=1e-6)


def test_average_views_embeds_every_view_in_one_call_and_gives_the_unit_mean() -> None:
    batch = np.concatenate([box_canvas(), zoomed(box_canvas(), 0.7)])
    calls = []

    def embed(views: np.ndarray) -> np.ndarray:  # a stand-in twin: ink per fifth of the width, plus 1
        calls.append(len(views))
        return np.stack([part.sum(axis=(1, 2, 3)) for part in np.array_split(views, 5, axis=2)], axis=1) + 1

    averaged = average_views(embed, batch, ZOOMS)
    assert calls == [6]
    total = embed(batch) + embed(zoomed(batch, 0.9)) + embed(zoomed(batch, 1.1))
    np.testing.assert_allclose(averaged, total / np.linalg.norm(total, axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(averaged, axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("runtime", ["litert", "tensorflow"])
def test_a_model_whose_card_names_zooms_embeds_the_mean_of_the_views(model_path, tmp_path, runtime):
    plain = SignatureModel.load(model_path, runtime=runtime)
    viewed = SignatureModel.load(model_copy(model_path, tmp_path), runtime=runtime)
    assert viewed.zooms == (0.9, 1.1) and viewed.runtime == runtime
    batch = np.stack([preprocess(signature_png(writer, 0)) for writer in (1, 2, 3)])
    total = sum(plain.embed_preprocessed(view) for view in (batch, zoomed(batch, 0.9), zoomed(batch, 1.1)))
    expected = total / np.linalg.norm(total, axis=1, keepdims=True)
    np.testing.assert_allclose(viewed.embed_preprocessed(batch), expected, atol=1e-5)
    np.testing.assert_allclose(viewed.embed([signature_png(1, 0)]), expected[:1], atol=1e-5)
    assert viewed.embed([]).shape == (0, viewed.embedding_dim)
    assert not np.allclose(viewed.embed_preprocessed(batch), plain.embed_preprocessed(batch), atol=1e-3)


def test_the_zooms_are_part_of_the_model_version(model_path, tmp_path):
    plain = SignatureModel.load(model_path)
    copy = model_copy(model_path, tmp_path)
    viewed = SignatureModel.load(copy)
    weights = file_sha256(model_path)
    assert plain.version == version_of(model_path) == weights
    assert viewed.version == version_of(copy) == model_version(weights, ZOOMS) != weights
    assert model_version(weights, [1.1, 0.9]) != viewed.version, "another order, another average"
    viewed.zooms = ()
    assert viewed.version == weights
    viewed.zooms = ZOOMS
    saved = tmp_path / "saved.keras"
    assert viewed.save(saved) == model_version(file_sha256(saved), ZOOMS) == viewed.version


@pytest.mark.parametrize("zooms", [[1.0], [0.9, 0.9], [0.4], [2.5], ["0.9"], [True], 0.9, {"zoom": 0.9},
                                   0, "", [float("nan")]])
def test_a_card_with_unusable_zooms_is_refused_with_a_clear_error(model_path, tmp_path, zooms):
    copy = model_copy(model_path, tmp_path, zooms)
    with pytest.raises(ModelError, match="test_time_zooms"):
        SignatureModel.load(copy)
    with pytest.raises(ModelError, match="test_time_zooms"):
        version_of(copy)
    with pytest.raises(ModelError, match="test_time_zooms"):
        checked_zooms(zooms)


def test_an_unusable_card_stops_the_store_commands_with_the_reason(settings: Settings, model_path, tmp_path):
    copy = model_copy(model_path, tmp_path / "bad", [1.0])
    options = ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url,
               "--model", str(copy)]
    image = write_signature(tmp_path / "images", 1, 0)
    for args in (["index", "check"], ["enroll", "alice", str(image)]):
        result = CliRunner().invoke(main, [*options, *args])
        assert result.exit_code != 0 and "test_time_zooms" in result.output, (args, result.output)
        assert "Traceback" not in result.output
    listed = CliRunner().invoke(main, [*options[:4], "customers", "list"])
    assert listed.exit_code == 0 and listed.stdout == "", "nothing was stored"


def test_turning_views_on_asks_for_a_reindex_and_reindex_brings_the_customers_back(
        settings: Settings, model_path, tmp_path):
    copy = model_copy(model_path, tmp_path / "viewed")
    images = [write_signature(tmp_path / "images", 1, sample) for sample in range(3)]

    def run(model: Path, *args: str):  # type: ignore[no-untyped-def]
        options = ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url,
                   "--model", str(model)]
        return CliRunner().invoke(main, [*options, *args], env={"SIGVERIFY_THRESHOLD": "0",
                                                                "SIGVERIFY_ENROLL_BLOCKING_WARNINGS": ""})

    assert run(model_path, "enroll", "alice", str(images[0]), str(images[1])).exit_code == 0
    refused = run(copy, "verify", "alice", str(images[2]))
    assert refused.exit_code != 0 and "reindex" in refused.output
    reindexed = run(copy, "reindex", "--quiet")
    assert reindexed.exit_code == 0 and "re-embedded 2 references" in reindexed.stdout, reindexed.output
    verified = run(copy, "verify", "alice", str(images[2]), "--json")
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["model_version"] == version_of(copy)
