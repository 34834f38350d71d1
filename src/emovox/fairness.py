"""Fairness audit: how a model's scores differ between groups of speakers (issue #18).

:func:`report` scores a labelled set per group (gender, age band, language, corpus, session,
any manifest column, or ``speaker_cluster``) and measures the gaps between the groups, every
figure with a 95 % confidence interval from a **speaker-level bootstrap**: each replicate
draws, within each group, as many speakers as the group has, with replacement, and takes all
the utterances of each drawn speaker (a speaker drawn twice counts twice). Utterances of one
speaker are not independent (same voice, same microphone, same acting style), so resampling
utterances would give intervals far too narrow; resampling speakers asks "how different would
this be with other speakers like these". Groups are resampled separately (stratified), so each
keeps its speaker count; the generator is seeded, so the intervals are reproducible.

Per group (scores in percent): UA, WA and macro-F1 (:func:`emovox.evaluate.classification_scores`,
the scores of every results file), and per class the true-positive rate (TPR, the class's
recall), the false-positive rate (FPR: the share of the group's utterances of other classes
predicted as this class) and the prediction rate (share of the group's utterances predicted as
this class). Gaps, in percentage points, over the groups large enough to judge:

- ``tpr_gap``: per class, the largest minus the smallest TPR across groups
  (``tpr_gap_per_class``); ``tpr_gap`` is its mean over the classes.
- ``dp_gap`` (demographic parity): per class, the largest minus the smallest prediction rate
  across groups (``dp_gap_per_class``); ``dp_gap`` is the **largest** over the classes. Where
  the groups' true class mix differs (each group's ``truth_rate``), part of it is that
  difference, not the model.
  ``truth_rate_gap`` is the same measure of the true labels (the largest over classes): how
  much of ``dp_gap`` the groups' class mix alone would give.
- ``equalised_odds``: per class, the larger of its TPR gap and its FPR gap; the largest over
  the classes (the multi-class, one-vs-rest form of fairlearn's
  ``equalized_odds_difference``).

Intervals: per-group figures get the percentile interval of the replicates. A gap is a
largest-minus-smallest difference, never negative, so sampling noise alone makes it positive,
and its replicates (noise on top of noise) sit above the estimate; their plain percentile
interval can miss the estimate altogether. So a gap's interval is the percentile interval
shifted down by the bootstrap's estimate of that bias (the replicates' mean minus the
estimate; reported as ``<gap>_bias``), floored at 0 (the bias-corrected percentile interval).
A gap whose bias is about as large as the gap itself is what noise alone would give.

A group with fewer than ``min_speakers`` speakers is reported as too small to judge
(``{"too_small": true, "n_speakers", "n"}``) and left out of the gaps. A class with no
utterance in a group has no TPR there (``None``) and that group is left out of the class's TPR
gap. Intervals are taken over the replicates in which a figure is defined.

Two sources feed it: a model run over labelled utterances (:func:`audit_model`, each file
predicted alone through :meth:`~emovox.inference.Recognizer.predict_files`, as ``emovox
predict`` does), or a cross-validation run's stored predictions (:func:`audit_results`:
``results.json`` and its ``folds/fold_K.json``, the predictions for each fold's held-out
speakers). The fold files keep ids and predictions but not the truth, speakers or groups:
those come from the corpus the run was made on, loaded again.

fairlearn is not used (it is no dependency of emovox): every figure here comes from a
confusion matrix per group, and a row-level bootstrap would resample utterances, not speakers.

Example:
    >>> doc = report(["a", "b", "a", "b"], ["a", "b", "b", "b"], ["s1", "s1", "s2", "s2"],
    ...              ["f", "f", "m", "m"], ["a", "b"], n_boot=0, min_speakers=1)
    >>> doc["groups"]["f"]["ua"], doc["groups"]["m"]["ua"], doc["gaps"]["tpr_gap"]
    (100.0, 50.0, 50.0)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import audio
from .errors import EmovoxError, require
from .evaluate import classification_scores
from .inference import SILENCE, Recognizer
from .types import Prediction, Utterance

__all__ = [
    "DEFAULT_GROUP",
    "SPEAKER_CLUSTER",
    "audit_model",
    "audit_results",
    "group_columns",
    "group_values",
    "plot_report",
    "read_results",
    "render_text",
    "report",
    "speaker_clusters",
]

#: The group column when none is asked for.
DEFAULT_GROUP = "gender"
#: The pseudo-column that groups speakers by their voice (see :func:`speaker_clusters`).
SPEAKER_CLUSTER = "speaker_cluster"
#: Bootstrap replicates by default.
N_BOOT = 1000
#: A group needs this many speakers to be judged (a bootstrap over one speaker says nothing).
MIN_SPEAKERS = 2
#: Confidence of the intervals, in percent.
CONFIDENCE = 95.0
#: Below this many speakers a group's intervals come from few distinct resamples (a note says so).
FEW_SPEAKERS = 5
#: Utterance fields that can group (besides ``extra`` entries).
ATTRIBUTES = ("gender", "session", "corpus")
#: ``extra`` entries that are measurements of the utterance, not groups.
_NOT_GROUPS = frozenset({"raw_label", "valence", "arousal", "dominance", "label_distribution",
                          "transcript"})
#: Recordings per speaker whose F0 :func:`speaker_clusters` measures.
CLUSTER_FILES = 20

Progress = Callable[[int, int], None]

DEFINITIONS = {
    "tpr": "per class: share of the group's utterances of the class predicted as it (recall)",
    "fpr": "per class: share of the group's utterances of other classes predicted as it",
    "prediction_rate": "per class: share of the group's utterances predicted as it",
    "tpr_gap": "mean over classes of (largest - smallest TPR across groups)",
    "dp_gap": "largest over classes of (largest - smallest prediction rate across groups)",
    "equalised_odds": "largest over classes of max(TPR gap, FPR gap) across groups",
    "ci": "95 % percentile interval over bootstrap replicates that resample speakers with "
          "replacement within each group",
    "gap_ci": "gaps are >= 0 by construction and sampling noise inflates them: their interval "
              "is the percentile interval shifted down by <gap>_bias (mean of the replicates "
              "minus the estimate), floored at 0",
}


# --- the report ----------------------------------------------------------------------------


def _group_scores(t: np.ndarray, p: np.ndarray, names: Sequence[str],
                  n_classes: int) -> dict[str, Any]:
    """Scores of one group's utterances (arrays of label names), in percent.

    The classes are ``names[:n_classes]``; the names after them are predictions outside the
    classes (``"silence"``), which count as wrong.
    """
    s = classification_scores(t.tolist(), p.tolist(), names)
    cm = np.asarray(s["confusion"], dtype=np.float64)
    n = cm.sum()
    support = cm.sum(axis=1)[:n_classes]
    predicted = cm.sum(axis=0)[:n_classes]
    hits = np.diag(cm)[:n_classes]
    negatives = n - support
    with np.errstate(invalid="ignore", divide="ignore"):
        fpr = np.where(negatives > 0, 100.0 * (predicted - hits) / negatives, np.nan)
    recall = s["per_class_recall"]
    return {
        "ua": float(s["ua"]), "wa": float(s["wa"]), "macro_f1": float(s["macro_f1"]),
        "tpr": np.array([np.nan if recall[c] is None else recall[c] for c in names[:n_classes]]),
        "fpr": fpr,
        "rate": 100.0 * predicted / n,
        "truth_rate": 100.0 * support / n,
    }


def _spread(values: np.ndarray) -> np.ndarray:
    """Per column of ``[groups, classes]``: largest - smallest defined value (NaN if < 2)."""
    out = np.full(values.shape[1], np.nan)
    for c in range(values.shape[1]):
        column = values[:, c][np.isfinite(values[:, c])]
        if column.size >= 2:
            out[c] = column.max() - column.min()
    return out


def _gaps(scores: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The gaps between groups' scores (``scores``: one :func:`_group_scores` per group)."""
    tpr = _spread(np.stack([s["tpr"] for s in scores]))
    fpr = _spread(np.stack([s["fpr"] for s in scores]))
    dp = _spread(np.stack([s["rate"] for s in scores]))
    eo = np.fmax(tpr, fpr)  # a class whose TPR gap is undefined keeps its FPR gap

    def agg(values: np.ndarray, how: Callable[[np.ndarray], Any]) -> float:
        defined = values[np.isfinite(values)]
        return float(how(defined)) if defined.size else float("nan")

    truth = _spread(np.stack([s["truth_rate"] for s in scores]))
    return {"tpr_gap": agg(tpr, np.mean), "tpr_gap_per_class": tpr, "fpr_gap_per_class": fpr,
            "dp_gap": agg(dp, np.max), "dp_gap_per_class": dp, "truth_rate_gap": agg(truth, np.max),
            "equalised_odds": agg(eo, np.max), "equalised_odds_per_class": eo}


