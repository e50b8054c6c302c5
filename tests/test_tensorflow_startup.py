"""TensorFlow's start-up INFO lines stay off the command line's stderr; warnings and errors do not.

Two runs start the real TensorFlow (about 5 s each); the rest import a stand-in ``tensorflow``
package that writes the known lines, a warning and an error to descriptor 2, then returns, raises
or aborts.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from siamese.tensorflow_startup import KNOWN_STARTUP_LINES
from tests.conftest import REPO_ROOT, write_signature

NOISE = ("I0000", "cpu_feature_guard", "oneDNN custom operations", "absl::InitializeLog")

ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
ONEDNN = ("I0000 00:00:1795836597.953287    5043 port.cc:153] oneDNN custom operations are on. You may "
          "see slightly different numerical results due to floating-point round-off errors.")
CPU = ("I0000 00:00:1795836597.990012    5043 cpu_feature_guard.cc:227] This TensorFlow binary is "
       "optimized to use available CPU instructions in performance-critical operations.")
CPU_MORE = ("To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
            "TensorFlow with the appropriate compiler flags.")
WARNING = "W0000 00:00:1795836598.000001    5043 op_kernel.cc:1857] a genuine warning"
ERROR = "E0000 00:00:1795836598.000002    5043 dso_loader.cc:42] a genuine error"
OTHER_INFO = "I0000 00:00:1795836598.000003    5043 other.cc:7] an INFO line nobody listed"

FAKE_TENSORFLOW = f"""
import os, sys
for line in {[ABSL_NOTICE, ONEDNN, CPU, CPU_MORE, WARNING, ABSL_NOTICE, ONEDNN, ERROR, OTHER_INFO]!r}:
    try:
        os.write(2, line.encode() + b"\\n")
    except OSError:  # descriptor 2 closed, as the C++ logging would find it
        pass
print("python on sys.stderr", file=sys.stderr)
mode = os.environ["FAKE_TENSORFLOW"]
if mode == "raise":
    raise ImportError("libtensorflow_framework.so.2: cannot open shared object file")
if mode == "abort":
    os.abort()
if mode == "raise-after-partial-line":
    os.write(2, b"cannot load libfoo.so")
    raise ImportError("libfoo.so")
if mode == "spawn":  # a child that inherits descriptor 2 and outlives the import
    import subprocess
    subprocess.Popen(["sleep", "6"], stdout=subprocess.DEVNULL)
"""

IMPORT_HIDDEN = """
import sys, time
from siamese.tensorflow_startup import hide_tensorflow_startup_lines
cancel = hide_tensorflow_startup_lines()
if sys.argv[1] == "cancel":
    cancel()
started = time.monotonic()
import tensorflow
print(f"{time.monotonic() - started:.1f}")
print("imported", file=sys.stderr)
"""


def run_sigverify(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``sigverify ARGS`` in a fresh process, without the developer's ``SIGVERIFY_*`` variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIGVERIFY_")}
    return subprocess.run([sys.executable, "-m", "webapp.cli", *args], cwd=REPO_ROOT,
                          env={**clean, **(env or {})}, capture_output=True, text=True, timeout=300,
                          check=False)


def test_the_real_tensorflow_start_up_is_quiet_and_errors_still_show(tmp_path: Path):
    """``compare`` loads the shipped model (TensorFlow starts), then fails on the missing image."""
    image = write_signature(tmp_path, 1, 0)
    args = ("--data-dir", str(tmp_path / "var"), "compare", str(image), str(tmp_path / "missing.png"))
    quiet = run_sigverify(*args)
    assert quiet.returncode == 2, quiet.stderr
    assert quiet.stderr.splitlines() == [f"error: undecodable_image: cannot read {tmp_path / 'missing.png'}: "
                                         "No such file or directory"]
    assert not any(noise in quiet.stderr for noise in NOISE)

    full = run_sigverify(*args, env={"SIGVERIFY_TENSORFLOW_LOG": "1"})  # and the lines were there to hide
    assert full.returncode == 2 and "error: undecodable_image" in full.stderr
    assert "oneDNN custom operations are on" in full.stderr, full.stderr
    assert all(re.match(KNOWN_STARTUP_LINES.decode(), line) for line in full.stderr.splitlines()[:-1])


def test_serve_start_up_is_quiet_in_every_worker(tmp_path: Path):
    """``serve --workers 2``: each forked worker starts TensorFlow; stderr stays free of its INFO lines."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIGVERIFY_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "webapp.cli", "--data-dir", str(tmp_path / "var"), "serve", "--port", "0",
         "--workers", "2", "--threads", "1"],
        cwd=REPO_ROOT, env=clean, stderr=subprocess.PIPE, text=True)
    try:
        started = workers_done_importing(process.pid, 2, timeout=240)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert started == 2, stderr
    assert "sigverify serving on http://127.0.0.1:" in stderr
    assert not any(noise in stderr for noise in NOISE), stderr


