"""The two enrollment alarms on real signatures, at several levels (needs ../shared/datasets).

For every test writer of the shipped model's card, references = genuine signatures 1-5:
- 1:N alarm (``matches_other_customer``): a "second enrollment" of the same person = genuine
  signatures 6-10, each scored against the references with the verification rule; it is caught when
  any image reaches the level (``enrollments_flagged_at``; ``images_flagged_at`` per image).
- Consistency alarm (``inconsistent_reference``): a reference's median head score against the other
  four; ``genuine_references_flagged_below`` should be small, ``forgery_references_flagged_below``
  (a skilled forgery slipped in as reference 5) large.

    python -m bench.enrollment_alarms
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from bench.compare_models import CACHE, dataset_dirs


def run(levels: tuple[float, ...] = (0.8, 0.9, 0.95),
        consistency_levels: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5)) -> dict[str, dict[str, float]]:
    """Per dataset: fractions flagged by each alarm at each level."""
    from siamese.canvas_cache import canvases_to_batch, load_writer_canvases
    from siamese.evaluation import index_records
    from siamese.model import SignatureModel

    model = SignatureModel.load()
    test_writers = set(model.card["split"]["test"])
    results = {}
    for root in dataset_dirs():
        records, canvases, usable = load_writer_canvases([root], test_writers, CACHE, progress=False)
        embeddings = model.embed_preprocessed(canvases_to_batch(canvases))
        genuine, forged = index_records(records, usable)
        image_scores, enrollment_max, genuine_medians, forgery_medians = [], [], [], []
        for writer, indices in genuine.items():
            references = embeddings[indices[:5]]
            matrix = model.score_matrix(references, references)
            scores = [model.aggregate(row, matrix) for row in model.score_matrix(embeddings[indices[5:10]],
                                                                                 references)]
            image_scores += scores
            enrollment_max.append(max(scores))
            genuine_medians += [float(np.median(np.delete(matrix[i], i))) for i in range(len(references))]
            for forgery in forged.get(writer, [])[:3]:
                row = model.score_matrix(embeddings[[forgery]], references[:4])[0]
                forgery_medians.append(float(np.median(row)))
        images, enrollments = np.array(image_scores), np.array(enrollment_max)
        results[root.name] = {"writers": len(genuine)}
        for level in levels:
            results[root.name][f"images_flagged_at_{level}"] = float(np.mean(images >= level))
            results[root.name][f"enrollments_flagged_at_{level}"] = float(np.mean(enrollments >= level))
        for level in consistency_levels:
            results[root.name][f"genuine_references_flagged_below_{level}"] = float(np.mean(
                np.array(genuine_medians) < level))
            results[root.name][f"forgery_references_flagged_below_{level}"] = float(np.mean(
                np.array(forgery_medians) < level))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=float, nargs="+", default=[0.8, 0.9, 0.95])
    parser.add_argument("--consistency-levels", type=float, nargs="+", default=[0.2, 0.3, 0.4, 0.5])
    options = parser.parse_args()
    print(json.dumps(run(tuple(options.levels), tuple(options.consistency_levels)), indent=1))
