"""``make bench``: run every benchmark, write bench/results.json and bench/results.md.

Each benchmark is a module with ``run() -> dict``; absolute times are labelled with the machine.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("embedding_bench", "store_bench", "http_bench", "load_bench", "preprocess_memory")


def markdown(results: dict) -> str:
    """A Markdown table of the headline numbers."""
    lines = ["| benchmark | measure | value |", "|---|---|---|"]
    embedding = results.get("embedding_bench", {})
    if "sigverify" in embedding:
        ours, signet = embedding["sigverify"], embedding["signet"]
        lines += [
            f"| embedding, PNG bytes to vector | batch 1 p50 / p99 | {ours['p50_ms']:.1f} / "
            f"{ours['p99_ms']:.1f} ms |",
            f"| embedding | batch 64 throughput | {ours['batch64_images_per_s']:.0f} images/s |",
        ]
        if "sigverify_tensorflow" in embedding:  # results written before LiteRT served the twin lack it
            tensorflow = embedding["sigverify_tensorflow"]
            lines.append(
                f"| the same model with the TensorFlow runtime (above: {ours.get('runtime', '?')}) | "
                f"batch 1 p50 / batch 64 throughput | {tensorflow['p50_ms']:.1f} ms / "
                f"{tensorflow['batch64_images_per_s']:.0f} images/s (above "
                f"{embedding['litert_over_tensorflow_batch1_p50']:.1f}x / "
                f"{embedding['litert_over_tensorflow_batch64']:.1f}x faster) |")
        if "sigverify_views" in embedding:  # results written before test-time views lack it
            views, one_view = embedding["sigverify_views"], embedding["sigverify_one_view"]
            zooms = " and ".join(f"{zoom:g}" for zoom in views["zooms"])
            lines.append(
                f"| the model with test-time views (zooms {zooms}) / with the canvas alone | "
                f"batch 1 p50 | {views['p50_ms']:.1f} / {one_view['p50_ms']:.1f} ms "
                f"({embedding['views_over_one_view_batch1_p50']:.2f}x) |")
        lines += [
            f"| SigNet (Dey et al. 2017), same process | batch 1 p50 / p99 | {signet['p50_ms']:.1f} / "
            f"{signet['p99_ms']:.1f} ms |",
            f"| SigNet | batch 64 throughput | {signet['batch64_images_per_s']:.0f} images/s |",
            f"| speed-up over SigNet | batch 1 p50 / batch 64 | {embedding['speedup_batch1_p50']:.1f}x / "
            f"{embedding['speedup_batch64']:.1f}x |",
        ]
        if "preprocess" in embedding:  # results written before it was measured lack it
            alone = embedding["preprocess"]
            lines.append(f"| decode and preprocessing alone (in both) | batch 1 p50 / p99 | "
                         f"{alone['p50_ms']:.1f} / {alone['p99_ms']:.1f} ms |")
    for name, result in results.items():
        if name in ("embedding_bench", "machine") or not isinstance(result, dict):
            continue
        for key, value in result.items():
            if isinstance(value, (int, float)):
                lines.append(f"| {name} | {key} | {value:.4g} |")
    machine = embedding.get("machine", {})
    lines.append("")
    lines.append(f"Machine: {machine.get('cores', '?')} cores, {machine.get('cpu', '?')}.")
    return "\n".join(lines) + "\n"


RESULTS_FILE = HERE / "results.json"


def read_results() -> dict:
    """The results of earlier runs (empty when there are none)."""
    return json.loads(RESULTS_FILE.read_text()) if RESULTS_FILE.is_file() else {}


def write_results(results: dict) -> None:
    """Write bench/results.json and the table of bench/results.md."""
    RESULTS_FILE.write_text(json.dumps(results, indent=1) + "\n")
    (HERE / "results.md").write_text(markdown(results))


def record(name: str, values: dict) -> None:
    """Merge ``values`` into benchmark ``name``'s results, keeping its other numbers (one part rerun)."""
    results = read_results()
    results[name] = {**results.get(name, {}), **values}
    write_results(results)


def main() -> None:
    """Run the benchmarks named on the command line (default: all) and write the results."""
    names = sys.argv[1:] or list(BENCHMARKS)
    results = read_results()
    for name in names:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as error:
            print(f"skip {name}: {error}")
            continue
        started = time.monotonic()
        print(f"running {name} ...", flush=True)
        results[name] = module.run()
        results[name]["seconds"] = round(time.monotonic() - started, 1)
    write_results(results)
    print((HERE / "results.md").read_text())


if __name__ == "__main__":
    main()
