"""Hide TensorFlow's known start-up INFO lines on stderr; every other line still gets through.

The first ``import tensorflow`` (2.21) writes INFO lines from C++ straight to file descriptor 2:
"oneDNN custom operations are on ...", "This TensorFlow binary is optimized to use available CPU
instructions ..." and abseil's "All log messages before absl::InitializeLog() is called are written
to STDERR". ``TF_CPP_MIN_LOG_LEVEL`` hides the CPU line only (abseil logs before it is initialised,
whatever its threshold) and abseil reads no environment variable, so the command line filters the
descriptor instead, for the length of that first import only (wherever it happens: an import hook
wraps TensorFlow's loader). Descriptor 2 is pointed at a pipe whose reader, a small child process,
passes every line on to the real stderr at once except those known ones. The child outlives a crash
of this process (an abort on a CPU without AVX, say), so the crash's message is never lost; when the
import raises, the hidden lines follow as well.

``TF_ENABLE_ONEDNN_OPTS`` is not this module's business (``siamese/__init__.py`` sets its default).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

KNOWN_STARTUP_LINES = (
    rb"^(?:WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|(?:I\d{4} |\S+ \S+: I ).*(?:port\.cc:\d+\] oneDNN custom operations are on\."
    rb"|cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized to use available CPU instructions)"
    rb"|To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.)"
)
FILTER_EXIT_SECONDS = 2.0
REPLAY_HIDDEN = b"sigverify-4f1c9e: the import failed, replay the hidden lines\n"  # an argv: no NUL

# Run as ``python -I -S -c``: the standard library only, whatever the environment says.
FILTER_PROGRAM = """
import re, sys
known, replay = re.compile(sys.argv[1].encode()), sys.argv[2].encode() + b"\\n"
hidden, out = [], sys.stdout.buffer
for line in sys.stdin.buffer:
    if line.endswith(replay):  # the marker, maybe after a last line that had no newline
        if line != replay:
            out.write(line[:-len(replay)] + b"\\n")
        out.write(b"".join(hidden))
        hidden.clear()
    elif known.match(line):
        hidden.append(line)
    else:
        out.write(line)
    out.flush()
"""


def hide_tensorflow_startup_lines() -> Callable[[], None]:
    """Filter stderr while this process first imports TensorFlow; returns a call that cancels it.

    Nothing happens when TensorFlow is already imported; nothing is imported here.
    """
    if "tensorflow" in sys.modules:
        return lambda: None
    finder = _FirstTensorFlowImport()
    sys.meta_path.insert(0, finder)
    return finder.remove


class _FirstTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, with a loader that runs the module under the stderr filter."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        self.remove()
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _FilteredLoader(spec.loader)
        return spec

    def remove(self) -> None:
        """Stop watching for the import (the first one found, or cancelled)."""
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)


class _FilteredLoader(importlib.abc.Loader):
    """Delegates to TensorFlow's own loader; the module sees that loader, not this one."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        run_with_filtered_stderr(lambda: self.loader.exec_module(module))


def run_with_filtered_stderr(action: Callable[[], object]) -> None:
    """Run ``action`` with descriptor 2 passed through the filter (unfiltered if it cannot start).

    With stderr closed at start-up (``sys.stderr`` None) descriptor 2 may be some other file by now:
    it is left alone.
    """
    if sys.stderr is None:
        action()
        return
    sys.stderr.flush()
    try:
        stderr_copy = os.dup(2)
    except OSError:  # no stderr at all: nothing to filter
        action()
        return
    try:
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", FILTER_PROGRAM, KNOWN_STARTUP_LINES.decode(),
             REPLAY_HIDDEN.decode().rstrip("\n")],
            stdin=subprocess.PIPE, stdout=stderr_copy, start_new_session=True)  # Ctrl-C spares it
    except (OSError, ValueError):  # e.g. no sys.executable in an embedded interpreter
        os.close(stderr_copy)
        action()
        return
    assert process.stdin is not None
    os.dup2(process.stdin.fileno(), 2)
    imported = False
    try:
        action()
        imported = True
    finally:
        sys.stderr.flush()
        os.dup2(stderr_copy, 2)
        os.close(stderr_copy)
        with contextlib.suppress(OSError):  # the filter is gone: nothing more to tell it
            if not imported:
                process.stdin.write(REPLAY_HIDDEN)
            process.stdin.close()
        # A child started during the import may hold the pipe open: the filter then keeps
        # forwarding its lines on its own, and this process does not wait for it.
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=FILTER_EXIT_SECONDS)
