"""Figures of an evaluation: ROC and DET curves, and score histograms by query kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from siamese.metrics import det_curve, roc_auc

KIND_COLOURS = {"genuine": "tab:green", "skilled": "tab:red", "random": "tab:blue"}


def plot_evaluation(trials: Any, threshold: float, path: Path, title: str = "") -> Path:
    """Write a three-panel PNG (ROC, DET, histograms) of scored trials to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (roc_axis, det_axis, hist_axis) = plt.subplots(1, 3, figsize=(15, 4.5))
    for kind in ("skilled", "random"):
        labels, scores = trials.select(kind)
        if labels.min() == labels.max():
            continue
        far, frr, _ = det_curve(labels, scores)
        auc = roc_auc(labels, scores)
        roc_axis.plot(far, 1 - frr, color=KIND_COLOURS[kind], label=f"{kind} (AUC {auc:.3f})")
        det_axis.plot(np.clip(far, 1e-4, 1), np.clip(frr, 1e-4, 1), color=KIND_COLOURS[kind], label=kind)
    roc_axis.plot([0, 1], [0, 1], color="grey", linestyle=":")
    roc_axis.set(xlabel="false acceptance rate", ylabel="true acceptance rate", title="ROC")
    det_axis.set(xscale="log", yscale="log", xlabel="FAR", ylabel="FRR", title="DET")
    scores = np.array(trials.scores)
    kinds = np.array(trials.kinds)
    bins = np.linspace(0, 1, 41)
    for kind, colour in KIND_COLOURS.items():
        if (kinds == kind).any():
            hist_axis.hist(scores[kinds == kind], bins=bins, alpha=0.5, color=colour, label=kind,
                           density=True)
    hist_axis.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")
    hist_axis.set(xlabel="aggregated score", ylabel="density", title="scores")
    for axis in (roc_axis, det_axis, hist_axis):
        axis.legend(loc="best", fontsize=8)
        axis.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
