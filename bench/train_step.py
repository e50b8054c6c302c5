"""Training speed: one optimisation step of the shipped twin's forward and backward pass.

A batch the size ``sigverify train`` uses (16 writers x 6 images = 96 canvases, random pixels) goes
through the twin in training mode, then the gradient of a loss on its embeddings is taken; the
median of ``--rounds`` steps is reported (the first, which traces the graph, is left out). The
elastic warp's bilinear sampler (``siamese.augment._bilinear_sample``) is timed the same way on that
batch beside ``keras.ops.image.map_coordinates``, which computes the same numbers, and so is the whole
augmentation (``augment_batch``) and its pooling in TensorFlow's one-channel layout beside the batch
as channels (``siamese.augment._pool``, the same numbers). Run it twice to compare
TensorFlow settings, which must be fixed before TensorFlow is imported, e.g.

    TF_ENABLE_ONEDNN_OPTS=0 python -m bench.train_step; TF_ENABLE_ONEDNN_OPTS=1 python -m bench.train_step
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import siamese  # noqa: F401  (sets TensorFlow's oneDNN default before run() imports TensorFlow)


def _median_seconds(step, *args, rounds: int) -> float:
    """Median wall time of ``step(*args)`` (fetched to numpy) over ``rounds`` calls after a first one."""
    import tensorflow as tf

    samples = []
    for _ in range(rounds + 1):
        start = time.perf_counter()
        tf.nest.map_structure(lambda value: value.numpy(), step(*args))
        samples.append(time.perf_counter() - start)
    return float(np.median(samples[1:]))


def sampler_timings(rounds: int, batch: int, height: int, width: int) -> dict:
    """Seconds of the elastic warp's sampler and of Keras' ``map_coordinates``, both compiled."""
    import keras
    import tensorflow as tf

    from siamese.augment import _bilinear_sample

    rng = np.random.default_rng(1)
    images = tf.constant(rng.random((batch, height, width), dtype=np.float32))
    grid = np.mgrid[0:height, 0:width].astype(np.float32)
    rows = tf.constant(grid[0] + rng.normal(0, 2, (batch, height, width)).astype(np.float32))
    cols = tf.constant(grid[1] + rng.normal(0, 2, (batch, height, width)).astype(np.float32))
    index = tf.broadcast_to(tf.range(batch, dtype=tf.float32)[:, None, None], rows.shape)

    @tf.function
    def keras_sampler(images, rows, cols):
        return keras.ops.image.map_coordinates(images, tf.stack([index, rows, cols]), order=1,
                                               fill_mode="constant", fill_value=0.0)

    ours = _median_seconds(tf.function(_bilinear_sample), images, rows, cols, rounds=rounds)
    theirs = _median_seconds(keras_sampler, images, rows, cols, rounds=rounds)
    return {"warp_sampler_s": ours, "keras_map_coordinates_s": theirs, "warp_sampler_speedup": theirs / ours}


def pooling_timings(rounds: int, batch: int, height: int, width: int) -> dict:
    """Seconds of ``augment_batch`` (standard profile) and of its 3x3 pooling on the whole batch, run
    as one channel (TensorFlow's layout) and with the batch as the channels (``augment._pool``)."""
    import tensorflow as tf

    from siamese.augment import _pool, augment_batch

    images = tf.constant(np.random.default_rng(2).random((batch, height, width, 1), dtype=np.float32))
    one_channel = _median_seconds(tf.function(lambda x: tf.nn.max_pool2d(x, 3, 1, "SAME")), images,
                                  rounds=rounds)
    as_channels = _median_seconds(tf.function(lambda x: _pool(tf.nn.max_pool2d, x, 3)), images,
                                  rounds=rounds)
    return {"augment_s": _median_seconds(tf.function(augment_batch), images, rounds=rounds),
            "pool_one_channel_s": one_channel, "pool_batch_as_channels_s": as_channels,
            "augment_pooling_speedup": one_channel / as_channels}


def run(rounds: int = 6, batch: int = 96) -> dict:
    """Median seconds of a forward pass, of a forward + backward pass and of the warp sampler beside
    Keras' (``sampler_timings``), and the oneDNN setting."""
    import tensorflow as tf

    from siamese.network import NetworkConfig, build_twin

    twin = build_twin(NetworkConfig())
    config = NetworkConfig()
    images = np.random.default_rng(0).random((batch, config.height, config.width, 1), dtype=np.float32)

    @tf.function
    def forward(x):
        return twin(x, training=True)

    @tf.function
    def gradient(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(twin(x, training=True)))
        return tape.gradient(loss, twin.trainable_variables)

    timings = {f"{name}_s": _median_seconds(step, images, rounds=rounds)
               for name, step in (("forward", forward), ("forward_backward", gradient))}
    timings.update(sampler_timings(rounds, batch, config.height, config.width))
    timings.update(pooling_timings(rounds, batch, config.height, config.width))
    return {"batch": batch, "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS"), **timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    print(json.dumps(run(args.rounds)))


if __name__ == "__main__":
    main()
