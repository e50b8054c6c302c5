"""How often the 1:N enrollment alarm catches a person enrolled twice, at several alarm levels.

For every test writer of the shipped model's card: references = genuine signatures 1-5, the "second
enrollment" = genuine signatures 6-10. Each of those is scored against the references with the
verification rule; the second enrollment is flagged when any image reaches the level. Needs
../shared/datasets.

    python -m bench.cross_match [--levels 0.8 0.9 0.95]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def run(levels: tuple[float, ...] = (0.8, 0.9, 0.95)) -> dict[str, dict[str, float]]:
    """Per dataset and level: fraction of single images and of whole second enrollments flagged."""
    from siamese.canvas_cache import canvases_to_batch, load_canvases
    from siamese.datasets import load_dataset
    from siamese.evaluation import index_records
    from siamese.model import SignatureModel

    model = SignatureModel.load()
    test_writers = set(model.card["split"]["test"])
    results = {}
    for name in ("cedar", "bhsig260-bengali", "bhsig260-hindi"):
        records = [r for r in load_dataset(DATASETS / name) if r.writer in test_writers]
        canvases, usable = load_canvases([r.path for r in records], Path("var/cache"), progress=False)
        embeddings = model.embed_preprocessed(canvases_to_batch(canvases))
        genuine, _ = index_records(records, usable)
        image_scores, enrollment_max = [], []
        for indices in genuine.values():
            references = embeddings[indices[:5]]
            matrix = model.score_matrix(references, references)
            scores = [model.aggregate(row, matrix) for row in model.score_matrix(embeddings[indices[5:10]],
                                                                                 references)]
            image_scores += scores
            enrollment_max.append(max(scores))
        images, enrollments = np.array(image_scores), np.array(enrollment_max)
        results[name] = {"writers": len(genuine)}
        for level in levels:
            results[name][f"images_flagged_at_{level}"] = float(np.mean(images >= level))
            results[name][f"enrollments_flagged_at_{level}"] = float(np.mean(enrollments >= level))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=float, nargs="+", default=[0.8, 0.9, 0.95])
    print(json.dumps(run(tuple(parser.parse_args().levels)), indent=1))
