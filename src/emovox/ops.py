"""Numpy statistics every stage shares: running moments and pooled mean+std.

- :class:`Moments`: running mean and standard deviation of frames, accumulated in float64 over
  any number of feature matrices (normalisation statistics of a training set, of a folder, of
  one long recording, of one utterance).
- :func:`pool_stats`: an utterance's mean and standard deviation over time, the input of the
  logistic-regression models (training and classification alike).

Their torch counterparts for padded batches are in :mod:`emovox.layers`.

Example:
    >>> import numpy as np
    >>> m = Moments()
    >>> m.add(np.array([[0.0, 1.0], [2.0, 3.0]]))
    >>> m.add(np.array([[4.0, 5.0]]))
    >>> mean, std = m.result()
    >>> mean.tolist()
    [[2.0, 3.0]]
    >>> pool_stats(np.array([[1.0, 2.0], [3.0, 2.0]])).tolist()
    [2.0, 2.0, 1.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["Moments", "Stats", "fit_temperature", "pool_stats", "softmax"]

#: ``(mean, std)`` per feature, shaped like one frame with a time axis of 1.
Stats = tuple[np.ndarray, np.ndarray]


class Moments:
    """Running per-feature mean and standard deviation over frames (axis ``-2``).

    Accumulated in float64, piece by piece, so a long recording or a whole corpus never needs
    to be in memory at once. The standard deviation is the population one with ``1e-8`` under
    the square root (a constant feature standardises to 0, not NaN).
    """

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self.total_sq: np.ndarray | None = None
        self.count = 0

    def add(self, feats: np.ndarray) -> None:
        """Add the frames of one feature matrix ``[..., T, D]``."""
        f64 = np.asarray(feats, dtype=np.float64)
        s = f64.sum(axis=-2, keepdims=True)
        sq = np.square(f64).sum(axis=-2, keepdims=True)
        self.total = s if self.total is None else self.total + s
        self.total_sq = sq if self.total_sq is None else self.total_sq + sq
        self.count += f64.shape[-2]

    def result(self) -> Stats | None:
        """``(mean, std)`` shaped like one frame with a time axis of 1, or ``None`` if empty."""
        if self.total is None or self.total_sq is None or self.count == 0:
            return None
        mean = self.total / self.count
        var = np.maximum(self.total_sq / self.count - mean**2, 0.0)
        return mean.astype(np.float32), np.sqrt(var + 1e-8).astype(np.float32)

    @classmethod
    def of(cls, feats: Sequence[np.ndarray]) -> Stats | None:
        """The statistics of several feature matrices together (``None`` for none)."""
        moments = cls()
        for f in feats:
            moments.add(f)
        return moments.result()


def pool_stats(feats: np.ndarray, layer: int | str = -1) -> np.ndarray:
    """An utterance's mean and standard deviation over time (the logistic regression's input).

    Functionals (one frame) are returned as they are. For every-layer features ``[L, T, D]``,
    ``layer`` picks one hidden state, or ``"all"`` concatenates every layer's statistics.
    """
    if feats.ndim == 3:
        if layer == "all":
            return np.concatenate([pool_stats(f) for f in feats])
        feats = feats[int(layer)]
    if feats.shape[0] == 1:
        return feats[0]
    return np.concatenate([feats.mean(axis=0), feats.std(axis=0)])


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``softmax(logits / temperature)`` over the last axis (float64, never overflows).

    Probabilities at a temperature are ``softmax(log(p), T)``.

    Example:
        >>> softmax(np.array([0.3, 0.2]), 0.05).round(3).tolist()
        [0.881, 0.119]
    """
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)  # exp of at most 0
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """The temperature ``T`` of the lowest log loss of ``softmax(logits / T)`` against ``truth``.

    Searched on [0.05, 20] (log scale); rounded to 4 decimals. For calibration on held-out
    training speakers: it never changes which class is most probable.
    """
    import math

    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(truth)

    def log_loss(log_t: float) -> float:
        scaled = z / math.exp(log_t)
        scaled = scaled - scaled.max(axis=1, keepdims=True)
        log_p = scaled - np.log(np.exp(scaled).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(y)), y].mean())

    best = minimize_scalar(log_loss, bounds=(math.log(0.05), math.log(20.0)), method="bounded")
    return round(math.exp(float(best.x)), 4)
