"""Training speed: one optimisation step of the shipped twin's forward and backward pass.

A batch the size ``sigverify train`` uses (16 writers x 6 images = 96 canvases, random pixels) goes
through the twin in training mode, then the gradient of a loss on its embeddings is taken; the
median of ``--rounds`` steps is reported (the first, which traces the graph, is left out). Run it
twice to compare TensorFlow settings, which must be fixed before TensorFlow is imported, e.g.

    TF_ENABLE_ONEDNN_OPTS=0 python -m bench.train_step; TF_ENABLE_ONEDNN_OPTS=1 python -m bench.train_step
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import siamese  # noqa: F401  (sets TensorFlow's oneDNN default before run() imports TensorFlow)


def run(rounds: int = 6, batch: int = 96) -> dict:
    """Median seconds of a forward pass and of a forward + backward pass, and the oneDNN setting."""
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

    timings = {}
    for name, step in (("forward", forward), ("forward_backward", gradient)):
        samples = []
        for _ in range(rounds + 1):
            start = time.perf_counter()
            tf.nest.map_structure(lambda value: value.numpy(), step(images))
            samples.append(time.perf_counter() - start)
        timings[f"{name}_s"] = float(np.median(samples[1:]))
    return {"batch": batch, "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS"), **timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    print(json.dumps(run(args.rounds)))


if __name__ == "__main__":
    main()
