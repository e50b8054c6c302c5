"""Coverage-guided fuzzing of ``siamese.preprocess`` with atheris (libFuzzer), Pillow's parsers instrumented.

    python -m tests.fuzz_preprocess CORPUS_DIR [libFuzzer options, e.g. -max_total_time=600 -seed=1]

An empty corpus directory is first filled with the seed files of tests.hostile_input. Any exception
other than an ImageError is a crash (libFuzzer writes the input to ``crash-*``); so is an input that
runs longer than ``-timeout`` seconds or takes more memory than ``-rss_limit_mb``. Warnings are errors,
as under pytest. tests/test_fuzz.py runs a short, seeded session of it.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from pathlib import Path

import atheris
import numpy  # noqa: F401  (imported before instrumentation: only Pillow and siamese are instrumented)
import scipy.ndimage  # noqa: F401

with atheris.instrument_imports(include=["PIL", "siamese"]):
    from PIL import (  # noqa: F401  (imported to be instrumented)
        BmpImagePlugin,
        GifImagePlugin,
        JpegImagePlugin,
        PngImagePlugin,
        TiffImagePlugin,
        WebPImagePlugin,
    )

    from siamese.errors import ImageError
    from siamese.preprocess import preprocess


def decode_one(data: bytes) -> None:
    """The fuzz target: preprocess ``data``; only ImageError may come out."""
    with contextlib.suppress(ImageError):
        preprocess(data)


def fill_corpus(folder: Path) -> None:
    """Write the seed files into ``folder`` when it holds nothing yet."""
    from tests.hostile_input import seed_files

    folder.mkdir(parents=True, exist_ok=True)
    if not any(folder.iterdir()):
        for name, data in seed_files(small=True).items():
            (folder / f"seed-{name}").write_bytes(data)


def main(argv: list[str]) -> None:
    """Fill the corpus folders named in ``argv``, then hand over to libFuzzer (which exits)."""
    for argument in argv[1:]:
        if not argument.startswith("-"):
            fill_corpus(Path(argument))
    warnings.simplefilter("error")
    atheris.Setup(argv, decode_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
