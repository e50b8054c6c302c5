"""Peak memory of preprocessing one big upload, each case in a fresh process.

A synthetic signature is drawn across an 8000x5000 page (40 Mpx, the default pixel limit) and saved
in the formats scanners and cameras send (8-bit gray, RGB, RGBA and 16-bit gray PNG; an RGB JPEG);
one more case is the largest image that is not reduced (3000x3000 RGBA PNG). Every file is
preprocessed by three variants, each in its own new Python process:

* ``reduced``: the current code (an image longer than ``REDUCE_ABOVE_SIDE`` is reduced first);
* ``full size``: the current code with the reduction turned off (``max_side=None``);
* ``before``: ``siamese/preprocess.py`` as it was at git revision ``--before`` (skipped when git or
  the revision is not there).

Reports the peak resident size of the process (Linux VmHWM), its growth over the process after its
imports and reading the file, the time of the call, and how far each canvas is from the full-size
one (mean absolute difference; another writer's signature is >= 0.042 away; a ``before`` canvas of
another size is refitted into this version's first, which adds its own resampling).

    python -m bench.preprocess_memory [--before 91e0179] [--json]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BEFORE_REVISION = "91e0179"  # the last commit whose preprocessing worked on the full-size image
VARIANTS = ("reduced", "full size", "before")
# case name -> (page size, Pillow mode, file suffix, save options); "I;16" is 16-bit gray
CASES = {
    "PNG, 8-bit gray, 40 Mpx": ((8000, 5000), "L", "png", {}),
    "PNG, RGB, 40 Mpx": ((8000, 5000), "RGB", "png", {}),
    "PNG, RGBA, 40 Mpx": ((8000, 5000), "RGBA", "png", {}),
    "PNG, 16-bit gray, 40 Mpx": ((8000, 5000), "I;16", "png", {}),
    "JPEG, RGB, 40 Mpx": ((8000, 5000), "RGB", "jpg", {"quality": 90}),
    "PNG, RGBA, 3000x3000 (not reduced)": ((3000, 3000), "RGBA", "png", {}),
}


def draw_page(size: tuple[int, int]):
    """A signature drawn across a white page of ``size`` (mode L; strokes about 1/800 of its width)."""
    from PIL import Image

    from tests.synthetic import synthetic_signature

    width, height = size
    page = Image.new("L", size, 255)
    drawn = (width * 4 // 5, width * 7 // 20)
    signature = synthetic_signature(1, 1, size=(400, 175)).resize(drawn, Image.Resampling.BICUBIC)
    page.paste(signature, ((width - drawn[0]) // 2, (height - drawn[1]) // 2))
    return page


def write_cases(directory: Path) -> dict[str, Path]:
    """Each case's page saved in its format; returns case name -> file."""
    from PIL import Image

    files = {}
    for number, (name, (size, mode, suffix, options)) in enumerate(CASES.items()):
        page = draw_page(size)
        if mode == "I;16":
            page = Image.fromarray(np.asarray(page).astype(np.uint16) * 257)
        elif mode != page.mode:
            page = page.convert(mode)
        path = directory / f"case{number}.{suffix}"
        page.save(path, **options)
        files[name] = path
    return files


def _peak_mb() -> float:
    """This process's peak resident size so far, in MB.

    Linux's VmHWM, not ru_maxrss: after fork and exec, ru_maxrss starts at the parent's size (here the
    parent held the drawn page). Elsewhere ru_maxrss (KiB on Linux, bytes on macOS: read as KiB).
    """
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE).group(1)) * 1024 / 1e6


def _load_module(variant: str, before_file: Path | None):
    """The preprocessing module a variant runs."""
    if variant != "before":
        return importlib.import_module("siamese.preprocess")
    spec = importlib.util.spec_from_file_location("preprocess_before", before_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def child(path: Path, variant: str, canvas_file: Path, before_file: Path | None) -> dict:
    """Preprocess one file in this (fresh) process; save the canvas and return the measurements."""
    module = _load_module(variant, before_file)
    data = path.read_bytes()
    ready = _peak_mb()
    started = time.perf_counter()
    canvas = module.preprocess(data, max_side=None) if variant == "full size" else module.preprocess(data)
    seconds = time.perf_counter() - started
    peak = _peak_mb()
    np.save(canvas_file, canvas)
    return {"peak_mb": peak, "growth_mb": peak - ready, "seconds": seconds}


def _run_child(path: Path, variant: str, canvas_file: Path, before_file: Path | None) -> dict:
    """Run ``child`` in a new interpreter and return its measurements."""
    command = [sys.executable, "-m", "bench.preprocess_memory", "--child", str(path), variant,
               str(canvas_file), str(before_file or "")]
    output = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(output.splitlines()[-1])


def _before_file(revision: str, directory: Path) -> Path | None:
    """``siamese/preprocess.py`` at ``revision``, written into ``directory`` (None without git)."""
    try:
        source = subprocess.run(["git", "show", f"{revision}:siamese/preprocess.py"], cwd=ROOT,
                                check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = directory / "preprocess_before.py"
    path.write_text(source)
    return path


def run(before: str = BEFORE_REVISION) -> dict:
    """Measure every case and variant: ``{"cases": {case: {variant: measurements}}}``, the revision
    of the ``before`` code and each variant's largest peak."""
    from siamese.preprocess import refit_canvas  # here, not at the top: the children must not load it

    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="preprocess-memory-") as temporary:
        directory = Path(temporary)
        before_file = _before_file(before, directory)
        variants = [v for v in VARIANTS if v != "before" or before_file is not None]
        for case, path in write_cases(directory).items():
            results[case] = {"file_mb": path.stat().st_size / 1e6}
            canvases = {}
            for variant in variants:
                canvas_file = directory / f"canvas-{len(canvases)}.npy"
                results[case][variant] = _run_child(path, variant, canvas_file, before_file)
                canvases[variant] = np.load(canvas_file)
            for variant in variants:
                # "before" may be of an older canvas size (150x220 until 2026-12-04): refitted first
                canvas = refit_canvas(canvases[variant])
                difference = float(np.abs(canvas - canvases["full size"]).mean())
                results[case][variant]["difference_from_full_size"] = difference
    summary = {
        f"max_peak_mb_{variant.replace(' ', '_')}": max(r[variant]["peak_mb"] for r in results.values())
        for variant in variants
    }
    return {"cases": results, "before_revision": before if before_file else None, **summary}


def table(results: dict) -> str:
    """The measurements as a Markdown table, one row per case and variant."""
    lines = ["| file | variant | peak RSS | growth | time | canvas vs full size |",
             "|---|---|---|---|---|---|"]
    for case, measured in results["cases"].items():
        for variant in VARIANTS:
            if variant in measured:
                m = measured[variant]
                lines.append(f"| {case} ({measured['file_mb']:.1f} MB) | {variant} | {m['peak_mb']:.0f} MB "
                             f"| {m['growth_mb']:.0f} MB | {m['seconds']:.2f} s "
                             f"| {m['difference_from_full_size']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    """Command line: measure and print a table (or JSON); ``--child`` is the per-case process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE_REVISION, help="git revision of the 'before' code")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--child", nargs=4, metavar=("FILE", "VARIANT", "CANVAS", "BEFORE_FILE"),
                        help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        path, variant, canvas_file, before_file = arguments.child
        measured = child(Path(path), variant, Path(canvas_file), Path(before_file) if before_file else None)
        print(json.dumps(measured))
        return
    results = run(arguments.before)
    print(json.dumps(results, indent=1) if arguments.json else table(results))


if __name__ == "__main__":
    main()
