"""Embedding speed: sigverify's twin against a SigNet (Dey et al. 2017) tower, in one process.

Both go from PNG bytes to a vector through the same preprocessing; SigNet gets random weights (only
its cost matters here). Reports p50/p99 latency at batch 1 and throughput at batch 64, and ratios;
also the decode and preprocessing alone, the part both share. ``sigverify`` is the shipped model as
the service runs it (the LiteRT runtime, ``siamese.litert``), ``sigverify_tensorflow`` the same
model embedding with TensorFlow, as SigNet does. ``sigverify_views`` and ``sigverify_one_view`` are
the shipped model (LiteRT) with test-time views (``siamese.views``: its card's zooms, else 0.9 and
1.1) and without them: one of them is ``sigverify`` itself, the other the same model with the views
switched, so their cost is measured side by side whether the card has them. ``--zooms`` measures
the model as if its card named those zooms instead (``--zooms`` alone: none).

    python -m bench.embedding_bench [--rounds 200] [--json] [--zooms Z [Z ...]]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

import siamese  # noqa: F401  (sets TensorFlow's oneDNN default before run() imports TensorFlow)


def build_signet(shape: tuple[int, int]):
    """The SigNet tower of Dey et al. (2017): 4 conv layers, FC 1024, FC 128, on ``shape`` canvases
    (the paper's are 155x220; the bench gives it sigverify's, 120x280, 1.5% fewer pixels)."""
    import keras
    from keras import layers

    image = keras.Input((*shape, 1))
    x = layers.Conv2D(96, 11, activation="relu")(image)
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D(3, strides=2)(x)
    x = layers.ZeroPadding2D(2)(x)
    x = layers.Conv2D(256, 5, activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D(3, strides=2)(x)
    x = layers.ZeroPadding2D(1)(x)
    x = layers.Conv2D(384, 3, activation="relu")(x)
    x = layers.ZeroPadding2D(1)(x)
    x = layers.Conv2D(256, 3, activation="relu")(x)
    x = layers.MaxPooling2D(3, strides=2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(1024, activation="relu")(x)
    x = layers.Dense(128)(x)
    return keras.Model(image, x, name="signet")


def signet_embedder():
    """A SigNet tower on sigverify's canvas (random weights) and its PNG bytes -> vectors function,
    through sigverify's preprocessing."""
    import tensorflow as tf

    from siamese.preprocess import CANVAS_HEIGHT, CANVAS_WIDTH, preprocess_many

    signet = build_signet((CANVAS_HEIGHT, CANVAS_WIDTH))
    spec = tf.TensorSpec([None, CANVAS_HEIGHT, CANVAS_WIDTH, 1], tf.float32)
    signet_fn = tf.function(lambda batch: signet(batch, training=False), input_signature=[spec],
                            autograph=False)

    def signet_embed(images: list[bytes]) -> np.ndarray:
        return signet_fn(preprocess_many(images)).numpy()

    return signet, signet_embed


def _percentiles(samples: list[float]) -> dict[str, float]:
    """p50 and p99 in milliseconds."""
    values = np.array(samples) * 1000
    return {"p50_ms": float(np.percentile(values, 50)), "p99_ms": float(np.percentile(values, 99))}


def measure(embed_one, embed_batch, images: list[bytes], rounds: int) -> dict[str, float]:
    """Latency at batch 1 over ``rounds`` calls and throughput at batch 64 (images per second)."""
    for image in images[:5]:
        embed_one(image)
    samples = []
    for index in range(rounds):
        start = time.perf_counter()
        embed_one(images[index % len(images)])
        samples.append(time.perf_counter() - start)
    batch = [images[i % len(images)] for i in range(64)]
    embed_batch(batch)
    start = time.perf_counter()
    repeats = 3
    for _ in range(repeats):
        embed_batch(batch)
    throughput = 64 * repeats / (time.perf_counter() - start)
    return {**_percentiles(samples), "batch64_images_per_s": throughput}


