"""The twin (image -> 256-d unit vector), the head (two vectors -> similarity) and their wrapper."""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from siamese.layers import L1Distance, L2Normalization
from siamese.preprocess import CANVAS_HEIGHT, CANVAS_WIDTH

EMBEDDING_DIM = 256


@dataclass(frozen=True)
class NetworkConfig:
    """Shape of the twin: input canvas, stem width, (filters, 3x3 convs) per residual stage.

    Plain 3x3 convolutions after an early 4x downsampling stem: on a 2-core CPU they train about
    three times faster than depthwise-separable blocks of similar accuracy (measured when chosen).
    ``stem_pool=False`` drops the stem's max pooling, so every stage works on twice the resolution
    each way (about 3.7 times the convolution cost).
    """

    height: int = CANVAS_HEIGHT
    width: int = CANVAS_WIDTH
    stem_filters: int = 24
    stem_pool: bool = True
    stages: tuple[tuple[int, int], ...] = ((32, 1), (64, 2), (128, 1), (256, 1))
    embedding_dim: int = EMBEDDING_DIM
    dropout: float = 0.1


# A much smaller twin for tests and smoke runs (`sigverify train --tiny`). At least 16 channels: with
# 8, training on 120x280 canvases corrupted the heap under TensorFlow 2.21's oneDNN kernels (glibc
# aborted inside MklConvCustomBackpropFilterOp, where it noticed; 150x220 and oneDNN off were fine;
# TensorFlow issues 117700 and 123109 report oneDNN heap corruption in 2.21 matmuls). The shipped
# twin (24 channels and up) trained without an abort, which does not prove it immune.
TINY_NETWORK = NetworkConfig(stem_filters=16, stages=((16, 1), (32, 1)))


def build_twin(config: NetworkConfig = NetworkConfig()) -> keras.Model:
    """The embedding tower: a small residual CNN ending in Dense + L2 normalisation."""
    image = keras.Input((config.height, config.width, 1), name="image")
    x = layers.Conv2D(config.stem_filters, 5, strides=2, padding="same", use_bias=False,
                      name="stem_conv")(image)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    if config.stem_pool:
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage, (filters, repeats) in enumerate(config.stages):
        shortcut = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False,
                                 name=f"s{stage}_short")(x)
        shortcut = layers.BatchNormalization(name=f"s{stage}_short_bn")(shortcut)
        for index in range(repeats):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                              name=f"s{stage}_conv{index}")(x)
            x = layers.BatchNormalization(name=f"s{stage}_bn{index}")(x)
            x = layers.ReLU(name=f"s{stage}_relu{index}")(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"s{stage}_pool")(x)
        x = layers.Add(name=f"s{stage}_add")([x, shortcut])
    pooled_avg = layers.GlobalAveragePooling2D(name="gap")(x)
    pooled_max = layers.GlobalMaxPooling2D(name="gmp")(x)
    x = layers.Concatenate(name="pool_concat")([pooled_avg, pooled_max])
    x = layers.Dropout(config.dropout, name="dropout")(x)
    x = layers.Dense(config.embedding_dim, name="embedding_dense")(x)
    embedding = L2Normalization(name="l2_normalize")(x)
    return keras.Model(image, embedding, name="twin")


def build_head(embedding_dim: int = EMBEDDING_DIM) -> keras.Model:
    """The head: sigmoid(w . |a - b| + b), a similarity in [0, 1]."""
    first = keras.Input((embedding_dim,), name="embedding_a")
    second = keras.Input((embedding_dim,), name="embedding_b")
    distance = L1Distance(name="l1_distance")([first, second])
    score = layers.Dense(1, activation="sigmoid", name="similarity")(distance)
    return keras.Model([first, second], score, name="head")


def build_siamese(twin: keras.Model, head: keras.Model) -> keras.Model:
    """The served model: two images through the shared twin, then the head. Saved as one file."""
    height, width = twin.input_shape[1:3]
    first = keras.Input((height, width, 1), name="image_a")
    second = keras.Input((height, width, 1), name="image_b")
    score = head([twin(first), twin(second)])
    return keras.Model([first, second], score, name="siamese")
