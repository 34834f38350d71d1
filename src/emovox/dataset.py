"""Training data as features: every utterance's frontend output, cached, plus waveforms.

:class:`FeatureBank` extracts (or reads from the on-disk cache) the features of a set of
utterances once, keeps them in the cache dtype (float16 by default) and serves them to every
fold of a cross-validation; speed-perturbed versions are extracted on request; waveforms are
read on demand for the augmentations that mix audio. :func:`fit_normalizer` computes the
standardisation statistics a run needs from it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import audio
from .augment import speed_perturb
from .bundle import Normalizer
from .features import FeatureCache
from .types import Utterance

__all__ = ["FeatureBank", "fit_normalizer", "group_of"]


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


class FeatureBank:
    """Features of a set of utterances (and of speed-perturbed versions), plus waveforms.

    Features are held in the cache dtype (float16 by default) and returned as float32. Version
    ``1.0`` is the audio as it is; other speed factors are extracted on request
    (:meth:`add_speeds`) and cached like the clean ones.
    """

    def __init__(self, frontend: Any, utterances: Sequence[Utterance], cache_dir: Path | None,
                 cache_dtype: str, progress: bool) -> None:
        self.frontend = frontend
        self.cache_dtype = cache_dtype
        self.progress = progress
        self.cache = FeatureCache(cache_dir, frontend.config(), cache_dtype) if cache_dir else None
        self.index = {u.id: i for i, u in enumerate(utterances)}
        self.utterances = list(utterances)
        self.features: dict[tuple[str, float], np.ndarray] = {}
        self._waves: dict[tuple[str, float], np.ndarray] = {}
        self._extract(self.utterances, 1.0)

    def _extract(self, utterances: Sequence[Utterance], speed: float) -> None:
        todo = [u for u in utterances if (u.id, speed) not in self.features]
        variant = "" if speed == 1.0 else f"speed{speed:g}"
        t0 = time.time()
        for i, utt in enumerate(todo):
            feats = self.cache.get(utt, variant) if self.cache is not None else None
            if feats is None:
                feats = np.asarray(self.frontend(self.wave(utt, speed))).astype(self.cache_dtype)
                if self.cache is not None:
                    self.cache.put(utt, feats, variant)
                if speed != 1.0:  # perturbed waves are cheap to redo; do not hold them all
                    self._waves.pop((utt.id, speed), None)
            self.features[(utt.id, speed)] = np.asarray(feats, dtype=self.cache_dtype)
            if self.progress and ((i + 1) % 100 == 0 or i + 1 == len(todo)):
                label = self.frontend.name + ("" if speed == 1.0 else f" speed {speed:g}")
                _log(f"features {label}: {i + 1}/{len(todo)} ({time.time() - t0:.0f} s)")

    def add_speeds(self, utterances: Sequence[Utterance], speeds: Sequence[float]) -> None:
        """Extract (or read from the cache) speed-perturbed features of ``utterances``."""
        for speed in speeds:
            if speed != 1.0:
                self._extract(utterances, float(speed))

    def get(self, utt: Utterance, speed: float = 1.0) -> np.ndarray:
        """Features of one utterance (at a speed already extracted), float32."""
        return self.features[(utt.id, speed)].astype(np.float32)

    def raw(self, utt: Utterance, speed: float = 1.0) -> np.ndarray:
        """Features in their storage dtype (no copy)."""
        return self.features[(utt.id, speed)]

    def wave(self, utt: Utterance, speed: float = 1.0) -> np.ndarray:
        """The waveform at the frontend's rate, optionally speed-perturbed (memoised)."""
        key = (utt.id, speed)
        if key not in self._waves:
            clean = self._waves.get((utt.id, 1.0))
            if clean is None:
                clean = audio.load(utt.path, self.frontend.sample_rate, start=utt.start,
                                   duration=utt.duration)
                self._waves[(utt.id, 1.0)] = clean
            if speed != 1.0:
                self._waves[key] = speed_perturb(clean, speed)
        return self._waves[key]


def group_of(utt: Utterance, mode: str) -> str:
    """The normalisation group of an utterance: its speaker in ``"speaker"`` mode, else ``"*"``."""
    return utt.speaker if mode == "speaker" else "*"


def fit_normalizer(mode: str, bank: FeatureBank, train: Sequence[Utterance],
                   others: Sequence[Utterance]) -> Normalizer:
    """Global stats from training data; per-speaker stats for every speaker in speaker mode."""
    norm = Normalizer(mode)
    if mode in ("none", "utterance"):
        return norm
    groups: dict[str, list[np.ndarray]] = {"*": [bank.raw(u) for u in train]}
    if mode == "speaker":
        for u in list(train) + list(others):
            groups.setdefault(u.speaker, []).append(bank.raw(u))
    return norm.fit(groups)
