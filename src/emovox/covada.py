"""CO-VADA: voice-converted copies of the training recordings a model learns too easily (#18).

CO-VADA (Tsai et al. 2025) debiases a speech emotion model without demographic labels: the
recordings an early-stopped model learns easily and confidently are taken as *bias-aligned*
(their emotion is told by the speaker traits that go with it in this training set, e.g. a
high voice for "happy"); voice conversion gives them other speaker traits (pitch and formants,
:mod:`emovox.voice`) and keeps the emotion; the model is trained again on the union.

Here that is one more kind of training *version* (``"cv0"``, ``"cv1"``...), used by both
trainers like the multi-condition copies, but held only by the selected recordings.
:func:`plan` does the middle of the method, from the early model to the copies; the trainer
(:func:`emovox.train.fit`, ``augment.covada = true``) fits the early model
(:func:`early_config`) and trains on the result:

1. scores: for each training recording, the early model's probability of its own label
   (``"confidence"``), or that probability averaged over the early model's epochs
   (``"speed"``, neural trainer) -- :func:`confidence`, :func:`learning_speed`; or, for the
   control that asks whether *which* recordings are converted matters, a seeded draw that
   knows nothing of the model (``"random"``, :func:`random_scores`);
2. selection: the ``covada_share`` with the highest scores, within each class by default
   (:func:`select`);
3. conversion: each selected recording's copy ``k`` moves towards the other register, from its
   *speaker's* median F0 (the median over the speaker's training recordings, so the direction
   does not depend on the emotion), with factors drawn from ``covada_seed``, the recording and
   ``k`` (:func:`copy_shifts`): the same copy in every fold, cached once;
4. check: the early model classifies each copy; with ``covada_check`` a copy it no longer gives
   the recording's label is dropped; each kept copy's F0 and formant shift is measured
   (:func:`emovox.voice.measure_shift`).

Only the training recordings given are ever scored or converted (never test speakers). What
was done is returned as a plain record (``Bundle.info["covada"]``): how many were selected, per
class, speaker and gender, the speakers' F0, the copies dropped, the measured shifts.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .bundle import Bundle
from .config import TrainConfig
from .dataset import FeatureBank, group_of
from .types import Utterance
from .voice import VoiceShift, measure_shift, speaker_shift

__all__ = ["CovadaPlan", "confidence", "copy_shifts", "early_config", "learning_speed", "plan",
           "random_scores", "select", "speaker_f0"]

#: Keeps the selection draws of ``"random"`` apart from the copies' factor draws (the same
#: seed and recording feed both).
_RANDOM_STREAM = 0x5E1EC7


@dataclass(frozen=True)
class CovadaPlan:
    """What CO-VADA adds to a training set.

    Attributes:
        copies: Utterance id -> the converted versions it trains on (``["cv0", ...]``), for the
            selected recordings whose copies were kept.
        record: What was done, as plain values (see :func:`plan`).
    """

    copies: dict[str, list[str]]
    record: dict[str, Any]


def early_config(config: TrainConfig) -> TrainConfig:
    """The config of CO-VADA's early model for a run's ``config``.

    Classic trainers: a logistic regression on the clean recordings' pooled statistics with
    ``C = augment.covada_C`` (no speed or condition copies, no calibration). Neural: the
    recipe's network for ``augment.covada_epochs`` epochs on the clean recordings (no mixing,
    no speed or condition copies, no early stopping or averaging, one seed, no fused model).
    """
    aug = config.augment
    augment = dataclasses.replace(aug, covada=False, method="none", speed_factors=[],
                                  condition_copies=0)
    classic = dataclasses.replace(config.classic, C=aug.covada_C, speed_factors=[],
                                  calibration_folds=0, fuse=False)
    if config.method == "neural":
        optim = dataclasses.replace(config.optim, epochs=aug.covada_epochs, patience=0,
                                    average_from=0, ensemble=1)
        return dataclasses.replace(config, augment=augment, classic=classic, optim=optim)
    return dataclasses.replace(config, method="logreg", augment=augment, classic=classic)


def confidence(probabilities: np.ndarray, truth: Sequence[int]) -> np.ndarray:
    """Each row's probability of its true class: ``probabilities[i, truth[i]]``, shape ``[N]``."""
    p = np.asarray(probabilities, dtype=np.float64)
    return p[np.arange(len(p)), np.asarray(truth, dtype=np.int64)]


def learning_speed(history: Sequence[np.ndarray], truth: Sequence[int]) -> np.ndarray:
    """The true class's probability averaged over epochs (``history``: one ``[N, C]`` each).

    High for a recording learned early and kept learned (the area under its learning curve).
    """
    if not history:
        raise ValueError("learning_speed needs at least one epoch's probabilities")
    return np.mean([confidence(p, truth) for p in history], axis=0)