VIEW_ZOOMS = (0.9, 1.1)  # the views measured when the shipped card has none


def sample_images(count: int = 32) -> list[bytes]:
    """Synthetic signature PNGs (the benchmark must not depend on ../shared)."""
    from tests.synthetic import png_bytes, synthetic_signature

    return [png_bytes(synthetic_signature(i % 8, i, size=(560, 240))) for i in range(count)]


def run(rounds: int = 200, zooms: tuple[float, ...] | None = None) -> dict:
    """Measure both models side by side; returns the result dict. ``zooms``: the shipped model's
    test-time zooms for this run (None: its card's)."""
    import tensorflow as tf

    from siamese.model import SignatureModel
    from siamese.preprocess import preprocess

    model = SignatureModel.load()
    tensorflow_model = SignatureModel.load(runtime="tensorflow")
    if zooms is not None:
        model.zooms = tensorflow_model.zooms = zooms
    switched = SignatureModel.load()
    switched.zooms = () if model.zooms else VIEW_ZOOMS
    signet, signet_embed = signet_embedder()
    images = sample_images()
    ours = measure(lambda image: model.embed([image]), model.embed, images, rounds)
    ours_tensorflow = measure(lambda image: tensorflow_model.embed([image]), tensorflow_model.embed, images,
                              rounds)
    other = measure(lambda image: switched.embed([image]), switched.embed, images, rounds)
    with_views, without_views = (ours, other) if model.zooms else (other, ours)
    theirs = measure(lambda image: signet_embed([image]), signet_embed, images, rounds)
    preprocessing = measure(preprocess, lambda batch: [preprocess(image) for image in batch], images, rounds)
    return {
        "machine": {"cores": __import__("os").cpu_count(), "cpu": _cpu_model(),
                    "python": platform.python_version(), "tensorflow": tf.__version__},
        "sigverify": {**ours, "runtime": model.runtime},
        "sigverify_tensorflow": ours_tensorflow,
        "sigverify_views": {**with_views, "zooms": list(model.zooms or switched.zooms)},
        "sigverify_one_view": without_views,
        "signet": theirs,
        "preprocess": preprocessing,  # decode and preprocessing alone (part of both models' times)
        "speedup_batch1_p50": theirs["p50_ms"] / ours["p50_ms"],
        "speedup_batch64": ours["batch64_images_per_s"] / theirs["batch64_images_per_s"],
        "litert_over_tensorflow_batch1_p50": ours_tensorflow["p50_ms"] / ours["p50_ms"],
        "litert_over_tensorflow_batch64": (ours["batch64_images_per_s"]
                                           / ours_tensorflow["batch64_images_per_s"]),
        "views_over_one_view_batch1_p50": with_views["p50_ms"] / without_views["p50_ms"],
        "parameters": {"sigverify_twin": int(model.twin.count_params()),
                       "signet": int(signet.count_params())},
    }


def _cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform string)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--zooms", type=float, nargs="*",
                        help="the model's test-time zooms (default: its card's)")
    args = parser.parse_args()
    result = run(args.rounds, None if args.zooms is None else tuple(args.zooms))
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for name in ("sigverify", "sigverify_tensorflow", "sigverify_views", "sigverify_one_view", "signet",
                 "preprocess"):
        r = result[name]
        print(f"{name:20s} batch1 p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
              f"batch64 {r['batch64_images_per_s']:.0f} img/s")
    print(f"speed-up at batch 1 (p50): {result['speedup_batch1_p50']:.1f}x; "
          f"at batch 64: {result['speedup_batch64']:.1f}x; LiteRT over TensorFlow: "
          f"{result['litert_over_tensorflow_batch1_p50']:.1f}x (batch 1), "
          f"{result['litert_over_tensorflow_batch64']:.1f}x (batch 64)")


if __name__ == "__main__":
    main()
