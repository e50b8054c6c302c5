"""Training-time augmentation of preprocessed canvases, as a scanner or a pen would vary them.

Runs inside the compiled training step on a whole batch: a random affine warp (rotation, scale,
shear, shift), stroke width change (dilation or erosion), ink intensity and gamma, blur, and sparse
scanner specks. Canvases keep ink high and background 0.

Three profiles. ``standard`` is what the shipped model was trained with. ``strong`` (opt-in, for
unseen scanners and pens) widens every range and adds a different stretch along each axis, a smooth
elastic warp of the strokes, and binarised ink (scanners and pipelines that keep no grey levels).
``finer-pens`` is ``standard`` with a finer pen's strokes (``finer_pen``) for 30% of images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf


@dataclass(frozen=True)
class AugmentProfile:
    """Ranges and probabilities of each random change (``*_p`` is a per-image probability)."""

    rotation_degrees: float = 6.0
    scale: tuple[float, float] = (0.88, 1.08)
    stretch: float = 0.0  # extra scale of the x axis against y: 1 +- stretch
    shear: float = 0.15
    shift: tuple[float, float] = (8.0, 6.0)  # x, y in pixels
    elastic_p: float = 0.0
    elastic_pixels: float = 0.0  # standard deviation of the smooth displacement
    dilate_p: float = 0.2
    erode_p: float = 0.1
    blur_p: float = 0.2
    gamma: tuple[float, float] = (0.7, 1.4)
    level: tuple[float, float] = (0.6, 1.0)
    binarize_p: float = 0.0
    specks_p: float = 0.3
    finer_pen_p: float = 0.0  # strokes half a canvas pixel narrower each side (``finer_pen``)


PROFILES = {
    "standard": AugmentProfile(),
    "finer-pens": AugmentProfile(finer_pen_p=0.3),
    "strong": AugmentProfile(
        rotation_degrees=8.0, scale=(0.85, 1.1), stretch=0.1, shear=0.2, shift=(10.0, 8.0),
        elastic_p=0.5, elastic_pixels=1.5, dilate_p=0.25, erode_p=0.15, blur_p=0.3,
        gamma=(0.5, 2.0), level=(0.45, 1.0), binarize_p=0.15, specks_p=0.4,
    ),
}


def _affine_transforms(batch: int, height: int, width: int, profile: AugmentProfile) -> tf.Tensor:
    """Per-image 8-parameter projective transforms (output -> input) about the canvas centre."""
    limit = profile.rotation_degrees
    angle = tf.random.uniform([batch], -limit, limit) * (math.pi / 180.0)
    scale = tf.random.uniform([batch], *profile.scale)
    shear = tf.random.uniform([batch], -profile.shear, profile.shear)
    shift_x = tf.random.uniform([batch], -profile.shift[0], profile.shift[0])
    shift_y = tf.random.uniform([batch], -profile.shift[1], profile.shift[1])
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    a0, a1 = cos, -sin + shear * cos
    b0, b1 = sin, cos + shear * sin
    if profile.stretch:  # drawn only when used, so the standard profile's draws stay as shipped
        stretch = tf.random.uniform([batch], 1.0 - profile.stretch, 1.0 + profile.stretch)
        a0, a1 = a0 / stretch, a1 / stretch
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    a2 = cx - a0 * cx - a1 * cy - shift_x
    b2 = cy - b0 * cx - b1 * cy - shift_y
    zeros = tf.zeros([batch])
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def _per_image(batch: int, probability: float) -> tf.Tensor:
    """A (batch, 1, 1, 1) float mask: 1 with the given probability."""
    return tf.cast(tf.random.uniform([batch, 1, 1, 1]) < probability, tf.float32)


def elastic_warp(images: tf.Tensor, pixels: float, grid: tuple[int, int] = (4, 6)) -> tf.Tensor:
    """Move every pixel by a smooth random displacement (bilinear resampling, zeros outside).

    The displacement is drawn on a coarse ``grid`` and upsampled, so strokes bend locally instead
    of jittering; ``pixels`` is its standard deviation.
    """
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    coarse = tf.random.normal(tf.stack([batch, grid[0], grid[1], 2]), stddev=pixels)
    flow = tf.image.resize(coarse, tf.stack([height, width]), method="bicubic")
    rows = tf.cast(tf.range(height), tf.float32)[None, :, None] + flow[..., 0]
    cols = tf.cast(tf.range(width), tf.float32)[None, None, :] + flow[..., 1]
    return _bilinear_sample(images[..., 0], rows, cols)[..., None]


def _bilinear_sample(images: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
    """``images`` (n, H, W) read at fractional ``rows``/``cols`` (n, H, W); 0 outside the canvas.

    The same numbers as ``keras.ops.image.map_coordinates(order=1, fill_mode="constant")`` (the test
    checks it), only faster: ``python -m bench.train_step`` times both, compiled, on a training batch
    of 96 canvases (``warp_sampler_speedup``: 7.0x on 2026-11-28, an idle 2-core AVX-512 VM).
    """
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    flat = tf.reshape(images, [shape[0], -1])
    top, left = tf.floor(rows), tf.floor(cols)
    result = tf.zeros_like(rows)
    for d_row in (0.0, 1.0):
        for d_col in (0.0, 1.0):
            r, c = top + d_row, left + d_col
            weight = (1.0 - tf.abs(rows - r)) * (1.0 - tf.abs(cols - c))
            inside = (r >= 0) & (r <= tf.cast(height - 1, tf.float32)) & (c >= 0) & (
                c <= tf.cast(width - 1, tf.float32))
            index = tf.cast(tf.clip_by_value(r, 0.0, tf.cast(height - 1, tf.float32)), tf.int32) * width + \
                tf.cast(tf.clip_by_value(c, 0.0, tf.cast(width - 1, tf.float32)), tf.int32)
            values = tf.gather(flat, tf.reshape(index, [shape[0], -1]), batch_dims=1)
            result += tf.where(inside, weight * tf.reshape(values, tf.shape(rows)), 0.0)
    return result


def finer_pen(images: tf.Tensor) -> tf.Tensor:
    """Strokes about half a canvas pixel narrower on each side: a finer pen. On a canvas at twice
    the size, a 3x3 grey erosion, then back down (a 2x2 average): a 4-pixel stroke keeps its two
    core pixels and its two edge pixels at half strength, a 2-pixel stroke half its ink."""
    shape = tf.shape(images)
    larger = tf.image.resize(images, tf.stack([2 * shape[1], 2 * shape[2]]), method="bilinear")
    eroded = -tf.nn.max_pool2d(-larger, 3, 1, "SAME")
    return tf.nn.avg_pool2d(eroded, 2, 2, "VALID")


def _pool(pool, images: tf.Tensor, size: int) -> tf.Tensor:
    """A stride-1 ``SAME`` pooling of a one-channel batch ``(n, H, W, 1)``, run with the batch as the
    channels: TensorFlow's CPU pooling of a single channel is several times slower (``python -m
    bench.train_step`` times both, ``augment_pooling_speedup``). The same numbers either way."""
    return tf.transpose(pool(tf.transpose(images, [3, 1, 2, 0]), size, 1, "SAME"), [3, 1, 2, 0])


def _where_chosen(chosen: tf.Tensor, change, images: tf.Tensor) -> tf.Tensor:
    """``change`` applied to the images whose ``chosen`` mask ``(n, 1, 1, 1)`` is 1, the rest kept:
    the same as ``chosen * change(images) + (1 - chosen) * images``, computed on the chosen only."""
    index = tf.where(chosen[:, 0, 0, 0] > 0)
    return tf.tensor_scatter_nd_update(images, index, change(tf.gather_nd(images, index)))


def pen_width(images: tf.Tensor, dilate: tf.Tensor, erode: tf.Tensor) -> tf.Tensor:
    """A wider pen (3x3 grey dilation) where ``dilate`` is 1, else a narrower one (2x2 grey
    erosion) where ``erode`` is 1; masks ``(n, 1, 1, 1)``."""
    images = _where_chosen(dilate, lambda chosen: _pool(tf.nn.max_pool2d, chosen, 3), images)
    return _where_chosen(erode * (1 - dilate), lambda chosen: -_pool(tf.nn.max_pool2d, -chosen, 2),
                         images)


def augment_batch(images: tf.Tensor, profile: AugmentProfile = PROFILES["standard"]) -> tf.Tensor:
    """Randomly augment a float32 batch ``(n, H, W, 1)`` in [0, 1]; returns the same shape."""
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    transforms = _affine_transforms(batch, tf.cast(height, tf.float32), tf.cast(width, tf.float32),
                                    profile)
    images = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.stack([height, width]),
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT",
    )
    if profile.elastic_p:
        warp = _per_image(batch, profile.elastic_p)
        images = warp * elastic_warp(images, profile.elastic_pixels) + (1 - warp) * images
    dilate, erode = _per_image(batch, profile.dilate_p), _per_image(batch, profile.erode_p)
    images = pen_width(images, dilate, erode)
    if profile.finer_pen_p:  # drawn only when used, so the standard profile's draws stay as shipped
        finer = _per_image(batch, profile.finer_pen_p)
        images = finer * finer_pen(images) + (1 - finer) * images
    blur = _per_image(batch, profile.blur_p)
    images = _where_chosen(blur, lambda chosen: _pool(tf.nn.avg_pool2d, chosen, 3), images)
    gamma = tf.random.uniform([batch, 1, 1, 1], *profile.gamma)
    level = tf.random.uniform([batch, 1, 1, 1], *profile.level)
    clipped = tf.clip_by_value(images, 0.0, 1.0)
    if profile.binarize_p:  # ink at full strength wherever it shows (then scaled by ``level``)
        binary = _per_image(batch, profile.binarize_p)
        clipped = binary * tf.cast(clipped > 0.15, tf.float32) + (1 - binary) * clipped
    images = level * tf.where(clipped > 0, tf.pow(tf.maximum(clipped, 1e-6), gamma), 0.0)
    specks = tf.cast(tf.random.uniform(tf.shape(images)) < 0.0008, tf.float32)
    images = images + _per_image(batch, profile.specks_p) * specks * tf.random.uniform(
        tf.shape(images), 0.3, 1.0)
    return tf.clip_by_value(images, 0.0, 1.0)