def random_scores(seed: int, utterances: Sequence[Utterance]) -> np.ndarray:
    """A uniform draw in [0, 1) per recording, from ``seed`` and its id alone, shape ``[N]``.

    ``covada_score = "random"``: with :func:`select` it picks the share at random. A
    recording's draw depends on neither the order nor the other recordings (it is the same
    in every fold); another seed draws anew.

    Example:
        >>> u = [Utterance(f"c/{i}", "", "c", "s", "a") for i in range(4)]
        >>> bool(np.all(random_scores(18, u)[::-1] == random_scores(18, u[::-1])))
        True
    """
    return np.array([np.random.default_rng([int(seed), zlib.crc32(u.id.encode()),
                                            _RANDOM_STREAM]).random() for u in utterances],
                    dtype=np.float64)


def select(utterances: Sequence[Utterance], scores: Sequence[float] | np.ndarray, share: float,
           per_class: bool = True) -> list[int]:
    """Indices of the ``share`` of ``utterances`` with the highest scores (ascending).

    ``per_class``: the share of each label's recordings (rounded half up), else of all of
    them. Ties go to the smaller utterance id, so the choice does not depend on the order.

    Example:
        >>> u = [Utterance(f"c/{i}", "", "c", "s", lab) for i, lab in enumerate("aaabbb")]
        >>> select(u, [0.9, 0.2, 0.5, 0.1, 0.8, 0.3], 1 / 3)
        [0, 4]
        >>> select(u, [0.9, 0.2, 0.5, 0.1, 0.8, 0.3], 1 / 3, per_class=False)
        [0, 4]
        >>> select(u, [0.9, 0.2, 0.5, 0.1, 0.8, 0.3], 0.5, per_class=False)
        [0, 2, 4]
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != (len(utterances),):
        raise ValueError(f"{values.size} scores for {len(utterances)} utterances")
    groups: dict[str, list[int]] = {}
    for i, u in enumerate(utterances):
        groups.setdefault(str(u.label) if per_class else "*", []).append(i)
    chosen: list[int] = []
    for members in groups.values():
        ranked = sorted(members, key=lambda i: (-values[i], utterances[i].id))
        chosen.extend(ranked[:math.floor(share * len(members) + 0.5)])
    return sorted(chosen)


def speaker_f0(bank: FeatureBank, utterances: Sequence[Utterance]) -> dict[str, float | None]:
    """Each speaker's median F0 (Hz): the median of the medians of their given recordings.

    ``None`` for a speaker with no voiced recording.
    """
    values: dict[str, list[float]] = {}
    for u in utterances:
        f0 = bank.median_f0(u)
        values.setdefault(u.speaker, [])
        if f0 is not None:
            values[u.speaker].append(f0)
    return {s: float(np.median(v)) if v else None for s, v in values.items()}


def copy_shifts(seed: int, utt_id: str, copies: int,
                speaker_f0_hz: float | None) -> list[VoiceShift]:
    """The factors of a recording's ``copies`` converted copies (:func:`voice.speaker_shift`).

    Copy ``k`` draws from a generator seeded by ``(seed, crc32(utt_id), k)``: it depends on
    nothing else but the speaker's register.
    """
    return [speaker_shift(np.random.default_rng([int(seed), zlib.crc32(utt_id.encode()), k]),
                          speaker_f0_hz) for k in range(copies)]


def _probabilities(model: Bundle, bank: FeatureBank, items: Sequence[Utterance],
                   version: Any = 1.0) -> np.ndarray:
    """The model's class probabilities ``[N, C]`` for one version of each utterance."""
    mode = model.normalizer.mode
    stats = [model.normalizer.stats.get(group_of(u, mode)) for u in items]
    return model.classify([bank.get(u, version) for u in items], stats).probabilities


