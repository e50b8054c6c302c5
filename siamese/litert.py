"""The twin served by LiteRT (XNNPACK kernels on the CPU): TensorFlow's vectors, sooner at batch 1.

``sigverify export-litert`` converts a model's twin into a LiteRT flatbuffer written beside the model
file (``MODEL.tflite`` for ``MODEL.keras``); the shipped model has one. ``SignatureModel.load`` with
the ``litert`` runtime (the default; ``SIGVERIFY_MODEL_RUNTIME=tensorflow`` turns it off) embeds
through that file when it is there and gives, on probe canvases, the vectors of the twin in the
``.keras`` file (within ``PROBE_TOLERANCE``). Otherwise (no file, a file of other weights, a file
LiteRT cannot read, no ``ai-edge-litert`` package) the model embeds with TensorFlow, as before,
and a warning says why. The model version (the ``.keras`` file's sha256) is the same either way:
``tests/test_litert.py`` holds the two runtimes' vectors to 1e-5 of each other.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from siamese.preprocess import CANVAS_HEIGHT, CANVAS_WIDTH

RUNTIMES = ("litert", "tensorflow")
DEFAULT_RUNTIME = "litert"
PROBE_TOLERANCE = 1e-4
PROBE_COUNT = 2
# What LiteRT prints on stderr when its first interpreter allocates (C++, straight to the descriptor).
KNOWN_STDERR = re.compile(rb"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.\s*$")

log = logging.getLogger(__name__)


def litert_path_for(model_path: str | Path) -> Path:
    """The LiteRT flatbuffer that sits beside a ``.keras`` file."""
    return Path(model_path).with_suffix(".tflite")


def export_twin(twin: Any, path: Path) -> int:
    """Convert the Keras ``twin`` into a LiteRT flatbuffer at ``path`` (written atomically); its size.

    The converter's own output (a SavedModel export on stdout, MLIR log lines on stderr) is hidden
    unless the conversion fails.
    """
    import tensorflow as tf

    with _filtered_stderr(lambda line: False), contextlib.redirect_stdout(io.StringIO()):
        flatbuffer = tf.lite.TFLiteConverter.from_keras_model(twin).convert()
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(flatbuffer)
    os.replace(partial, path)
    return len(flatbuffer)


def probe_canvases() -> np.ndarray:
    """Fixed canvases on which a flatbuffer must give the twin's vectors (random ink, seed 0)."""
    rng = np.random.default_rng(0)
    return rng.random((PROBE_COUNT, CANVAS_HEIGHT, CANVAS_WIDTH, 1), dtype=np.float32)


class LiteTwin:
    """A LiteRT interpreter of a twin flatbuffer: ``(n, H, W, 1)`` canvases in, ``(n, D)`` vectors out.

    One interpreter, resized to each batch's size, behind a lock: LiteRT interpreters are not
    thread-safe, and a verification embeds one image in about a millisecond.

    Raises (from the constructor):
        ImportError: the ``ai-edge-litert`` package is missing.
        ValueError: the file is not a twin flatbuffer for this canvas.
    """

    def __init__(self, path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        with _filtered_stderr(lambda line: not KNOWN_STDERR.match(line)):
            interpreter = Interpreter(model_path=str(path), num_threads=os.cpu_count() or 1)
            interpreter.allocate_tensors()
        inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"{path} has {len(inputs)} inputs and {len(outputs)} outputs, not 1 and 1")
        shape = tuple(int(v) for v in inputs[0]["shape_signature"][1:])
        if shape != (CANVAS_HEIGHT, CANVAS_WIDTH, 1):
            raise ValueError(f"{path} takes {shape} canvases, not ({CANVAS_HEIGHT}, {CANVAS_WIDTH}, 1)")
        self._interpreter = interpreter
        self._input = inputs[0]["index"]
        self._output = outputs[0]["index"]
        self._size = int(inputs[0]["shape"][0])
        self._lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        with self._lock:
            if len(batch) != self._size:
                self._interpreter.resize_tensor_input(self._input, list(batch.shape))
                self._interpreter.allocate_tensors()
                self._size = len(batch)
            self._interpreter.set_tensor(self._input, batch)
            self._interpreter.invoke()
            return np.array(self._interpreter.get_tensor(self._output), dtype=np.float32)


def load_lite_twin(path: Path, expected: np.ndarray) -> LiteTwin | None:
    """The flatbuffer at ``path`` if it gives ``expected`` (the twin's vectors of ``probe_canvases``),
    else None with a warning that says why; None without one when there is no file."""
    if not path.is_file():
        return None
    try:
        lite = LiteTwin(path)
        vectors = lite(probe_canvases())
    except ImportError:
        log.warning("the ai-edge-litert package is missing: embedding with TensorFlow instead of %s", path)
        return None
    except (ValueError, RuntimeError, OSError) as error:
        log.warning("LiteRT cannot use %s (%s): embedding with TensorFlow", path, error)
        return None
    if vectors.shape != expected.shape or not np.allclose(vectors, expected, rtol=0, atol=PROBE_TOLERANCE):
        log.warning("%s holds other weights than its model: embedding with TensorFlow "
                    "(`sigverify export-litert` writes it again)", path)
        return None
    return lite


@contextlib.contextmanager
def _filtered_stderr(keep: Callable[[bytes], bool]) -> Iterator[None]:
    """Run the block with file descriptor 2 (where C++ code writes) on a temporary file; afterwards
    pass on the lines that ``keep`` accepts, or all of them if the block raised. Another thread's
    lines written meanwhile go through the same filter, a little late."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = b"".join(line for line in captured if failed or keep(line))
            if kept:
                os.write(2, kept)
