"""Training augmentation: the elastic warp's resampling, and what each profile may do to a canvas."""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf

from siamese.augment import (
    PROFILES,
    _bilinear_sample,
    _pool,
    _where_chosen,
    augment_batch,
    elastic_warp,
    finer_pen,
    pen_width,
)
from siamese.preprocess import CANVAS_HEIGHT, CANVAS_WIDTH


def _canvases(count: int = 4) -> tf.Tensor:
    """Random strokes: a few bright horizontal and vertical bars on a zero background."""
    rng = np.random.default_rng(0)
    images = np.zeros((count, CANVAS_HEIGHT, CANVAS_WIDTH, 1), np.float32)
    for image in images:
        for _ in range(6):
            row, col = rng.integers(20, 130), rng.integers(20, 200)
            image[row:row + 3, col - 15:col + 15] = rng.uniform(0.3, 1.0)
            image[row - 10:row + 10, col:col + 2] = rng.uniform(0.3, 1.0)
    return tf.constant(images)


def test_bilinear_sample_matches_keras_map_coordinates_inside_and_outside_the_canvas():
    images = tf.random.uniform([3, 15, 22], seed=1)
    rows = tf.random.uniform([3, 15, 22], -2.0, 17.0, seed=2)
    cols = tf.random.uniform([3, 15, 22], -2.0, 24.0, seed=3)
    batch = tf.broadcast_to(tf.range(3, dtype=tf.float32)[:, None, None], rows.shape)
    expected = keras.ops.image.map_coordinates(images, tf.stack([batch, rows, cols]), order=1,
                                               fill_mode="constant", fill_value=0.0)
    np.testing.assert_allclose(_bilinear_sample(images, rows, cols).numpy(), np.asarray(expected), atol=1e-5)


@pytest.mark.parametrize("chosen", [(0, 0, 0, 0), (1, 1, 1, 1), (1, 0, 0, 1)])
def test_pen_width_and_blur_change_the_chosen_canvases_only_as_the_whole_batch_formula_does(chosen):
    """The augmentation pools only the images drawn for a change, with the batch as channels; the
    result must be the dense formula's: every image pooled in TensorFlow's layout, then blended."""
    images = _canvases()
    dilate = tf.constant(chosen, tf.float32)[:, None, None, None]
    erode = tf.constant((1, 1, 0, 1), tf.float32)[:, None, None, None]
    dilated = tf.nn.max_pool2d(images, 3, 1, "SAME")
    eroded = -tf.nn.max_pool2d(-images, 2, 1, "SAME")
    expected = dilate * dilated + (1 - dilate) * images
    expected = erode * (1 - dilate) * eroded + (1 - erode * (1 - dilate)) * expected
    np.testing.assert_array_equal(pen_width(images, dilate, erode).numpy(), expected.numpy())
    blurred = _where_chosen(dilate, lambda some: _pool(tf.nn.avg_pool2d, some, 3), images)
    expected = dilate * tf.nn.avg_pool2d(images, 3, 1, "SAME") + (1 - dilate) * images
    np.testing.assert_allclose(blurred.numpy(), expected.numpy(), atol=1e-6)
    changed = pen_width(images, dilate, erode).numpy()
    for index, (wider, narrower) in enumerate(zip(chosen, (1, 1, 0, 1))):
        assert np.array_equal(changed[index], images.numpy()[index]) == (not wider and not narrower)


def test_elastic_warp_without_displacement_is_the_identity_and_with_it_moves_ink():
    images = _canvases()
    np.testing.assert_allclose(elastic_warp(images, 0.0).numpy(), images.numpy(), atol=1e-6)
    tf.random.set_seed(5)
    warped = elastic_warp(images, 2.0).numpy()
    assert not np.allclose(warped, images.numpy(), atol=1e-3)
    ink_before, ink_after = images.numpy().sum(), warped.sum()
    assert abs(ink_after - ink_before) < 0.1 * ink_before  # strokes bend, they do not vanish


def test_every_profile_keeps_the_canvas_shape_and_range_and_changes_it():
    images = _canvases()
    for name, profile in PROFILES.items():
        tf.random.set_seed(7)
        out = augment_batch(images, profile).numpy()
        assert out.shape == images.shape, name
        assert out.min() >= 0.0 and out.max() <= 1.0, name
        assert not np.allclose(out, images.numpy(), atol=1e-3), name


def test_binarised_ink_has_one_level_per_image():
    profile = replace(PROFILES["strong"], binarize_p=1.0, specks_p=0.0)
    tf.random.set_seed(11)
    out = augment_batch(_canvases(), profile).numpy()
    for image in out:
        levels = np.unique(np.round(image[image > 0], 5))
        assert len(levels) == 1, levels


def test_finer_pen_narrows_strokes_by_half_a_pixel_each_side():
    images = np.zeros((2, 40, 60, 1), np.float32)
    images[0, 10:14, 5:55] = 0.8  # a 4-pixel stroke
    images[1, 20:22, 5:55] = 1.0  # a 2-pixel stroke
    out = finer_pen(tf.constant(images)).numpy()
    np.testing.assert_allclose(out[0, 9:15, 30, 0], [0, 0.4, 0.8, 0.8, 0.4, 0], atol=1e-6)
    np.testing.assert_allclose(out[1, 19:23, 30, 0], [0, 0.5, 0.5, 0], atol=1e-6)
    assert (out[0, :9] == 0).all() and (out[0, 15:] == 0).all()  # nothing spreads past the stroke
    assert out[1].sum() == pytest.approx(0.5 * images[1].sum(), rel=0.05)


def test_finer_pen_profile_thins_some_images_and_standard_none():
    images = _canvases(64)
    profile = replace(PROFILES["standard"], rotation_degrees=0.0, scale=(1.0, 1.0), shear=0.0,
                      shift=(0.0, 0.0), dilate_p=0.0, erode_p=0.0, blur_p=0.0, gamma=(1.0, 1.0),
                      level=(1.0, 1.0), specks_p=0.0)
    tf.random.set_seed(5)
    unchanged = augment_batch(images, profile).numpy()
    np.testing.assert_allclose(unchanged, images.numpy(), atol=1e-5)
    tf.random.set_seed(5)
    thinned = augment_batch(images, replace(profile, finer_pen_p=0.5)).numpy()
    changed = np.abs(thinned - images.numpy()).reshape(64, -1).max(axis=1) > 0.05
    assert 16 <= changed.sum() <= 48
    assert PROFILES["finer-pens"].finer_pen_p > 0 and PROFILES["standard"].finer_pen_p == 0