def plan(config: TrainConfig, train: Sequence[Utterance], bank: FeatureBank, early: Bundle,
         classes: Sequence[str], history: Sequence[np.ndarray] | None = None,
         progress: bool = False) -> CovadaPlan:
    """Score ``train`` with the early model, select, convert, check: CO-VADA's copies.

    With ``covada_score = "random"`` (the control) the selection is
    :func:`random_scores` (``covada_seed``) instead; the early model then only checks the
    copies and gives ``early_accuracy``, so the copies go through the same machinery.

    Args:
        config: The run's config (``augment.covada_*`` are read).
        train: The training recordings (the only ones scored or converted).
        bank: Their features; the kept copies' features are added to it.
        early: The early model (fitted on ``train`` with :func:`early_config`).
        classes: The class order of the early model's probabilities.
        history: For ``covada_score = "speed"``, the early model's probabilities of ``train``
            after each epoch (``[N, C]`` each).
        progress: One summary line on stderr.

    Returns:
        The :class:`CovadaPlan`. Its record: ``score``, ``share``, ``per_class``,
        ``n_scored``, ``early_accuracy`` (percent of ``train`` the early model gets right),
        ``score_selected`` / ``score_rest`` (mean scores), ``n_selected`` and
        ``selected_per_class`` / ``_speaker`` / ``_gender``, ``speaker_f0_hz``, ``n_copies``,
        ``n_kept``, ``n_dropped`` and ``dropped_per_class``, ``agreement`` (percent of the
        copies the early model gives their label), ``shift`` (per direction, ``"up"`` and
        ``"down"``: copies, mean asked pitch and formant factors, mean measured F0 ratio and
        formant ratio of the kept copies), ``selected`` (their ids) and ``dropped``
        (``"id:version"``).
    """
    aug = config.augment
    truth = [classes.index(str(u.label)) for u in train]
    probs = _probabilities(early, bank, train)
    if aug.covada_score == "speed":
        if not history:
            raise ValueError("covada_score = \"speed\" needs the early model's epoch history")
        scores = learning_speed(history, truth)
    elif aug.covada_score == "random":
        scores = random_scores(aug.covada_seed, train)
    else:
        scores = confidence(probs, truth)
    chosen = select(train, scores, aug.covada_share, aug.covada_per_class)
    picked = [train[i] for i in chosen]
    speakers = {u.speaker for u in picked}
    f0 = speaker_f0(bank, [u for u in train if u.speaker in speakers])
    voiced = [u for u in picked if f0[u.speaker] is not None]
    shifts = [copy_shifts(aug.covada_seed, u.id, aug.covada_copies, f0[u.speaker])
              for u in voiced]
    versions = bank.add_voice_copies(voiced, shifts)
    copies: dict[str, list[str]] = {}
    dropped: list[tuple[Utterance, str]] = []
    agree = 0
    measured: dict[str, list[tuple[VoiceShift, dict[str, float | None]]]] = {"up": [],
                                                                             "down": []}
    for version in versions:
        if not voiced:
            break
        heard = _probabilities(early, bank, voiced, version).argmax(axis=1)
        for u, label in zip(voiced, heard, strict=True):
            same = classes[int(label)] == u.label
            agree += int(same)
            if aug.covada_check and not same:
                dropped.append((u, version))
                continue
            copies.setdefault(u.id, []).append(version)
            shift = bank.voice_shift(u, version)
            if shift is not None and shift.pitch_factor != 1.0:
                measure = measure_shift(bank.wave(u), bank.wave(u, version),
                                        bank.frontend.sample_rate)
                measured["up" if shift.pitch_factor > 1 else "down"].append((shift, measure))
    n_copies = len(voiced) * len(versions)
    rest = np.delete(scores, chosen)
    record: dict[str, Any] = {
        "score": aug.covada_score, "share": aug.covada_share, "per_class": aug.covada_per_class,
        "check": aug.covada_check, "n_scored": len(train),
        "early_accuracy": round(100.0 * float(np.mean(probs.argmax(axis=1) == truth)), 2),
        "score_selected": _mean(scores[chosen]), "score_rest": _mean(rest),
        "n_selected": len(picked),
        "selected_per_class": _counts(str(u.label) for u in picked),
        "selected_per_speaker": _counts(u.speaker for u in picked),
        "selected_per_gender": _counts(u.gender or "unknown" for u in picked),
        "speaker_f0_hz": {s: None if v is None else round(v, 1) for s, v in sorted(f0.items())},
        "n_unvoiced": len(picked) - len(voiced),
        "n_copies": n_copies, "n_kept": n_copies - len(dropped), "n_dropped": len(dropped),
        "dropped_per_class": _counts(str(u.label) for u, _ in dropped),
        "agreement": round(100.0 * agree / n_copies, 2) if n_copies else None,
        "shift": {direction: _shift_summary(rows) for direction, rows in measured.items()},
        "selected": [u.id for u in picked],
        "dropped": [f"{u.id}:{v}" for u, v in dropped],
    }
    if progress:
        moves = [f"{s['n']} {d}: F0 x{s['f0_ratio']} (asked x{s['pitch_factor']})"
                 for d, s in record["shift"].items() if s["n"]]
        sys.stderr.write(
            f"CO-VADA: {len(picked)} of {len(train)} training recordings selected by "
            f"{aug.covada_score} (mean {record['score_selected']} vs {record['score_rest']}); "
            f"{n_copies} converted copies, {len(dropped)} dropped by the check; "
            f"{'; '.join(moves) or 'none shifted'}\n")
        sys.stderr.flush()
    return CovadaPlan(copies=copies, record=record)


def _mean(values: Any) -> float | None:
    values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return round(float(np.mean(values)), 4) if values else None


def _counts(keys: Any) -> dict[str, int]:
    return dict(sorted(Counter(keys).items()))


def _shift_summary(rows: Sequence[tuple[VoiceShift, dict[str, float | None]]]) -> dict[str, Any]:
    return {"n": len(rows),
            "pitch_factor": _mean(s.pitch_factor for s, _ in rows),
            "formant_factor": _mean(s.formant_factor for s, _ in rows),
            "f0_ratio": _mean(m["f0_ratio"] for _, m in rows),
            "formant_ratio": _mean(m["formant_ratio"] for _, m in rows)}
