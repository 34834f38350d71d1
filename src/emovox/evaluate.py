"""Metrics and reports: WA, UA, macro-F1, per-class recall, confusion matrix, ECE, CCC.

Conventions of the SER literature: WA (weighted accuracy) is plain accuracy; UA (unweighted
accuracy, also UAR) is the mean of per-class recalls over the classes present in the reference.
Functions take integer class indices (or labels with an explicit ``labels`` order) and return
fractions in [0, 1]; :func:`classification_scores` reports percentages, as results files do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike


def _encode(
    y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[Any] | None
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of equal length ({t.shape} vs {p.shape})")
    if labels is None:
        labels = sorted(set(t.tolist()) | set(p.tolist()))
    index = {label: i for i, label in enumerate(labels)}
    try:
        ti = np.array([index[v] for v in t.tolist()], dtype=np.int64)
        pi = np.array([index[v] for v in p.tolist()], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"label {exc.args[0]!r} is not in labels") from None
    return ti, pi, list(labels)


def confusion_matrix(
    y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[Any] | None = None
) -> np.ndarray:
    """Count matrix ``[n_labels, n_labels]``: row = reference class, column = prediction."""
    t, p, names = _encode(y_true, y_pred, labels)
    cm = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def weighted_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """WA: the fraction of correct predictions."""
    t, p, _ = _encode(y_true, y_pred, None)
    return float(np.mean(t == p)) if len(t) else float("nan")


def per_class_recall(
    y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[Any] | None = None
) -> np.ndarray:
    """Recall of each label; NaN for a label with no reference sample."""
    cm = confusion_matrix(y_true, y_pred, labels)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def unweighted_accuracy(
    y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[Any] | None = None
) -> float:
    """UA (UAR): mean per-class recall over the classes present in ``y_true``."""
    recall = per_class_recall(y_true, y_pred, labels)
    present = recall[~np.isnan(recall)]
    return float(present.mean()) if present.size else float("nan")


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[Any] | None = None) -> float:
    """Macro-averaged F1 over the labels present in ``y_true`` or ``y_pred``.

    A class that is predicted but never present (or present but never predicted) scores F1 = 0,
    as in scikit-learn's ``f1_score(average="macro")`` over the observed labels.
    """
    cm = confusion_matrix(y_true, y_pred, labels)
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    used = (support + predicted) > 0
    denom = support + predicted
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return float(f1[used].mean()) if used.any() else float("nan")


def ccc(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Lin's concordance correlation coefficient (population moments), in [-1, 1]."""
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape or t.size < 2:
        raise ValueError("ccc needs two equal-length arrays with at least 2 values")
    mt, mp = t.mean(), p.mean()
    vt, vp = t.var(), p.var()
    cov = np.mean((t - mt) * (p - mp))
    denom = vt + vp + (mt - mp) ** 2
    return float(2 * cov / denom) if denom > 0 else float("nan")


#: The label-distribution-learning measures (Geng 2016), lower-is-better first.
LDL_MEASURES: tuple[str, ...] = ("chebyshev", "clark", "canberra", "kl", "cosine",
                                 "intersection")


