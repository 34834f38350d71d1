"""The robustness harness: how a model holds up under conditions it did not train on.

:func:`evaluate_conditions` runs a :class:`~emovox.inference.Recognizer` over a labelled set of
utterances, once on the clean audio and once per recording condition of
:mod:`emovox.conditions` (noise at graded SNR, reverberation, telephone, lossy codecs, gain,
clipping), each under every normalisation ("adaptation") mode asked for:

- ``"none"``: the training statistics; a file gets the answer it gets alone (the default of
  ``emovox predict``);
- ``"file"``: each recording's own statistics;
- ``"speaker"``: each speaker's statistics over the set (``--group-by speaker``);
- ``"batch"``: the statistics of the whole set as one group.

The corrupted audio is written to temporary float WAV files and classified by
:meth:`~emovox.inference.Recognizer.predict_files`, exactly as users run the model: every
number is what ``emovox predict`` would answer. Each (utterance, condition) gets its own random
stream (:func:`emovox.conditions.condition_rng`), so results never depend on order.

Scores per condition and mode: UA, WA, macro-F1, ECE (calibration, on the probabilities
renormalised over the classes scored), the drop against clean, how many recordings were called
silence or failed, and the largest excess of a class's share of the predictions over its share
of the truth (a model that answers one class for everything shows it at once). Scoring is on
the classes the model and the set share, as :func:`emovox.experiment.evaluate_model` does.

:func:`single_emotion_speakers` builds the composition trap of per-speaker normalisation: a
subset in which every speaker shows one emotion only.

Example:
    >>> from emovox import Recognizer, Utterance, example_path
    >>> utts = [Utterance("demo/1", example_path(), "demo", "demo/a", "neutral")]
    >>> doc = evaluate_conditions(Recognizer.default(), utts, ["telephone"], seed=0)
    >>> sorted(doc["results"]), doc["results"]["clean"]["none"]["ua"]
    (['clean', 'telephone'], 100.0)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from . import audio
from .conditions import Condition, available_codecs, condition_rng, conditions_named
from .errors import ConfigError, EmovoxError
from .evaluate import add_reliability, classification_scores, ece_of, reliability
from .files import write_text
from .inference import SILENCE, Recognizer
from .types import Prediction, Utterance

__all__ = [
    "ADAPTATIONS",
    "evaluate_conditions",
    "merge_folds",
    "plot_results",
    "render_report",
    "single_emotion_speakers",
]

#: Normalisation modes the harness can compare (see the module docstring).
ADAPTATIONS = ("none", "file", "speaker", "batch")

Progress = Callable[[str], None]


def single_emotion_speakers(utterances: Sequence[Utterance], seed: int = 0) -> list[Utterance]:
    """A subset in which every speaker shows one emotion only (classes as balanced as possible).

    Speakers are taken in a seeded random order; each gets the class (among those it has) that
    has been given to the fewest speakers so far, and keeps only its utterances of that class.
    Standardising such a speaker with its own statistics erases the emotion it shows.
    """
    by_speaker: dict[str, dict[str, list[Utterance]]] = {}
    for u in utterances:
        if u.label is not None:
            by_speaker.setdefault(u.speaker, {}).setdefault(str(u.label), []).append(u)
    rng = np.random.default_rng(seed)
    order = sorted(by_speaker)
    rng.shuffle(order)
    given: dict[str, int] = {}
    kept: list[Utterance] = []
    for speaker in order:
        classes = sorted(by_speaker[speaker], key=lambda c: (given.get(c, 0), c))
        choice = classes[0]
        given[choice] = given.get(choice, 0) + 1
        kept.extend(by_speaker[speaker][choice])
    return sorted(kept, key=lambda u: u.id)


def _scored_classes(recognizer: Recognizer, utterances: Sequence[Utterance]) -> list[str]:
    trained = set(recognizer.model.info.get("trained_classes") or recognizer.labels)
    present = {u.label for u in utterances}
    return [c for c in recognizer.labels if c in trained and c in present]


def _score(predictions: Sequence[Prediction], truth: Sequence[str],
           classes: Sequence[str]) -> dict[str, Any]:
    """Scores of one run over the classes scored (silence and failures count as wrong)."""
    labels: list[str] = []
    probs: list[np.ndarray] = []
    rows: list[int] = []
    silent = failed = 0
    for i, p in enumerate(predictions):
        if p.error is not None:
            failed += 1
            labels.append("(failed)")
            continue
        if not p.probabilities:
            silent += 1
            labels.append(SILENCE)
            continue
        q = np.array([p.probabilities[c] for c in classes], dtype=np.float64)
        q = q / q.sum() if q.sum() > 0 else np.full(len(classes), 1.0 / len(classes))
        labels.append(classes[int(np.argmax(q))])
        probs.append(q)
        rows.append(i)
    names = list(classes) + [x for x in (SILENCE, "(failed)") if x in labels]
    scores = classification_scores(list(truth), labels, names)
    hist = reliability([classes.index(truth[i]) for i in rows],
                       np.stack(probs) if probs else np.zeros((0, len(classes))))
    ece = ece_of(hist)
    share_true = {c: truth.count(c) / len(truth) for c in classes}
    share_pred = {c: labels.count(c) / len(labels) for c in classes}
    excess = {c: 100.0 * (share_pred[c] - share_true[c]) for c in classes}
    worst = max(excess, key=lambda c: excess[c])
    # What the `uncertain` flag (the recognizer's min_confidence) tells apart.
    spoken = [i for i, p in enumerate(predictions) if p.error is None and p.probabilities]
    unsure = [i for i in spoken if predictions[i].uncertain]
    sure = [i for i in spoken if not predictions[i].uncertain]

    def right(rows: list[int]) -> float | None:
        return round(100.0 * sum(labels[i] == truth[i] for i in rows) / len(rows), 2) \
            if rows else None

    return {
        "uncertain_share": round(100.0 * len(unsure) / max(1, len(spoken)), 2),
        "accuracy_sure": right(sure), "accuracy_uncertain": right(unsure),
        "ua": scores["ua"], "wa": scores["wa"], "macro_f1": scores["macro_f1"],
        "ece": 100.0 * ece, "n": len(truth), "silence": silent, "failed": failed,
        "per_class_recall": {c: scores["per_class_recall"][c] for c in classes},
        "prediction_share": {c: round(100.0 * share_pred[c], 2) for c in classes},
        "truth_share": {c: round(100.0 * share_true[c], 2) for c in classes},
        "max_share_excess": {"class": worst, "points": round(excess[worst], 2)},
        "confusion": scores["confusion"], "labels": names, "reliability": hist,
    }


def _group_options(mode: str, paths: Sequence[str],
                   utterances: Sequence[Utterance]) -> dict[str, Any]:
    if mode == "none":
        return {}
    if mode == "file":
        return {"group_by": "file"}
    if mode == "speaker":
        return {"group_by": "speaker",
                "speakers": {os.path.abspath(p): u.speaker
                             for p, u in zip(paths, utterances, strict=True)}}
    if mode == "batch":
        return {"group_by": lambda _path: "batch"}
    raise ConfigError(f"unknown adaptation {mode!r} (known: {', '.join(ADAPTATIONS)})")


def evaluate_conditions(
    recognizer: Recognizer,
    utterances: Sequence[Utterance],
    conditions: Sequence[str | Condition] = ("all",),
    *,
    adaptations: Sequence[str] = ("none",),
    seed: int = 0,
    babble: Sequence[np.ndarray | Utterance] | None = None,
    workdir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Score a model on clean audio and under each condition, for each adaptation mode.

    Args:
        recognizer: The model, as users run it.
        utterances: The labelled test set (its speakers should be unseen by the model).
        conditions: Condition names or families of :data:`emovox.conditions.CONDITIONS`
            (``"all"``, ``"babble"``, ``"reverb_0.6s"``, ...) or :class:`Condition` objects.
        adaptations: Normalisation modes, a subset of :data:`ADAPTATIONS`.
        seed: Base seed of every corruption.
        babble: Speech the babble noise is built from: signals at the recognizer's rate, or
            utterances (read at that rate); other speakers, ideally of another corpus. Babble
            conditions need it.
        workdir: Where the corrupted audio is written (default: a temporary folder, removed).
        progress: Called with a line of text as each run finishes.

    Returns:
        ``{"classes", "n", "conditions": {name: {kind, strength, params}},
        "skipped_conditions": {name: reason}, "adaptations", "seed", "results": {condition:
        {mode: scores}}, "drop": {condition: {mode: {ua, wa, macro_f1}}}}``: ``"clean"``
        first; scores in percent (ECE too).

    Raises:
        ConfigError: On an unknown condition or adaptation, or babble without speech.
        EmovoxError: If no utterance has a class the model knows.
    """
    for mode in adaptations:
        if mode not in ADAPTATIONS:
            raise ConfigError(f"unknown adaptation {mode!r} (known: {', '.join(ADAPTATIONS)})")
    names = [str(c) for c in conditions if not isinstance(c, Condition)]
    chosen = [c for c in conditions if isinstance(c, Condition)]
    chosen += conditions_named(names) if names else []
    # Codecs this machine's libsndfile cannot encode are left out, and the results say so.
    codecs = available_codecs()
    skipped = [c.name for c in chosen if c.kind == "codec" and c.params["format"] not in codecs]
    chosen = [c for c in chosen if c.name not in skipped]
    if any(c.params.get("noise") == "babble" for c in chosen) and not babble:
        raise ConfigError("babble conditions need speech to build the babble from (babble=...)")
    classes = _scored_classes(recognizer, utterances)
    known = sorted((u for u in utterances if u.label in classes), key=lambda u: u.id)
    if not known:
        raise EmovoxError("no utterance of the test set has a class the model knows")
    truth = [str(u.label) for u in known]
    sr = recognizer.sample_rate
    talkers = [audio.load(b.path, sr, start=b.start, duration=b.duration)
               if isinstance(b, Utterance) else np.asarray(b, dtype=np.float32)
               for b in babble or ()]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        clean = [audio.load(u.path, sr, start=u.start, duration=u.duration) for u in known]
        for condition in [None, *chosen]:
            name = "clean" if condition is None else condition.name
            folder = Path(tmp) / name
            folder.mkdir()
            paths = []
            for k, (u, signal) in enumerate(zip(known, clean, strict=True)):
                if condition is not None:
                    rng = condition_rng(seed, u.id, condition.name)
                    signal = condition.apply(signal, sr, rng, babble=talkers)
                path = folder / f"{k:06d}.wav"
                sf.write(path, np.asarray(signal, dtype=np.float32), sr, subtype="FLOAT")
                paths.append(str(path))
            results[name] = {}
            for mode in adaptations:
                predictions = recognizer.predict_files(paths, **_group_options(mode, paths, known))
                results[name][mode] = _score(predictions, truth, classes)
                if progress is not None:
                    r = results[name][mode]
                    progress(f"{name:<14} {mode:<8} UA {r['ua']:5.1f}  WA {r['wa']:5.1f}  "
                             f"ECE {r['ece']:4.1f}")
    drop = {name: {mode: {k: round(results["clean"][mode][k] - r[k], 2)
                          for k in ("ua", "wa", "macro_f1")}
                   for mode, r in runs.items()}
            for name, runs in results.items() if name != "clean"}
    return {
        "classes": classes,
        "n": len(known),
        "conditions": {c.name: {"kind": c.kind, "strength": c.strength, "params": dict(c.params)}
                       for c in chosen},
        "skipped_conditions": {name: "this machine's libsndfile cannot encode it"
                               for name in skipped},
        "adaptations": list(adaptations),
        "seed": seed,
        "results": results,
        "drop": drop,
    }


