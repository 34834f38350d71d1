"""Training data as features: every utterance's frontend output, cached, plus waveforms.

:class:`FeatureBank` extracts (or reads from the on-disk cache) the features of a set of
utterances once, keeps them in the cache dtype (float16 by default) and serves them to every
fold of a cross-validation; speed-perturbed versions are extracted on request; waveforms are
read on demand for the augmentations that mix audio; voice-converted copies (CO-VADA) are
extracted for the recordings a run names. :func:`fit_normalizer` computes the standardisation
statistics a run needs from it.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import audio
from .augment import speed_perturb
from .bundle import Bundle, Classified, Normalizer
from .conditions import training_copy
from .features import FeatureCache
from .types import Utterance
from .voice import VoiceShift, convert, median_f0

__all__ = ["FeatureBank", "Version", "assess_utterances", "fit_normalizer", "group_of",
           "predict_utterances"]

#: A version of an utterance in a :class:`FeatureBank`: a speed factor or a copy's name.
Version = float | str


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


class FeatureBank:
    """Features of a set of utterances (and of perturbed versions of them), plus waveforms.

    Features are held in the cache dtype (float16 by default) and returned as float32. A
    *version* names what was heard: ``1.0`` is the audio as it is, other floats are speed
    factors (:meth:`add_speeds`), strings are multi-condition copies (:meth:`add_conditions`,
    ``"mc<k>"``) or voice-converted copies (:meth:`add_voice_copies`, ``"cv<k>"``, held by the
    recordings they were asked for only). Every version is extracted on request and cached
    like the clean one.
    """

    def __init__(self, frontend: Any, utterances: Sequence[Utterance], cache_dir: Path | None,
                 cache_dtype: str, progress: bool) -> None:
        self.frontend = frontend
        self.cache_dtype = cache_dtype
        self.progress = progress
        self.cache = FeatureCache(cache_dir, frontend.config(), cache_dtype) if cache_dir else None
        self.index = {u.id: i for i, u in enumerate(utterances)}
        self.utterances = list(utterances)
        self.features: dict[tuple[str, Version], np.ndarray] = {}
        self._waves: dict[tuple[str, float], np.ndarray] = {}
        # How each added copy version is made (plain values: no closure holds the bank, so a
        # bank is freed as soon as it is dropped, not at the next cycle collection).
        self._copies: dict[str, tuple[tuple[str, ...], int, int]] = {}
        self._voices: dict[tuple[str, str], VoiceShift] = {}
        self._median_f0: dict[str, float | None] = {}
        self._by_speaker: dict[str, list[Utterance]] | None = None
        self._extract(self.utterances, 1.0, "")

    def _extract(self, utterances: Sequence[Utterance], version: Version,
                 variant: str | Sequence[str]) -> None:
        """Features of ``version`` of each utterance; ``variant``: the cache tag (or one each).

        Under torchrun with a cache, rank 0 extracts (and caches) first and the other
        processes then read its files (:func:`emovox.scale.main_first`).
        """
        if self.cache is not None:
            from .distributed import main_first

            main_first(lambda: self._extract_here(utterances, version, variant))
        else:
            self._extract_here(utterances, version, variant)

    def _extract_here(self, utterances: Sequence[Utterance], version: Version,
                      variant: str | Sequence[str]) -> None:
        tags = [variant] * len(utterances) if isinstance(variant, str) else list(variant)
        todo = [(u, tag) for u, tag in zip(utterances, tags, strict=True)
                if (u.id, version) not in self.features]
        t0 = time.time()
        for i, (utt, tag) in enumerate(todo):
            feats = self.cache.get(utt, tag) if self.cache is not None else None
            if feats is None:
                feats = np.asarray(self.frontend(self.wave(utt, version))).astype(
                    self.cache_dtype)
                if self.cache is not None:
                    self.cache.put(utt, feats, tag)
            self.features[(utt.id, version)] = np.asarray(feats, dtype=self.cache_dtype)
            if self.progress and ((i + 1) % 100 == 0 or i + 1 == len(todo)):
                name = variant if isinstance(variant, str) else str(version)
                label = self.frontend.name + (f" {name}" if name else "")
                _log(f"features {label}: {i + 1}/{len(todo)} ({time.time() - t0:.0f} s)")

    def add_speeds(self, utterances: Sequence[Utterance], speeds: Sequence[float]) -> None:
        """Extract (or read from the cache) speed-perturbed features of ``utterances``."""
        for speed in speeds:
            if speed != 1.0:
                self._extract(utterances, float(speed), f"speed{float(speed):g}")

    def add_conditions(self, utterances: Sequence[Utterance], families: Sequence[str],
                       copies: int, seed: int) -> list[str]:
        """Extract multi-condition copies ``"mc0"``... of ``utterances``; their versions.

        Copy ``k`` of an utterance is :func:`emovox.conditions.training_copy` of its waveform
        (the same in every fold: it depends on the seed, the utterance and ``k`` only); babble
        is built from the same speaker's other recordings in the bank, so no other speaker's
        voice (a test speaker's, in cross-validation) is heard in training.
        """
        spec = json.dumps({"families": sorted(families), "seed": int(seed)}, sort_keys=True)
        tag = hashlib.sha256(spec.encode()).hexdigest()[:8]
        versions = []
        for k in range(int(copies)):
            version = f"mc{k}"
            self._copies[version] = (tuple(families), int(seed), k)
            self._extract(utterances, version, f"mc{k}-{tag}")
            versions.append(version)
        return versions

    def add_voice_copies(self, utterances: Sequence[Utterance],
                         shifts: Sequence[Sequence[VoiceShift]]) -> list[str]:
        """Extract voice-converted copies ``"cv0"``... of ``utterances``; their versions.

        Copy ``k`` of ``utterances[i]`` is :func:`emovox.voice.convert` of its clean waveform
        with ``shifts[i][k]`` (every utterance gives the same number of shifts). It is cached
        under the factors themselves (the waveform depends on nothing else), so any run that
        asks for the same factors reads it back. Only these utterances hold these versions;
        asking again with other factors replaces a copy.
        """
        counts = {len(s) for s in shifts}
        if len(counts) > 1 or len(shifts) != len(utterances):
            raise ValueError("add_voice_copies needs one list of shifts per utterance, all "
                             "of the same length")
        versions = [f"cv{k}" for k in range(counts.pop() if counts else 0)]
        for k, version in enumerate(versions):
            tags = []
            for utt, options in zip(utterances, shifts, strict=True):
                shift = VoiceShift(*options[k])
                if self._voices.get((utt.id, version)) != shift:
                    self.features.pop((utt.id, version), None)
                    self._voices[(utt.id, version)] = shift
                tags.append(f"cv-p{shift.pitch_factor:g}-f{shift.formant_factor:g}")
            self._extract(utterances, version, tags)
        return versions

    def voice_shift(self, utt: Utterance, version: str) -> VoiceShift | None:
        """The factors of a voice-converted copy (``None``: this utterance has no such copy)."""
        return self._voices.get((utt.id, version))

    def median_f0(self, utt: Utterance) -> float | None:
        """Median F0 (Hz) of the clean recording (:func:`emovox.voice.median_f0`), memoised."""
        if utt.id not in self._median_f0:
            self._median_f0[utt.id] = median_f0(self.wave(utt), self.frontend.sample_rate)
        return self._median_f0[utt.id]

    def _speakers(self) -> dict[str, list[Utterance]]:
        """The bank's utterances by speaker (built once, on first use)."""
        if self._by_speaker is None:
            self._by_speaker = {}
            for u in self.utterances:
                self._by_speaker.setdefault(u.speaker, []).append(u)
        return self._by_speaker

    def get(self, utt: Utterance, speed: Version = 1.0) -> np.ndarray:
        """Features of one utterance (in a version already extracted), float32."""
        return self.features[(utt.id, speed)].astype(np.float32)

    def raw(self, utt: Utterance, speed: Version = 1.0) -> np.ndarray:
        """Features in their storage dtype (no copy)."""
        return self.features[(utt.id, speed)]

    def wave(self, utt: Utterance, speed: Version = 1.0) -> np.ndarray:
        """The waveform at the frontend's rate, in a version already added (or any speed).

        Clean waveforms are memoised; other versions are made again on each call.
        """
        clean = self._waves.get((utt.id, 1.0))
        if clean is None:
            clean = audio.load(utt.path, self.frontend.sample_rate, start=utt.start,
                               duration=utt.duration)
            self._waves[(utt.id, 1.0)] = clean
        if speed == 1.0:
            return clean
        if isinstance(speed, str):
            shift = self._voices.get((utt.id, speed))
            if shift is not None:
                return convert(clean, self.frontend.sample_rate, **shift._asdict())
            if speed not in self._copies:
                raise KeyError(f"version {speed!r} of {utt.id} was not added to this bank")
            families, seed, k = self._copies[speed]
            voices = [self.wave(v) for v in self._speakers().get(utt.speaker, [])
                      if v.id != utt.id]
            return training_copy(clean, self.frontend.sample_rate, families, seed, utt.id, k,
                                 voices)
        return speed_perturb(clean, speed)


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


def predict_utterances(model: Bundle, bank: FeatureBank,
                       utterances: Sequence[Utterance]) -> np.ndarray:
    """Class probabilities ``[N, C]`` of utterances whose features are in ``bank``.

    Through :meth:`Bundle.classify` (or :meth:`Bundle.classify_waves` for a fine-tuned model),
    with each utterance's group statistics when the model was trained per speaker.
    """
    return assess_utterances(model, bank, utterances).probabilities


def assess_utterances(model: Bundle, bank: FeatureBank,
                      utterances: Sequence[Utterance], *, vectors: bool = False) -> Classified:
    """Everything the model says about utterances in ``bank`` (probabilities, VAD).

    The same path as :func:`predict_utterances`; ``vectors``: also a classic model's pooled
    statistics as ``embeddings`` (:meth:`Bundle.classify`).
    """
    if model.finetuned:
        return model.classify_waves([bank.wave(u) for u in utterances])
    mode = model.normalizer.mode
    stats = [model.normalizer.stats.get(group_of(u, mode)) for u in utterances]
    return model.classify([bank.get(u) for u in utterances], stats, vectors=vectors)