def _value(x: Any) -> float | None:
    x = float(x)
    return round(x, 2) if np.isfinite(x) else None


def _ci(replicates: Sequence[float] | np.ndarray) -> list[float] | None:
    """The percentile interval of the defined replicates (``None`` if there are none)."""
    values = np.asarray(replicates, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    tail = (100.0 - CONFIDENCE) / 2
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return [round(float(lo), 2), round(float(hi), 2)]


def _gap_ci(estimate: float, replicates: Sequence[float]
            ) -> tuple[list[float] | None, float | None]:
    """A gap's bias-corrected percentile interval, floored at 0, and the bias it removed.

    The bias is the replicates' mean minus the estimate (how much resampling noise inflates a
    largest-minus-smallest difference); the percentile interval is shifted down by it.
    """
    values = np.asarray(replicates, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0 or not np.isfinite(estimate):
        return None, None
    bias = float(values.mean() - estimate)
    tail = (100.0 - CONFIDENCE) / 2
    lo, hi = np.percentile(values, [tail, 100.0 - tail]) - bias
    return [round(max(0.0, float(lo)), 2), round(max(0.0, float(hi)), 2)], round(bias, 2)


def _speaker_resamples(rows: Sequence[np.ndarray], n_boot: int,
                       rng: np.random.Generator) -> list[np.ndarray]:
    """Utterance indices of ``n_boot`` bootstrap replicates of one group's speakers.

    ``rows[k]`` holds the utterance indices of the group's speaker ``k``. Each replicate draws
    ``len(rows)`` speakers with replacement and takes all of each drawn speaker's utterances.
    """
    draws = rng.integers(0, len(rows), size=(n_boot, len(rows)))
    return [np.concatenate([rows[k] for k in draw]) for draw in draws]


def report(
    truth: Sequence[str],
    pred: Sequence[str],
    speakers: Sequence[str],
    groups: Sequence[str],
    labels: Sequence[str],
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
    min_speakers: int = MIN_SPEAKERS,
) -> dict[str, Any]:
    """Per-group scores and the gaps between groups, with speaker-bootstrap intervals.

    See the module docstring for every definition.

    Args:
        truth: Reference label of each utterance (each one of ``labels``).
        pred: Predicted label of each utterance; a value outside ``labels`` (``"silence"``)
            is a wrong answer.
        speakers: Speaker of each utterance (the bootstrap's unit).
        groups: Group of each utterance, e.g. ``"female"``.
        labels: The classes scored, in report order.
        n_boot: Bootstrap replicates (0: no intervals, every ``*_ci`` is ``None``).
        seed: Seed of the bootstrap (the same seed gives the same intervals).
        min_speakers: Groups with fewer speakers are reported as too small and left out of
            the gaps.

    Returns:
        Plain values, scores in percent, intervals ``[lo, hi]`` or ``None``::

            {"classes", "n", "n_speakers", "overall": {"ua", "wa", "macro_f1"},
             "groups": {name: {"n", "n_speakers", "ua", "ua_ci", "wa", "wa_ci", "macro_f1",
                               "macro_f1_ci", "tpr": {class: v}, "tpr_ci": {class: ci},
                               "fpr": {class: v}, "prediction_rate": {class: v},
                               "truth_rate": {class: v}}
                        | {"too_small": True, "n_speakers", "n"}},
             "gaps": {"groups", "tpr_gap", "tpr_gap_ci", "tpr_gap_per_class",
                      "tpr_gap_per_class_ci", "tpr_gap_bias", "fpr_gap_per_class", "dp_gap",
                      "dp_gap_ci", "dp_gap_bias",
                      "dp_gap_per_class", "dp_gap_per_class_ci", "truth_rate_gap",
                      "equalised_odds", "equalised_odds_ci", "equalised_odds_bias",
                      "equalised_odds_per_class",
                      "equalised_odds_per_class_ci"},
             "bootstrap": {"unit", "n_boot", "seed", "confidence"}, "min_speakers",
             "definitions", "notes": [str]}

        Gaps are ``None`` when fewer than two groups can be judged.

    Raises:
        EmovoxError: On sequences of different lengths, an empty set, a reference label
            outside ``labels``, or a bad ``n_boot`` / ``min_speakers``.
    """
    classes = [str(c) for c in labels]
    truth, pred = [str(x) for x in truth], [str(x) for x in pred]
    speakers, groups = [str(x) for x in speakers], [str(x) for x in groups]
    n = len(truth)
    if not len(pred) == len(speakers) == len(groups) == n:
        raise EmovoxError(f"fairness: {n} references, {len(pred)} predictions, "
                          f"{len(speakers)} speakers and {len(groups)} groups: one each")
    if n == 0:
        raise EmovoxError("fairness: nothing to audit (no labelled prediction)")
    if not classes or len(set(classes)) != len(classes):
        raise EmovoxError("fairness: labels must be distinct class names, at least one")
    unknown = sorted(set(truth) - set(classes))
    if unknown:
        raise EmovoxError(f"fairness: reference labels {', '.join(unknown)} are not among the "
                          f"classes ({', '.join(classes)})")
    if n_boot < 0:
        raise EmovoxError(f"fairness: n_boot must be 0 or more (got {n_boot})")
    if min_speakers < 1:
        raise EmovoxError(f"fairness: min_speakers must be at least 1 (got {min_speakers})")
    names = classes + sorted(set(pred) - set(classes))
    t = np.array(truth, dtype=object)
    p = np.array(pred, dtype=object)
    c = len(classes)

    members: dict[str, dict[str, list[int]]] = {}
    for i, (g, speaker) in enumerate(zip(groups, speakers, strict=True)):
        members.setdefault(g, {}).setdefault(speaker, []).append(i)
    notes: list[str] = []
    out_groups: dict[str, Any] = {}
    judged: list[str] = []
    for g in sorted(members):
        count = sum(len(rows) for rows in members[g].values())
        if len(members[g]) < min_speakers:
            out_groups[g] = {"too_small": True, "n_speakers": len(members[g]), "n": count}
            notes.append(f"group {g!r}: {len(members[g])} speaker(s), fewer than {min_speakers}: "
                         "too small to judge, left out of the gaps")
        else:
            judged.append(g)

    # each judged group: its speakers' utterance rows, its point scores, its replicates
    rows = {g: [np.array(members[g][s], dtype=np.int64) for s in sorted(members[g])]
            for g in judged}
    point = {g: _group_scores(t[np.concatenate(rows[g])], p[np.concatenate(rows[g])], names, c)
             for g in judged}
    rng = np.random.default_rng(seed)
    resamples = {g: _speaker_resamples(rows[g], n_boot, rng) for g in judged}
    boot = {g: [_group_scores(t[idx], p[idx], names, c) for idx in resamples[g]]
            for g in judged}

    for g in judged:
        scores, reps = point[g], boot[g]
        entry: dict[str, Any] = {"n": int(sum(len(r) for r in rows[g])),
                                 "n_speakers": len(rows[g])}
        for key in ("ua", "wa", "macro_f1"):
            entry[key] = _value(scores[key])
            entry[f"{key}_ci"] = _ci([r[key] for r in reps])
        entry["tpr"] = {name: _value(v) for name, v in zip(classes, scores["tpr"], strict=True)}
        entry["tpr_ci"] = {name: (None if entry["tpr"][name] is None
                                  else _ci([r["tpr"][j] for r in reps]))
                           for j, name in enumerate(classes)}
        entry["fpr"] = {name: _value(v) for name, v in zip(classes, scores["fpr"], strict=True)}
        entry["prediction_rate"] = {name: _value(v)
                                    for name, v in zip(classes, scores["rate"], strict=True)}
        entry["truth_rate"] = {name: _value(v)
                               for name, v in zip(classes, scores["truth_rate"], strict=True)}
        out_groups[g] = entry
        absent = [name for name in classes if entry["tpr"][name] is None]
        if absent:
            notes.append(f"group {g!r} has no utterance of {', '.join(absent)}: no TPR there, "
                         "left out of those classes' TPR gaps")
        if len(rows[g]) < FEW_SPEAKERS and n_boot:
            notes.append(f"group {g!r} has {len(rows[g])} speakers: its intervals come from few "
                         "distinct resamples, read them as rough")

    gaps: dict[str, Any] = {"groups": judged}
    if len(judged) >= 2:
        g0 = _gaps([point[g] for g in judged])
        g_boot = [_gaps([boot[g][b] for g in judged]) for b in range(n_boot)]
        for key in ("tpr_gap", "dp_gap", "equalised_odds"):
            gaps[key] = _value(g0[key])
            gaps[f"{key}_ci"], gaps[f"{key}_bias"] = _gap_ci(g0[key], [r[key] for r in g_boot])
        gaps["truth_rate_gap"] = _value(g0["truth_rate_gap"])
        for key in ("tpr_gap_per_class", "fpr_gap_per_class", "dp_gap_per_class",
                    "equalised_odds_per_class"):
            gaps[key] = {name: _value(v) for name, v in zip(classes, g0[key], strict=True)}
            if key != "fpr_gap_per_class":
                gaps[f"{key}_ci"] = {name: (None if gaps[key][name] is None else
                                            _gap_ci(g0[key][j], [r[key][j] for r in g_boot])[0])
                                     for j, name in enumerate(classes)}
    else:
        for key in ("tpr_gap", "dp_gap", "equalised_odds"):
            gaps[key] = gaps[f"{key}_ci"] = gaps[f"{key}_bias"] = None
        gaps["truth_rate_gap"] = None
        notes.append(f"{len(judged)} group(s) large enough to judge: no gaps")
    shared = [s for s in set(speakers)
              if sum(s in members[g] for g in judged) > 1]
    if shared and n_boot:
        notes.append(f"{len(shared)} speaker(s) belong to several groups (an utterance-level "
                     "column): groups are resampled independently, so the gaps' intervals "
                     "ignore that correlation and are wider than they need be")

    overall = classification_scores(truth, pred, names)
    return {
        "classes": classes,
        "n": n,
        "n_speakers": len(set(speakers)),
        "overall": {key: _value(overall[key]) for key in ("ua", "wa", "macro_f1")},
        "groups": out_groups,
        "gaps": gaps,
        "bootstrap": {"unit": "speaker, resampled with replacement within each group",
                      "n_boot": n_boot, "seed": seed, "confidence": CONFIDENCE,
                      "method": "percentile"},
        "min_speakers": min_speakers,
        "definitions": dict(DEFINITIONS),
        "notes": notes,
    }


# --- groups --------------------------------------------------------------------------------


def _extra_value(value: Any) -> str | None:
    """An ``extra`` value usable as a group: text, an integer or a flag (not a measurement)."""
    if value is None or value == "" or isinstance(value, float | Mapping | list | tuple):
        return None
    return str(value)


def group_columns(utterances: Sequence[Utterance]) -> list[str]:
    """The columns that can group these utterances, :data:`SPEAKER_CLUSTER` last.

    ``gender``, ``session`` and ``corpus`` where some utterance has them, and every ``extra``
    entry holding text or integers (a manifest's own columns, RAVDESS's ``intensity``, ...).
    """
    found: set[str] = set()
    for u in utterances:
        found.update(a for a in ATTRIBUTES if getattr(u, a))
        found.update(key for key, value in u.extra.items()
                     if key not in _NOT_GROUPS and _extra_value(value) is not None)
    return sorted(found) + [SPEAKER_CLUSTER]


def group_values(utterances: Sequence[Utterance], column: str) -> list[str | None]:
    """Each utterance's group under ``column`` (``None``: the utterance has no value).

    Raises:
        EmovoxError: If no utterance has the column (one line naming those that exist), or,
            for :data:`SPEAKER_CLUSTER`, as :func:`speaker_clusters`.
    """
    if column == SPEAKER_CLUSTER:
        clusters, _ = speaker_clusters(utterances)
        return [clusters.get(u.speaker) for u in utterances]
    available = group_columns(utterances)
    if column not in available:
        raise EmovoxError(f"no group column '{column}' in this data (columns: "
                          f"{', '.join(available)})")
    if column in ATTRIBUTES:
        return [getattr(u, column) or None for u in utterances]
    return [_extra_value(u.extra.get(column)) for u in utterances]


def _median_f0(signal: np.ndarray, sample_rate: int) -> float | None:
    """Median F0 (Hz) of a recording's voiced frames (Praat's autocorrelation pitch)."""
    from .cues import HOP_SECONDS, PITCH_CEILING_HZ, PITCH_FLOOR_HZ

    parselmouth = require("parselmouth", "explain")
    sound = parselmouth.Sound(np.asarray(signal, dtype=np.float64),
                              sampling_frequency=float(sample_rate))
    try:
        pitch = sound.to_pitch_ac(time_step=HOP_SECONDS, pitch_floor=PITCH_FLOOR_HZ,
                                  pitch_ceiling=PITCH_CEILING_HZ)
    except parselmouth.PraatError:  # shorter than one analysis window
        return None
    hz = np.asarray(pitch.selected_array["frequency"], dtype=np.float64)
    return float(np.median(hz[hz > 0])) if np.any(hz > 0) else None


def speaker_clusters(utterances: Sequence[Utterance], *, files_per_speaker: int = CLUSTER_FILES,
                     sample_rate: int = 16000) -> tuple[dict[str, str], float]:
    """Two clusters of speakers by voice pitch, for data without a group column.

    Each speaker's F0 is the median over up to ``files_per_speaker`` of its recordings (spread
    over them by id) of each recording's median F0 (Praat, through praat-parselmouth: extra
    ``explain``). Speakers are split in two where the within-cluster spread of log F0 is
    smallest (1-D 2-means, exact). Mostly a stand-in for gender; a crude one for children.

    Returns:
        ``({speaker: "low_f0" | "high_f0"}, boundary_hz)``; speakers without any voiced frame
        are left out.

    Raises:
        MissingExtraError: Without praat-parselmouth.
        EmovoxError: If fewer than two speakers have voiced speech.
    """
    require("parselmouth", "explain")
    by_speaker: dict[str, list[Utterance]] = {}
    for u in sorted(utterances, key=lambda u: u.id):
        by_speaker.setdefault(u.speaker, []).append(u)
    f0: dict[str, float] = {}
    for speaker, items in sorted(by_speaker.items()):
        step = max(1.0, len(items) / files_per_speaker)
        chosen = [items[int(j * step)] for j in range(min(len(items), files_per_speaker))]
        values = []
        for u in chosen:
            try:
                x = audio.load(u.path, sample_rate, start=u.start, duration=u.duration)
            except EmovoxError:
                continue  # an unreadable file says nothing about the voice
            value = _median_f0(x, sample_rate)
            if value is not None:
                values.append(value)
        if values:
            f0[speaker] = float(np.median(values))
    if len(f0) < 2:
        raise EmovoxError(f"speaker_cluster needs at least 2 speakers with voiced speech "
                          f"({len(f0)} found)")
    names = sorted(f0, key=lambda s: f0[s])
    logs = np.log([f0[s] for s in names])
    costs = [logs[:j].var() * j + logs[j:].var() * (len(logs) - j) for j in range(1, len(logs))]
    split = 1 + int(np.argmin(costs))
    boundary = float(np.sqrt(f0[names[split - 1]] * f0[names[split]]))
    return ({s: ("low_f0" if j < split else "high_f0") for j, s in enumerate(names)}, boundary)


# --- the two sources -----------------------------------------------------------------------


def _training_corpora(recognizer: Recognizer) -> list[str]:
    data = recognizer.model.info.get("training_data")
    corpora = data.get("corpora") if isinstance(data, Mapping) else None
    if isinstance(corpora, Mapping | list | tuple):
        return sorted(str(c) for c in corpora)
    return []


def _predicted_label(p: Prediction, classes: Sequence[str]) -> str:
    """The most probable of the classes scored; ``"silence"`` when no speech was found."""
    if not p.probabilities:
        return SILENCE
    return max(classes, key=lambda c: p.probabilities.get(c, 0.0))


def _groups_of(utterances: Sequence[Utterance], group: str
               ) -> tuple[list[str | None], list[str]]:
    """Each utterance's group (an error if none has one), and notes on how they were made."""
    notes = []
    if group == SPEAKER_CLUSTER:
        clusters, boundary = speaker_clusters(utterances)
        values = [clusters.get(u.speaker) for u in utterances]
        unvoiced = len({u.speaker for u in utterances} - set(clusters))
        notes.append(f"speaker_cluster: speakers split in two by their median F0 at "
                     f"{boundary:.0f} Hz (low_f0 below, high_f0 above)"
                     + (f"; {unvoiced} speakers without voiced speech left out" if unvoiced
                        else ""))
    else:
        values = group_values(utterances, group)
    if all(v is None for v in values):
        raise EmovoxError(f"no utterance has a value in the group column '{group}'")
    return values, notes


def audit_model(
    recognizer: Recognizer,
    utterances: Sequence[Utterance],
    *,
    group: str = DEFAULT_GROUP,
    n_boot: int = N_BOOT,
    seed: int = 0,
    min_speakers: int = MIN_SPEAKERS,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Audit a model on labelled utterances: each file predicted alone, then :func:`report`.

    Scored on the classes the model was trained on that the set has (as ``emovox evaluate``):
    other utterances are left out, and the prediction is the most probable of those classes.
    A recording the model finds silent counts as a wrong answer (``"silence"``); one that
    cannot be read is left out and counted (``excluded["failed"]``).

    Args:
        recognizer: The model, as users run it (training statistics: each file alone).
        utterances: The labelled set (its speakers should be unseen by the model: a note says
            when the model's checkpoint names the set's corpus among its training data).
        group: The group column (see :func:`group_columns`).
        n_boot: Bootstrap replicates.
        seed: Seed of the bootstrap.
        min_speakers: Smallest group judged.
        progress: Called as ``progress(done, total)`` while recordings are predicted.

    Returns:
        :func:`report`'s dict plus ``"group_by"``, ``"corpora"``, ``"source"`` (``{"kind":
        "model", "labels", "trained_on"}``) and ``"excluded"`` (``{"class_not_scored",
        "no_group", "failed", "failures"}``: counts, and the first failures' messages).

    Raises:
        EmovoxError: On a missing group column, or if no utterance has a class the model knows.
    """
    trained = set(recognizer.model.info.get("trained_classes") or recognizer.labels)
    present = {u.label for u in utterances}
    classes = [c for c in recognizer.labels if c in trained and c in present]
    if not classes:
        raise EmovoxError(f"no utterance has a class the model knows "
                          f"({', '.join(recognizer.labels)})")
    scored = sorted((u for u in utterances if u.label in classes), key=lambda u: u.id)
    values, group_notes = _groups_of(scored, group)  # a missing column fails first
    kept = [u for u, g in zip(scored, values, strict=True) if g is not None]
    groups = [str(g) for g in values if g is not None]
    whole = [i for i, u in enumerate(kept) if u.start == 0.0 and u.duration is None]
    results: dict[int, Prediction] = dict(zip(
        whole, recognizer.predict_files([kept[i].path for i in whole], progress=progress),
        strict=True))
    for i, u in enumerate(kept):
        if i not in results:  # a segment of a longer file: classified as a signal
            try:
                wave = audio.load(u.path, recognizer.sample_rate, start=u.start,
                                  duration=u.duration)
                results[i] = recognizer.predict_signal(wave, recognizer.sample_rate)
            except EmovoxError as exc:
                results[i] = Prediction.failed(u.path, str(exc))
    ok = [i for i in range(len(kept)) if results[i].error is None]
    failures = [f"{kept[i].path}: {results[i].error}" for i in range(len(kept))
                if results[i].error is not None]
    if not ok:
        raise EmovoxError(f"no recording could be predicted ({failures[0]})")
    doc = report([str(kept[i].label) for i in ok],
                 [_predicted_label(results[i], classes) for i in ok],
                 [kept[i].speaker for i in ok], [groups[i] for i in ok], classes,
                 n_boot=n_boot, seed=seed, min_speakers=min_speakers)
    doc["notes"][:0] = group_notes
    corpora = sorted({u.corpus for u in kept})
    trained_on = _training_corpora(recognizer)
    seen = [c for c in corpora if c in trained_on]
    if seen:
        doc["notes"].insert(0, f"the model was trained on {', '.join(seen)}: these are its "
                            "training recordings, not unseen speakers; audit a cross-validation "
                            "run (--results) for held-out speakers")
    return {
        "group_by": group,
        "corpora": corpora,
        "source": {"kind": "model", "labels": list(recognizer.labels),
                   "trained_on": trained_on or None},
        **doc,
        "excluded": {"class_not_scored": len(utterances) - len(scored),
                     "no_group": len(scored) - len(kept),
                     "failed": len(failures), "failures": failures[:10]},
    }


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EmovoxError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EmovoxError(f"{path}: unreadable {what} ({exc})") from None
    if not isinstance(doc, dict):
        raise EmovoxError(f"{path}: not a {what} (a JSON object expected)")
    return doc


def read_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A cross-validation ``results.json`` (``emovox cv``), checked for what an audit needs.

    Raises:
        EmovoxError: If it is missing, unreadable or not a cv results file.
    """
    doc = _read_json(Path(path), "cv results file")
    missing = [key for key in ("corpus", "labels", "folds") if key not in doc]
    if missing:
        raise EmovoxError(f"{path}: not an `emovox cv` results file (no {', '.join(missing)})")
    return doc


def audit_results(
    path: str | os.PathLike[str],
    utterances: Sequence[Utterance],
    *,
    group: str = DEFAULT_GROUP,
    n_boot: int = N_BOOT,
    seed: int = 0,
    min_speakers: int = MIN_SPEAKERS,
) -> dict[str, Any]:
    """Audit a cross-validation run from its stored predictions for held-out speakers.

    Reads ``results.json`` and the ``folds/fold_K.json`` beside it of every fold it lists;
    each fold file holds the predictions for that fold's test speakers (``[{"id", "label",
    "probabilities"}]``). The truth, speaker and group of each id come from ``utterances``,
    the corpus the run was made on (loaded again with all its classes). The classes are the
    run's labels; the prediction is the fold model's label, as the run scored it.

    Args:
        path: The run's ``results.json``.
        utterances: The corpus the run was made on.
        group: The group column (see :func:`group_columns`).
        n_boot: Bootstrap replicates.
        seed: Seed of the bootstrap.
        min_speakers: Smallest group judged.

    Returns:
        :func:`report`'s dict plus ``"group_by"``, ``"corpora"``, ``"source"`` (``{"kind":
        "cv_results", "results", "recipe", "protocol", "fold_seed", "folds",
        "missing_folds", "git_revision"}``) and ``"excluded"`` (``{"not_in_corpus",
        "no_group", "label_not_in_run"}``).

    Raises:
        EmovoxError: If a file is missing or malformed, a fold predicts a speaker that is
            not among its test speakers or an id twice, no predicted id is in the corpus, or
            on a missing group column.
    """
    results = Path(path)
    doc = read_results(results)
    classes = [str(c) for c in doc["labels"]]
    by_id = {u.id: u for u in utterances}
    kept: list[Utterance] = []
    pred: list[str] = []
    seen: set[str] = set()
    not_in_corpus = outside = 0
    folds = []
    for entry in doc["folds"]:
        fold = entry.get("fold") if isinstance(entry, dict) else None
        file = results.parent / "folds" / f"fold_{fold}.json"
        record = _read_json(file, "fold file")
        if not isinstance(record.get("predictions"), list):
            raise EmovoxError(f"{file}: no predictions in this fold file (written by an emovox "
                              "older than the per-utterance records)")
        tested = set(record.get("test_speakers") or ())
        folds.append(fold)
        for item in record["predictions"]:
            u = by_id.get(str(item.get("id")))
            if u is None:
                not_in_corpus += 1
                continue
            if u.speaker not in tested:
                raise EmovoxError(f"{file}: {u.id} is of speaker {u.speaker}, not one of the "
                                  f"fold's test speakers")
            if u.id in seen:
                raise EmovoxError(f"{file}: {u.id} is predicted in two folds")
            seen.add(u.id)
            if u.label not in classes:
                outside += 1
                continue
            kept.append(u)
            pred.append(str(item.get("label")))
    if not kept:
        raise EmovoxError(f"{results}: none of its {not_in_corpus} predicted ids is in the "
                          "corpus given (give --root of the corpus the run was made on)")
    values, group_notes = _groups_of(kept, group)
    rows = [i for i, g in enumerate(values) if g is not None]
    grouped = [kept[i] for i in rows]
    out = report([str(u.label) for u in grouped], [pred[i] for i in rows],
                 [u.speaker for u in grouped], [str(values[i]) for i in rows], classes,
                 n_boot=n_boot, seed=seed, min_speakers=min_speakers)
    out["notes"][:0] = group_notes
    if not_in_corpus:
        out["notes"].insert(0, f"{not_in_corpus} predicted ids are not in the corpus given "
                            "(left out): is it the copy the run was made on?")
    if doc.get("missing_folds"):
        out["notes"].insert(0, f"the run is incomplete: folds {doc['missing_folds']} are "
                            "missing, the audit covers the others' test speakers")
    return {
        "group_by": group,
        "corpora": sorted({u.corpus for u in grouped}),
        "source": {"kind": "cv_results", "results": str(results), "recipe": doc.get("recipe"),
                   "protocol": doc.get("protocol"), "fold_seed": doc.get("fold_seed"),
                   "folds": folds, "missing_folds": doc.get("missing_folds") or [],
                   "git_revision": doc.get("git_revision")},
        **out,
        "excluded": {"not_in_corpus": not_in_corpus, "no_group": len(kept) - len(grouped),
                     "label_not_in_run": outside},
    }


# --- output --------------------------------------------------------------------------------


def _with_ci(value: float | None, ci: Sequence[float] | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    cells = [list(header)] + [list(r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _source_line(doc: Mapping[str, Any]) -> str:
    source = doc.get("source") or {}
    if source.get("kind") == "cv_results":
        folds = ", ".join(str(f) for f in source.get("folds") or [])
        return (f"cross-validation run {source.get('results')} (recipe {source.get('recipe')}, "
                f"protocol {source.get('protocol')}, folds {folds}): held-out speakers")
    if source.get("kind") == "model":
        return f"model {source.get('model', '')}".rstrip()
    return "given predictions"


def render_text(doc: Mapping[str, Any]) -> str:
    """A readable report: per-group scores with intervals, per-class TPR, the gaps, notes."""
    boot = doc["bootstrap"]
    corpora = ", ".join(doc.get("corpora") or []) or "the set"
    lines = [f"Fairness by {doc.get('group_by', 'group')}: {_source_line(doc)} on {corpora}",
             f"{doc['n']} recordings, {doc['n_speakers']} speakers; classes "
             f"{', '.join(doc['classes'])}"]
    if boot["n_boot"]:
        lines.append(f"[lo, hi]: {boot['confidence']:g} % interval, {boot['n_boot']} bootstrap "
                     f"resamples of the speakers within each group (seed {boot['seed']})")
    if doc.get("notes"):
        lines += ["Notes:"] + [f"- {note}" for note in doc["notes"]]
    lines.append("")
    groups = doc["groups"]
    judged = [g for g, e in groups.items() if not e.get("too_small")]
    rows = []
    for g, e in groups.items():
        if e.get("too_small"):
            rows.append([g, str(e["n_speakers"]), str(e["n"]), "too few speakers to judge", "",
                         ""])
        else:
            rows.append([g, str(e["n_speakers"]), str(e["n"]), _with_ci(e["ua"], e["ua_ci"]),
                         _with_ci(e["wa"], e["wa_ci"]),
                         _with_ci(e["macro_f1"], e["macro_f1_ci"])])
    lines += _table(rows, ["group", "speakers", "recordings", "UA %", "WA %", "macro-F1 %"])
    o = doc["overall"]
    lines += [f"all: UA {o['ua']:.1f}  WA {o['wa']:.1f}  macro-F1 {o['macro_f1']:.1f}", ""]
    gaps = doc["gaps"]
    if judged:
        lines.append("TPR (recall) by class, %")
        per_class = gaps.get("tpr_gap_per_class") or {}
        per_class_ci = gaps.get("tpr_gap_per_class_ci") or {}
        rows = [[c, *[_with_ci(groups[g]["tpr"][c], groups[g]["tpr_ci"][c]) for g in judged],
                 _with_ci(per_class.get(c), per_class_ci.get(c))] for c in doc["classes"]]
        lines += _table(rows, ["class", *judged, "gap (points)"]) + [""]
    lines.append("Gaps between groups, percentage points")
    if gaps.get("tpr_gap") is None and gaps.get("dp_gap") is None:
        lines.append("  none: fewer than two groups can be judged")
    else:
        for key, title in (("tpr_gap", "TPR gap (mean over classes)"),
                           ("dp_gap", "demographic parity gap (largest over classes)"),
                           ("equalised_odds", "equalised odds (largest over classes of the "
                            "TPR or FPR gap)")):
            line = f"  {title}: {_with_ci(gaps.get(key), gaps.get(f'{key}_ci'))}"
            if gaps.get(f"{key}_bias") is not None:
                line += f"; noise alone adds about {gaps[f'{key}_bias']:.1f}"
            if key == "dp_gap" and gaps.get("truth_rate_gap"):
                line += (f" (the groups' true class mix alone differs by up to "
                         f"{gaps['truth_rate_gap']:.1f})")
            lines.append(line)
    excluded = {k: v for k, v in (doc.get("excluded") or {}).items()
                if isinstance(v, int) and v}
    if excluded:
        lines += ["", "Left out: " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                               for k, v in excluded.items())]
    return "\n".join(lines) + "\n"


def plot_report(doc: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Per-group UA with its interval, and per-class TPR per group with intervals, as a PNG.

    Raises:
        MissingExtraError: Without matplotlib (extra ``plot``).
    """
    from .files import save_png

    require("matplotlib", "plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = {g: e for g, e in doc["groups"].items() if not e.get("too_small")}
    classes = list(doc["classes"])
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(4 + 0.9 * len(classes) * max(1, len(groups)) / 2 + 3, 4),
        gridspec_kw={"width_ratios": [1, max(2, len(classes) / 2)]})

    def errors(values: Sequence[float | None], cis: Sequence[Sequence[float] | None]
               ) -> np.ndarray:
        return np.array([[0.0, 0.0] if v is None or ci is None else [v - ci[0], ci[1] - v]
                         for v, ci in zip(values, cis, strict=True)]).T.reshape(2, -1)

    names = list(groups)
    uas = [groups[g]["ua"] for g in names]
    left.bar(range(len(names)), [v or 0.0 for v in uas],
             color=[f"C{j % 10}" for j in range(len(names))],
             yerr=errors(uas, [groups[g]["ua_ci"] for g in names]), capsize=4)
    left.set_xticks(range(len(names)), names, rotation=30 if len(names) > 4 else 0)
    left.set_ylabel("UA (%)")
    left.set_ylim(0, 105)
    left.set_title(f"UA by {doc.get('group_by', 'group')}")
    width = 0.8 / max(1, len(names))
    for j, g in enumerate(names):
        values = [groups[g]["tpr"][c] for c in classes]
        xs = np.arange(len(classes)) + (j - (len(names) - 1) / 2) * width
        right.bar(xs, [v or 0.0 for v in values], width, label=g,
                  yerr=errors(values, [groups[g]["tpr_ci"][c] for c in classes]), capsize=2)
    right.set_xticks(range(len(classes)), classes, rotation=30)
    right.set_ylabel("TPR (%)")
    right.set_ylim(0, 115)  # room for the legend above the bars
    gap = doc["gaps"].get("tpr_gap")
    right.set_title("TPR by class" + (f" (mean gap {gap:.1f} points)" if gap is not None else ""))
    if names:
        right.legend(fontsize=7, loc="upper right", ncol=min(len(names), 6))
    small = [g for g, e in doc["groups"].items() if e.get("too_small")]
    caption = (f"error bars: {doc['bootstrap']['confidence']:g} % speaker-bootstrap intervals"
               + (f"; too small to judge: {', '.join(small)}" if small else ""))
    fig.text(0.5, 0.005, caption, ha="center", fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    save_png(fig, path)