def fold_drop_se(clean: Sequence[float], condition: Sequence[float]) -> float | None:
    """Standard error of a UA drop over folds (``None`` with fewer than two folds).

    The spread of each fold's own drop (clean UA minus the condition's, paired by fold)
    divided by the square root of the number of folds.

    Example:
        >>> fold_drop_se([80.0, 70.0, 90.0], [76.0, 68.0, 84.0])
        1.155
    """
    drops = np.asarray(clean, dtype=np.float64) - np.asarray(condition, dtype=np.float64)
    if drops.size < 2:
        return None
    return round(float(drops.std(ddof=1) / np.sqrt(drops.size)), 3)


def merge_folds(docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Cross-validation: the mean over folds of each score, per condition and mode.

    Each fold's model is tested on its own (unseen) speakers, as in ``emovox cv``. A fold's test
    speakers may lack a class (an EmoDB speaker without ``disgust``): the merged classes are the
    union, a class's recall is the mean over the folds that have it, shares count 0 where a
    fold does not score the class, and the confusion matrices are summed over the union.

    Returns:
        The layout of :func:`evaluate_conditions` (``n`` summed), plus ``"folds"``, each
        fold's UA under ``"fold_ua"`` and each drop's standard error over the folds
        (``drop[condition][mode]["ua_se"]``, :func:`fold_drop_se`).
    """
    if not docs:
        raise EmovoxError("no fold to merge")
    first = docs[0]
    classes = [c for c in first["classes"]]
    for d in docs[1:]:
        classes += [c for c in d["classes"] if c not in classes]
    results: dict[str, dict[str, Any]] = {}
    for name, runs in first["results"].items():
        results[name] = {}
        for mode in runs:
            rows = [d["results"][name][mode] for d in docs]
            labels = list(classes) + [x for x in (SILENCE, "(failed)")
                                      if any(x in r["labels"] for r in rows)]
            confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
            for r in rows:
                index = [labels.index(x) for x in r["labels"]]
                confusion[np.ix_(index, index)] += np.asarray(r["confusion"], dtype=np.int64)

            def mean_over(key: str, c: str, rows: list[Any] = rows, missing: Any = 0.0) -> float:
                values = [r[key].get(c, missing) for r in rows]
                present = [v for v in values if v is not None]
                return float(np.mean(present)) if present else float("nan")

            merged: dict[str, Any] = {key: float(np.mean([r[key] for r in rows]))
                                      for key in ("ua", "wa", "macro_f1", "ece")}
            if all("reliability" in r for r in rows):
                # ECE over every fold's predictions together (a fold of 40 recordings alone has
                # a large upward bias); the mean of the folds' own ECEs is kept beside it.
                pooled = add_reliability([r["reliability"] for r in rows])
                merged["ece_fold_mean"] = merged["ece"]
                merged["ece"] = 100.0 * ece_of(pooled)
                merged["reliability"] = pooled
            merged.update(
                n=int(sum(r["n"] for r in rows)), silence=int(sum(r["silence"] for r in rows)),
                failed=int(sum(r["failed"] for r in rows)),
                fold_ua=[round(r["ua"], 2) for r in rows],
                per_class_recall={c: mean_over("per_class_recall", c, missing=None)
                                  for c in classes},
                prediction_share={c: mean_over("prediction_share", c) for c in classes},
                truth_share={c: mean_over("truth_share", c) for c in classes},
                confusion=confusion.tolist(), labels=labels)
            excess = {c: merged["prediction_share"][c] - merged["truth_share"][c]
                      for c in classes}
            worst = max(excess, key=lambda c: excess[c])
            merged["max_share_excess"] = {"class": worst, "points": round(excess[worst], 2)}
            for key in ("uncertain_share", "accuracy_sure", "accuracy_uncertain"):
                values = [r[key] for r in rows if r.get(key) is not None]
                merged[key] = round(float(np.mean(values)), 2) if values else None
            results[name][mode] = merged
    drop = {name: {mode: {**{k: round(results["clean"][mode][k] - r[k], 2)
                             for k in ("ua", "wa", "macro_f1")},
                          "ua_se": fold_drop_se(results["clean"][mode]["fold_ua"],
                                                r["fold_ua"])}
                   for mode, r in runs.items()}
            for name, runs in results.items() if name != "clean"}
    return {**{k: v for k, v in first.items() if k not in ("results", "drop", "n", "classes")},
            "classes": classes, "n": int(sum(d["n"] for d in docs)), "folds": len(docs),
            "results": results, "drop": drop}


def render_report(doc: Mapping[str, Any], title: str = "Robustness") -> str:
    """A markdown report: one table per adaptation mode, a row per condition."""
    lines = [f"# {title}", ""]
    if doc.get("model"):
        lines += [f"Model: `{doc['model']}`  "]
    if doc.get("test"):
        lines += [f"Test set: {doc['test']} ({doc['n']} utterances; classes "
                  f"{', '.join(doc['classes'])})  "]
    lines += [f"Seed: {doc['seed']}", ""]
    for mode in doc["adaptations"]:
        lines += [f"## Normalisation: {mode}", "",
                  "| condition | UA | WA | macro-F1 | ECE | ΔUA vs clean (± its standard error "
                  "over folds) | most over-predicted "
                  "class (points) | uncertain % (accuracy sure / uncertain) | silence / failed |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name, runs in doc["results"].items():
            r = runs[mode]
            drop = {} if name == "clean" else doc["drop"][name][mode]
            delta = "" if name == "clean" else f"{-drop['ua']:+.1f}" + (
                f" ± {drop['ua_se']:.1f}" if drop.get("ua_se") is not None else "")
            worst = r["max_share_excess"]
            lines.append(f"| {name} | {r['ua']:.1f} | {r['wa']:.1f} | {r['macro_f1']:.1f} | "
                         f"{r['ece']:.1f} | {delta} | {worst['class']} ({worst['points']:+.1f}) "
                         f"| {_uncertain_cell(r)} | {r['silence']} / {r['failed']} |")
        lines.append("")
    for key in ("command", "git_revision", "date"):
        if doc.get(key):
            lines.append(f"{key.replace('_', ' ').capitalize()}: `{doc[key]}`  ")
    return "\n".join(lines) + "\n"


def _uncertain_cell(r: Mapping[str, Any]) -> str:
    if r.get("uncertain_share") is None:  # results written before the flag existed
        return "-"

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    return (f"{r['uncertain_share']:.0f} ({pct(r.get('accuracy_sure'))} / "
            f"{pct(r.get('accuracy_uncertain'))})")


def plot_results(doc: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """UA against strength per condition family (one panel per adaptation mode), as a PNG.

    Raises:
        MissingExtraError: Without matplotlib (extra ``plot``).
    """
    from .errors import require
    from .files import save_png

    require("matplotlib", "plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Mildest first: high SNR, short RT60, small gain, clipping near the peak.
    severity = {"noise": lambda x: -x, "reverb": lambda x: x, "gain": abs, "clip": lambda x: -x}
    families: dict[str, list[tuple[float, float, str]]] = {}
    singles: list[str] = []
    for name, c in doc["conditions"].items():
        if c["strength"] is None:
            singles.append(name)
        else:
            family = c["params"].get("noise") or c["kind"]
            strength = float(c["strength"])
            order = severity.get(c["kind"], lambda x: x)(strength)
            families.setdefault(family, []).append((order, strength, name))
    modes = list(doc["adaptations"])
    fig, axes = plt.subplots(1, len(modes), figsize=(5.5 * len(modes), 4), squeeze=False)
    for ax, mode in zip(axes[0], modes, strict=True):
        clean = doc["results"]["clean"][mode]["ua"]
        ax.axhline(clean, color="black", linewidth=1, linestyle="--", label="clean")
        for family, points in sorted(families.items()):
            points.sort()
            xs = list(range(len(points)))
            uas = [doc["results"][n][mode]["ua"] for _, _, n in points]
            ax.plot(xs, uas, marker="o", label=family)
            for x, (_, strength, _), ua in zip(xs, points, uas, strict=True):
                ax.annotate(f"{strength:g}", (x, ua), fontsize=6, textcoords="offset points",
                            xytext=(2, 2))
        for k, name in enumerate(singles):
            ax.scatter([k], [doc["results"][name][mode]["ua"]], marker="s", label=name)
        ax.set_title(f"normalisation: {mode}")
        ax.set_xlabel("strength step, mildest first (labels: SNR dB, RT60 s, gain dB, level)")
        ax.set_xticks(range(max((len(p) for p in families.values()), default=1)))
        ax.set_ylabel("UA (%)")
        ax.set_ylim(0, 100)
    axes[0, -1].legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    save_png(fig, path)


def write_outputs(doc: Mapping[str, Any], out_dir: str | os.PathLike[str], title: str) -> None:
    """``results.json``, ``report.md`` and ``robustness.png`` (if matplotlib is there)."""
    import json

    from .errors import MissingExtraError

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "results.json", json.dumps(doc, indent=1))
    write_text(out / "report.md", render_report(doc, title))
    try:
        plot_results(doc, out / "robustness.png")
    except MissingExtraError:
        pass
