"""Verification metrics over (label, score) trials; label 1 = genuine, a score >= threshold accepts.

Built on scikit-learn's ROC curve. A function asked about a class that has no trial returns None
rather than inventing a number.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def _as_arrays(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype=np.int64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"{labels.size} labels but {scores.size} scores")
    return labels, scores


def _both_classes(labels: np.ndarray) -> bool:
    return labels.size > 0 and labels.min() == 0 and labels.max() == 1


def det_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(FAR, FRR, threshold) at every distinct score, thresholds decreasing.

    The first threshold is just above the highest score (everything rejected).
    """
    labels, scores = _as_arrays(labels, scores)
    if not _both_classes(labels):
        raise ValueError("a DET curve needs genuine and forgery trials")
    far, tar, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    thresholds = thresholds.copy()
    thresholds[0] = np.nextafter(scores.max(), np.inf)  # scikit-learn puts +inf here
    return far, 1.0 - tar, thresholds


def equal_error_rate(labels, scores) -> tuple[float | None, float | None]:
    """(EER, threshold): the operating point where FAR and FRR are closest, EER their mean."""
    labels, scores = _as_arrays(labels, scores)
    if not _both_classes(labels):
        return None, None
    far, frr, thresholds = det_curve(labels, scores)
    index = int(np.argmin(np.abs(far - frr)))
    return float((far[index] + frr[index]) / 2), float(thresholds[index])


def roc_auc(labels, scores) -> float | None:
    """Area under the ROC curve (probability a genuine trial outscores a forgery)."""
    labels, scores = _as_arrays(labels, scores)
    if not _both_classes(labels):
        return None
    return float(roc_auc_score(labels, scores))


def far_frr(labels, scores, threshold: float) -> tuple[float | None, float | None]:
    """(FAR, FRR) at ``threshold``: forgeries accepted, genuine signatures rejected."""
    labels, scores = _as_arrays(labels, scores)
    accepted = scores >= threshold
    negatives, positives = labels == 0, labels == 1
    far = float(accepted[negatives].mean()) if negatives.any() else None
    frr = float((~accepted[positives]).mean()) if positives.any() else None
    return far, frr


def threshold_at_frr(labels, scores, target_frr: float) -> float:
    """The highest threshold whose FRR is at most ``target_frr`` (so FAR is as low as it can be).

    It needs genuine trials only: a bank can set it from its customers' repeat signatures, without
    forgeries.
    """
    labels, scores = _as_arrays(labels, scores)
    genuine = np.sort(scores[labels == 1])
    if genuine.size == 0:
        raise ValueError("choosing a threshold by FRR needs genuine trials")
    rejected = int(np.floor(target_frr * genuine.size + 1e-9))  # at most this many below the threshold
    if rejected >= genuine.size:
        return float(np.nextafter(genuine[-1], np.inf))
    return float(genuine[rejected])


def threshold_at_far(labels, scores, target_far: float) -> float:
    """The lowest threshold whose FAR is at most ``target_far`` (so FRR is as low as it can be)."""
    labels, scores = _as_arrays(labels, scores)
    if not (labels == 0).any():
        raise ValueError("choosing a threshold by FAR needs forgery trials")
    if not (labels == 1).any():
        return float(np.nextafter(scores.max(), np.inf))
    far, _frr, thresholds = det_curve(labels, scores)
    index = int(np.flatnonzero(far <= target_far)[-1])
    return float(thresholds[index])
