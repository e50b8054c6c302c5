"""Two independently trained twins fused: held-out skilled EER against each one alone.

For two ``bench/lodo.sh`` runs (same recipe, different seeds), every writer of each held-out dataset
is scored (the ``sigverify evaluate`` protocol, ``--seeds`` reference draws) by each run's model alone
with its card's test-time views, and by the two fused: the mean of their decision logits (each model
its own head, rule and normalisation centre) with the views off (``fused_one_view``) and on
(``fused_views``). A fusion's ``difference`` is its EER minus the mean of the two single models' EERs
on the same trials, with a 95% interval from resampling writers. The rule it answers is
``bench/cv-results/RULE-two-twins.md``:

    python -m bench.ensemble runs/lodo-s8 runs/lodo-s8b [--embedding-level] [--datasets cedar ...]

``--embedding-level`` also scores one embedding per signature with one head, as the service would
(views off): the two unit vectors side by side (``concat512``) and that concatenation projected on its
256 principal axes and made unit length again (``pca256``). The projection and each head (the card's
head-fit settings) are fitted on the first run's training writers; each is compared, paired, with
``fused_one_view``. ``--branches A B`` scores the vectors of two more runs (e.g. 128-d twins) side
by side, made unit length, with one head fitted on A's training writers, against the two single
models of the first two runs (views on), as the two fusions are.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.compare_models import (
    NAMES,
    WriterTrials,
    embed_writer_set,
    paired_difference,
    pooled_eer,
    writer_trials,
)


def fuse(first: WriterTrials, second: WriterTrials) -> WriterTrials:
    """Per writer: the same labels, and the mean of the two models' decision logits."""
    from siamese.scoring import logit

    fused = {}
    for writer, (labels, scores) in first.items():
        other_labels, other_scores = second[writer]
        if not np.array_equal(labels, other_labels):
            raise ValueError(f"the two models were not scored on the same trials of {writer}")
        fused[writer] = (labels, (logit(scores) + logit(other_scores)) / 2)
    return fused


def against_singles(fused: WriterTrials, first: WriterTrials, second: WriterTrials,
                    rounds: int) -> dict[str, Any]:
    """EER of ``fused``, minus the mean EER of the two single models, and its 95% interval over
    resamples of the writers (seed 0)."""
    writers = sorted(fused)

    def difference(sample) -> float:
        return pooled_eer(fused, sample) - (pooled_eer(first, sample) + pooled_eer(second, sample)) / 2

    rng = np.random.default_rng(0)
    spread = [difference(rng.choice(writers, size=len(writers), replace=True)) for _ in range(rounds)]
    low, high = np.percentile(spread, [2.5, 97.5])
    return {"eer_skilled": pooled_eer(fused, writers), "difference": difference(writers),
            "interval_95": [float(low), float(high)]}


def held_out(first_path: Path, second_path: Path, writers: list[str], seeds: int, rounds: int,
             embedding_level: bool = False, branches: tuple[Path, Path] | None = None) -> dict[str, Any]:
    """The two single models (card views) and both fusions on ``writers``; with ``embedding_level``
    the two single-embedding designs, with ``branches`` two other models' vectors side by side
    against the two single models."""
    from siamese.model import SignatureModel

    models = [SignatureModel.load(path) for path in (first_path, second_path)]
    singles = [writer_trials(model, writers, seeds, embed_writer_set(model, writers)) for model in models]
    found: dict[str, Any] = {
        "writers": len(singles[0]),
        "eer_skilled_first": pooled_eer(singles[0], sorted(singles[0])),
        "eer_skilled_second": pooled_eer(singles[1], sorted(singles[1])),
        "fused_views": against_singles(fuse(*singles), *singles, rounds),
    }
    if not branches or embedding_level:  # the fusion without views (not needed to judge branches)
        plain, plain_embedded = [], []
        for model in models:
            views, model.zooms = model.zooms, ()
            plain_embedded.append(embed_writer_set(model, writers))
            plain.append(writer_trials(model, writers, seeds, plain_embedded[-1]))
            model.zooms = views
        score_fusion = fuse(*plain)
        found["fused_one_view"] = against_singles(score_fusion, *singles, rounds)
    if embedding_level:
        for name, trials in one_embedding(models, plain_embedded, writers, seeds).items():
            found[name] = paired_difference(score_fusion, trials, rounds)
    if branches:
        branch_models = [SignatureModel.load(path) for path in branches]
        branch_embedded = []
        for model in branch_models:
            model.zooms = ()
            branch_embedded.append(embed_writer_set(model, writers))
        side_by_side = one_embedding(branch_models, branch_embedded, writers, seeds, project=False)
        for name, trials in side_by_side.items():
            found[f"branches_{name}"] = against_singles(trials, *singles, rounds)
    return found


