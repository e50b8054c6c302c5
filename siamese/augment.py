"""Training-time augmentation of preprocessed canvases, as a scanner or a pen would vary them.

Runs inside the compiled training step on a whole batch: a random affine warp (rotation, scale,
shear, shift), stroke width change (dilation or erosion), ink intensity and gamma, blur, and sparse
scanner specks. Canvases keep ink high and background 0.
"""

from __future__ import annotations

import math

import tensorflow as tf


def _affine_transforms(batch: int, height: int, width: int) -> tf.Tensor:
    """Per-image 8-parameter projective transforms (output -> input) about the canvas centre."""
    angle = tf.random.uniform([batch], -6.0, 6.0) * (math.pi / 180.0)
    scale = tf.random.uniform([batch], 0.88, 1.08)
    shear = tf.random.uniform([batch], -0.15, 0.15)
    shift_x = tf.random.uniform([batch], -8.0, 8.0)
    shift_y = tf.random.uniform([batch], -6.0, 6.0)
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    a0, a1 = cos, -sin + shear * cos
    b0, b1 = sin, cos + shear * sin
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    a2 = cx - a0 * cx - a1 * cy - shift_x
    b2 = cy - b0 * cx - b1 * cy - shift_y
    zeros = tf.zeros([batch])
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def _per_image(batch: int, probability: float) -> tf.Tensor:
    """A (batch, 1, 1, 1) float mask: 1 with the given probability."""
    return tf.cast(tf.random.uniform([batch, 1, 1, 1]) < probability, tf.float32)


def augment_batch(images: tf.Tensor) -> tf.Tensor:
    """Randomly augment a float32 batch ``(n, H, W, 1)`` in [0, 1]; returns the same shape."""
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    transforms = _affine_transforms(batch, tf.cast(height, tf.float32), tf.cast(width, tf.float32))
    images = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.stack([height, width]),
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT",
    )
    dilated = tf.nn.max_pool2d(images, 3, 1, "SAME")
    eroded = -tf.nn.max_pool2d(-images, 2, 1, "SAME")
    dilate, erode = _per_image(batch, 0.2), _per_image(batch, 0.1)
    images = dilate * dilated + (1 - dilate) * images
    images = erode * (1 - dilate) * eroded + (1 - erode * (1 - dilate)) * images
    blur = _per_image(batch, 0.2)
    images = blur * tf.nn.avg_pool2d(images, 3, 1, "SAME") + (1 - blur) * images
    gamma = tf.random.uniform([batch, 1, 1, 1], 0.7, 1.4)
    level = tf.random.uniform([batch, 1, 1, 1], 0.6, 1.0)
    clipped = tf.clip_by_value(images, 0.0, 1.0)
    images = level * tf.where(clipped > 0, tf.pow(tf.maximum(clipped, 1e-6), gamma), 0.0)
    specks = tf.cast(tf.random.uniform(tf.shape(images)) < 0.0008, tf.float32)
    images = images + _per_image(batch, 0.3) * specks * tf.random.uniform(tf.shape(images), 0.3, 1.0)
    return tf.clip_by_value(images, 0.0, 1.0)