def workers_done_importing(parent: int, count: int, timeout: float) -> int:
    """How many children of ``parent`` have imported TensorFlow, once ``count`` have or time runs out.

    A worker is done when TensorFlow is mapped and its stderr filter (a child of its own) has exited.
    """
    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline:
        done = sum(has_tensorflow(pid) and not children_of(pid) for pid in children_of(parent))
        if done >= count:
            break
        time.sleep(0.5)
    return done


def children_of(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def has_tensorflow(pid: int) -> bool:
    try:
        return "libtensorflow_framework" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.fixture
def fake_tensorflow(tmp_path: Path) -> Path:
    package = tmp_path / "fake" / "tensorflow"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_TENSORFLOW)
    return package.parent


def import_fake(fake_tensorflow: Path, mode: str, cancel: bool = False,
                close_stderr: bool = False) -> subprocess.CompletedProcess:
    """Import the stand-in ``tensorflow`` (``mode``: see FAKE_TENSORFLOW) with the filter installed."""
    env = {**os.environ, "PYTHONPATH": f"{fake_tensorflow}{os.pathsep}{REPO_ROOT}", "FAKE_TENSORFLOW": mode}
    return subprocess.run([sys.executable, "-c", IMPORT_HIDDEN, "cancel" if cancel else "keep"], env=env,
                          capture_output=True, text=True, timeout=60, check=False,
                          preexec_fn=(lambda: os.close(2)) if close_stderr else None)


def test_only_the_known_lines_are_hidden_and_the_order_is_kept(fake_tensorflow: Path):
    done = import_fake(fake_tensorflow, "return")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [WARNING, ERROR, OTHER_INFO, "python on sys.stderr", "imported"]


def test_a_failed_import_shows_every_line(fake_tensorflow: Path):
    done = import_fake(fake_tensorflow, "raise")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    for line in (ABSL_NOTICE, ONEDNN, CPU, CPU_MORE, WARNING, ERROR, "python on sys.stderr"):
        assert line in lines, done.stderr
    assert "ImportError: libtensorflow_framework.so.2" in done.stderr and "imported" not in lines


def test_a_crash_during_the_import_loses_no_warning_or_error(fake_tensorflow: Path):
    """The filter runs in its own process, so it passes the lines on after this one has died."""
    done = import_fake(fake_tensorflow, "abort")
    assert done.returncode == -signal.SIGABRT
    assert done.stderr.splitlines() == [WARNING, ERROR, OTHER_INFO, "python on sys.stderr"]


def test_cancelled_before_the_import_hides_nothing(fake_tensorflow: Path):
    done = import_fake(fake_tensorflow, "return", cancel=True)
    assert done.returncode == 0, done.stderr
    assert ONEDNN in done.stderr.splitlines() and CPU_MORE in done.stderr.splitlines()


def test_a_last_line_without_newline_does_not_swallow_the_replay_of_a_failed_import(fake_tensorflow: Path):
    done = import_fake(fake_tensorflow, "raise-after-partial-line")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert "cannot load libfoo.so" in lines and ONEDNN in lines and ABSL_NOTICE in lines, done.stderr
    assert "sigverify-4f1c9e" not in done.stderr


def test_a_child_started_during_the_import_does_not_hold_it_up(fake_tensorflow: Path):
    """The child (6 s) keeps the filter's pipe open; the import returns without waiting for it."""
    done = import_fake(fake_tensorflow, "spawn")
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.split()[0]) < 4.0, done.stdout


def test_with_stderr_closed_the_import_runs_unfiltered(fake_tensorflow: Path):
    """Descriptor 2 closed at start (``2>&-``): nothing is filtered and the import still works."""
    done = import_fake(fake_tensorflow, "return", close_stderr=True)
    assert done.returncode == 0, done.stderr
    assert "python on sys.stderr" in done.stdout  # print(file=None) falls back to stdout
