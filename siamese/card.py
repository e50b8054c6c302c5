"""Render a model card (the JSON beside a ``.keras`` file) as the README's Markdown section."""

from __future__ import annotations

from typing import Any


def _pct(value: Any) -> str:
    """A fraction as a percentage with two decimals, or n/a."""
    return "n/a" if value is None else f"{100 * float(value):.2f}%"


def results_table(results: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown rows: one per dataset with writers, queries, EERs, AUC and FAR/FRR."""
    rows = ["| dataset | writers | queries | EER skilled | EER random | AUC (skilled) | FAR skilled | FRR |",
            "|---|---|---|---|---|---|---|---|"]
    for dataset, r in sorted(results.items()):
        auc = "n/a" if r.get("auc") is None else f"{r['auc']:.4f}"
        rows.append(f"| {dataset} | {r['writers']} | {r['queries']} | {_pct(r.get('eer_skilled'))} | "
                    f"{_pct(r.get('eer_random'))} | {auc} | {_pct(r.get('far'))} | {_pct(r.get('frr'))} |")
    return rows


def render_card_markdown(card: dict[str, Any]) -> str:
    """The model card as Markdown: data, split, hyperparameters, command, cost and results."""
    hyper = card.get("hyperparameters", {})
    split = card.get("split", {})
    lines = [
        f"Model `{card.get('name', '?')}`: {card.get('parameters', 0):,} parameters, "
        f"{card.get('twin_flops_per_image', 0) / 1e6:.0f} MFLOPs per image (twin), trained for "
        f"{card.get('training_seconds', 0) / 60:.0f} min on this 2-core CPU "
        f"({card.get('epochs_run')} epochs of "
        f"{hyper.get('steps_per_epoch')} batches; {_kept_epoch(card, hyper)}).",
        "",
        f"- Data: {', '.join(f'{k} ({v} images)' for k, v in card.get('datasets', {}).items())}.",
        f"- Writer-disjoint split per dataset (seed {_split_description(hyper)}): "
        + ", ".join(f"{name} {len(split.get(name, []))} writers" for name in ("train", "validation", "test"))
        + ".",
        f"- Command: `{card.get('command', '')}`",
        *[f"  then `{command}`" for command in card.get("post_training_commands", [])],
    ]
    head_fit = card.get("head_fit")
    if head_fit:
        norm = head_fit["score_normalisation"]
        lines.append(f"- Head refitted by {head_fit['method']} ({head_fit['writers']} writers, "
                     f"pairs {head_fit['pairs']}); score normalisation strength {norm['strength']}, "
                     f"centre {norm['centre']:.3f}.")
    rule = card.get("score_normalisation") or {}
    lines.append(f"- Decision score: the mean logit of the query against "
                 f"{_averaged_references(rule.get('top', 0))}, normalised per customer "
                 f"(strength {rule.get('strength', 0.0)}).")
    zooms = card.get("test_time_zooms")
    if zooms:
        lines.append(f"- Embeddings: the mean of the canvas and the canvas drawn "
                     f"{' and '.join(f'{zoom:g}' for zoom in zooms)} times as large ({len(zooms) + 1} twin "
                     "passes per image).")
    lines.append(f"- Threshold {card.get('threshold', 0):.4f} ({card.get('threshold_source', '?')}).")
    calibration = card.get("calibration")
    if calibration:
        lines.append(f"  Calibrated at {calibration['method']} on {calibration['writer_count']} "
                     f"{calibration['writers']} writers: FAR skilled {_pct(calibration['far_skilled'])}, "
                     f"FAR random {_pct(calibration['far_random'])}, FRR {_pct(calibration['frr'])}.")
    lines += ["", f"Test writers ({hyper.get('references', 5)} references per writer, "
              "threshold-free EER and FAR/FRR at the threshold above):", ""]
    lines += results_table(card.get("test", {}))
    lodo = card.get("leave_one_dataset_out")
    if lodo:
        lines += ["", f"Leave one dataset out (`{lodo['command']}`; {lodo['protocol']}):", ""]
        lines += lodo_table(lodo["results"])
    return "\n".join(lines) + "\n"


def lodo_table(results: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown rows: one per held-out dataset with what it was trained on, EERs, AUC and FAR/FRR."""
    rows = ["| held out | trained on | writers | queries | EER skilled | EER random | AUC (skilled) "
            "| FAR / FRR at its threshold |", "|---|---|---|---|---|---|---|---|"]
    for dataset, r in sorted(results.items()):
        auc = "n/a" if r.get("auc") is None else f"{r['auc']:.4f}"
        rows.append(f"| {dataset} | {' + '.join(r['trained_on'])} | {r['writers']} | {r['queries']} | "
                    f"{_pct(r.get('eer_skilled'))} | {_pct(r.get('eer_random'))} | {auc} | "
                    f"{_pct(r.get('far'))} / {_pct(r.get('frr'))} |")
    return rows


def _kept_epoch(card: dict[str, Any], hyper: dict[str, Any]) -> str:
    """Which epoch's weights the model holds, and how it was chosen."""
    if hyper.get("keep") == "last":
        return f"the last epoch, {card.get('kept_epoch')}, kept: no selection on validation"
    return f"best validation epoch {card.get('best_epoch')}"


def _split_description(hyperparameters: dict[str, Any]) -> Any:
    """The seed the card's writer split was drawn with (``split_seed`` when the run set one), and the
    cross-validation fold when the run was one."""
    split_seed = hyperparameters.get("split_seed")
    seed = hyperparameters.get("seed") if split_seed is None else split_seed
    if hyperparameters.get("folds"):  # cross-validation: train + validation cut into folds
        return f"{seed}; cross-validation fold {hyperparameters.get('fold')} of {hyperparameters['folds']}"
    return seed


def _averaged_references(top: int) -> str:
    """Which reference logits the decision averages, in words."""
    return "all its references" if not top else f"its {top} best-matching references"