def ldl_measures(target: ArrayLike, predicted: ArrayLike, eps: float = 1e-12) -> dict[str, float]:
    """The six standard label-distribution measures, each averaged over the items.

    Chebyshev ``max |t - p|``, Clark ``sqrt(sum (t - p)^2 / (t + p)^2)``, Canberra
    ``sum |t - p| / (t + p)``, KL ``sum t log(t / p)`` (distance: lower is better), cosine
    ``t.p / (|t| |p|)`` and intersection ``sum min(t, p)`` (similarity: higher is better).
    Terms with ``t + p = 0`` count 0 (Clark, Canberra); ``p`` is floored at ``eps`` in KL.

    Args:
        target: ``[N, C]`` reference distributions (rows sum to 1).
        predicted: ``[N, C]`` predicted distributions.
        eps: Floor of ``p`` in KL and of the cosine's denominator.
    """
    t = np.asarray(target, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    if t.shape != p.shape or t.ndim != 2 or len(t) == 0:
        raise ValueError(f"ldl_measures needs two [N, C] arrays of one shape, got {t.shape} and "
                         f"{p.shape}")
    total = t + p
    safe = np.where(total > 0, total, 1.0)
    diff = np.abs(t - p)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(t > 0, t * (np.log(np.maximum(t, eps)) - np.log(np.maximum(p, eps))), 0.0)
    norms = np.linalg.norm(t, axis=1) * np.linalg.norm(p, axis=1)
    return {
        "chebyshev": float(diff.max(axis=1).mean()),
        "clark": float(np.sqrt((diff ** 2 / safe ** 2).sum(axis=1)).mean()),
        "canberra": float((diff / safe).sum(axis=1).mean()),
        "kl": float(kl.sum(axis=1).mean()),
        "cosine": float(((t * p).sum(axis=1) / np.maximum(norms, eps)).mean()),
        "intersection": float(np.minimum(t, p).sum(axis=1).mean()),
    }


def expected_calibration_error(y_true: ArrayLike, probabilities: ArrayLike,
                               bins: int = 15) -> float:
    """ECE: how far the confidence of the top class is from its accuracy (Guo et al., 2017).

    Predictions are put in ``bins`` equal-width bins of confidence (the top probability); ECE is
    the mean over predictions of ``|accuracy(bin) - mean confidence(bin)|`` (a fraction).

    Args:
        y_true: Reference class indices ``[N]``.
        probabilities: ``[N, C]`` class probabilities (rows summing to 1).
        bins: Number of confidence bins.

    Example:
        >>> expected_calibration_error([0, 1], [[0.9, 0.1], [0.2, 0.8]], bins=10)
        0.15
    """
    hist = reliability(y_true, probabilities, bins)
    return ece_of(hist)


def reliability(y_true: ArrayLike, probabilities: ArrayLike, bins: int = 15) -> dict[str, Any]:
    """Per confidence bin: how many predictions, their summed confidence and summed correctness.

    Sums, not means, so the histograms of several test sets (the folds of a cross-validation)
    add up to the histogram of their union (:func:`ece_of` of the sum is the pooled ECE).

    Example:
        >>> reliability([0, 1], [[0.9, 0.1], [0.2, 0.8]], bins=2)["count"]
        [0, 2]
    """
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != t.shape[0]:
        raise ValueError(f"probabilities must be [N, C] for N = {t.shape[0]} labels")
    confidence = p.max(axis=1) if len(t) else np.zeros(0)
    correct = (p.argmax(axis=1) == t).astype(np.float64) if len(t) else np.zeros(0)
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    return {
        "bins": int(bins),
        "count": np.bincount(which, minlength=bins).astype(int).tolist(),
        "confidence": np.bincount(which, confidence, minlength=bins).tolist(),
        "correct": np.bincount(which, correct, minlength=bins).tolist(),
    }


def ece_of(hist: Mapping[str, Any]) -> float:
    """ECE (a fraction) from a :func:`reliability` histogram (or a sum of several)."""
    count = np.asarray(hist["count"], dtype=np.float64)
    if count.sum() == 0:
        return float("nan")
    conf = np.asarray(hist["confidence"], dtype=np.float64)
    right = np.asarray(hist["correct"], dtype=np.float64)
    used = count > 0
    gap = np.abs(right[used] - conf[used])  # count * |accuracy - mean confidence| per bin
    return round(float(gap.sum() / count.sum()), 12)


def add_reliability(hists: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The histogram of the union of the test sets the histograms describe."""
    return {"bins": int(hists[0]["bins"]),
            **{key: np.sum([np.asarray(h[key], dtype=np.float64) for h in hists],
                           axis=0).tolist() for key in ("count", "confidence", "correct")}}


def classification_scores(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """All classification scores of one evaluation, scores in percent.

    Args:
        y_true: Reference labels.
        y_pred: Predicted labels.
        labels: Class order of the confusion matrix and per-class recall.

    Returns:
        ``{"wa", "ua", "macro_f1", "per_class_recall": {label: %}, "confusion": [[int]],
        "labels": [...], "n": int}``.
    """
    labels = list(labels)
    recall = per_class_recall(y_true, y_pred, labels)
    return {
        "wa": 100.0 * weighted_accuracy(y_true, y_pred),
        "ua": 100.0 * unweighted_accuracy(y_true, y_pred, labels),
        "macro_f1": 100.0 * macro_f1(y_true, y_pred, labels),
        "per_class_recall": {
            label: (None if np.isnan(r) else 100.0 * float(r))
            for label, r in zip(labels, recall, strict=True)
        },
        "confusion": confusion_matrix(y_true, y_pred, labels).tolist(),
        "labels": labels,
        "n": len(y_true),
    }