def principal_projection(vectors: np.ndarray, dimensions: int) -> Callable[[np.ndarray], np.ndarray]:
    """Rows (centred) onto the ``dimensions`` principal axes of the non-zero rows of ``vectors``, made
    unit length (zero rows, unusable images, play no part in the fit)."""
    usable = vectors[np.linalg.norm(vectors, axis=1) > 0]
    centre = usable.mean(axis=0)
    axes = np.linalg.svd(usable - centre, full_matrices=False)[2][:dimensions]

    def projected(rows: np.ndarray) -> np.ndarray:
        out = (rows - centre) @ axes.T
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)

    return projected


def one_embedding(models: list[Any], held: list[Any], writers: list[str], seeds: int,
                  project: bool = True) -> dict[str, WriterTrials]:
    """Trials of ``writers`` scored through one embedding per signature and one head: the two
    models' vectors side by side (``concatN``, N numbers) and, with ``project``, that projected on its
    256 principal axes (``pca256``; module docstring), views off; ``held`` is each model's
    ``embed_writer_set`` of ``writers`` without views."""
    import keras

    from siamese.head_fit import fit_head
    from siamese.model import SignatureModel
    from siamese.network import NetworkConfig, build_head, build_siamese, build_twin

    training = sorted(models[0].card["split"]["train"])
    trained = []
    for model in models:
        views, model.zooms = model.zooms, ()
        trained.append(embed_writer_set(model, training))
        model.zooms = views
    side_by_side = np.hstack([trained[0][0], trained[1][0]]) / np.sqrt(2.0)
    held_side_by_side = np.hstack([held[0][0], held[1][0]]) / np.sqrt(2.0)
    designs: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = [
        (f"concat{side_by_side.shape[1]}", lambda v: v.astype(np.float32))]
    if project:
        designs.append(("pca256", principal_projection(side_by_side, 256)))
    results = {}
    for name, transform in designs:
        train_vectors, held_vectors = transform(side_by_side), transform(held_side_by_side)
        dimension = train_vectors.shape[1]
        keras.utils.set_random_seed(0)  # the scorer's twin is never used: only its head is fitted
        scorer = SignatureModel(build_siamese(build_twin(NetworkConfig(embedding_dim=dimension)),
                                              build_head(dimension)), name)
        fit_head(scorer, train_vectors, trained[0][1], trained[0][2], training)
        results[name] = writer_trials(scorer, writers, seeds, (held_vectors, held[0][1], held[0][2]))
    return results


def run_models(prefixes: list[str], dataset: str) -> tuple[Path, ...]:
    """The model files of ``bench/lodo.sh`` runs ``prefixes`` that held out ``dataset``."""
    return tuple(Path(f"{prefix}-{dataset}") / "model.keras" for prefix in prefixes)


def main() -> None:
    from bench.compare_models import DATASETS
    from siamese.datasets import load_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", help="prefix of one bench/lodo.sh run (PREFIX-DATASET/model.keras)")
    parser.add_argument("second", help="prefix of the other run, same recipe, another seed")
    parser.add_argument("--seeds", type=int, default=5, help="reference draws per writer")
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--embedding-level", action="store_true",
                        help="also score concat512 and pca256 (one embedding, one head)")
    parser.add_argument("--branches", nargs=2, metavar="PREFIX",
                        help="two more runs whose vectors side by side are scored against the first two")
    parser.add_argument("--datasets", nargs="+", choices=NAMES, default=list(NAMES),
                        help="the held-out datasets to score (default all three)")
    args = parser.parse_args()
    results: dict[str, Any] = {"runs": [args.first, args.second], "branches": args.branches,
                               "reference_draws": args.seeds}
    for name in args.datasets:
        writers = sorted({record.writer for record in load_dataset(DATASETS / name)})
        first, second = run_models([args.first, args.second], name)
        results[name] = held_out(first, second, writers, args.seeds, args.rounds, args.embedding_level,
                                 run_models(args.branches, name) if args.branches else None)
        print(name, json.dumps(results[name]), flush=True)
    for fusion in ("fused_one_view", "fused_views", "branches_concat256"):
        if fusion in results[args.datasets[0]]:
            results[f"mean_difference_{fusion}"] = float(np.mean([results[name][fusion]["difference"]
                                                                  for name in args.datasets]))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
