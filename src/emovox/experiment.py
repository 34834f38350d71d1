"""Cross-validation and cross-corpus evaluation runs, with results files and reports.

:func:`run_cv` trains and tests one recipe on every fold of a corpus's speaker-independent
protocol. Each finished fold is written at once to ``OUT/folds/fold_K.json`` (atomically), so a
long run split with ``folds=[...]`` over several processes, or interrupted, loses nothing; the
merged ``OUT/results.json`` and ``OUT/report.md`` are rewritten from whatever folds exist and
say which folds are still missing.

``results.json``: ``{"corpus", "protocol", "fold_seed", "recipe", "config", "command",
"git_revision", "date", "machine", "transductive", "labels", "folds": [{"fold",
"test_speakers", "wa", "ua", "macro_f1", "confusion", ...}], "missing_folds", "mean": {"wa",
"ua", "macro_f1"}}`` with scores in percent. Each fold file also keeps every test utterance's
prediction (``predictions: [{"id", "label", "probabilities"}]``), so anyone can re-score it.

Scores come from :meth:`emovox.bundle.Bundle.classify`, the path ``emovox predict`` uses: a
fold's saved model (``--save-models``) gives each test file, through the recognizer, the
probabilities its fold record holds.

The test speakers of the k-fold protocols depend only on ``fold_seed`` (``emovox cv
--fold-seed``, default 0), never on the training seed (``optim.seed``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import Bundle, save_checkpoint
from .config import TrainConfig, frontend_options
from .dataset import FeatureBank, assess_utterances, fit_normalizer, predict_utterances
from .errors import EmovoxError
from .evaluate import (
    LDL_MEASURES,
    ccc,
    classification_scores,
    expected_calibration_error,
    ldl_measures,
)
from .features import build_frontend
from .files import provenance, save_png, write_text
from .folds import make_folds
from .labels import ordered
from .targets import DIMENSIONS, distribution_matrix, vad_matrix
from .train import fit
from .types import Utterance

__all__ = ["assess_utterances", "evaluate_model", "merge_results", "predict_utterances",
           "render_report", "run_cv", "score_line"]


def _dimension_scores(dimensions: np.ndarray | None,
                      test: Sequence[Utterance]) -> dict[str, Any]:
    """CCC per dimension the model predicts, on the test recordings that have a value."""
    if dimensions is None:
        return {}
    truth = vad_matrix(test)
    out = {}
    for k, name in enumerate(DIMENSIONS):
        have = np.isfinite(truth[:, k]) & np.isfinite(dimensions[:, k])
        if have.sum() >= 2:
            out[name] = round(ccc(truth[have, k], dimensions[have, k]), 4)
    return {"ccc": out} if out else {}


#: Groups a fold's scores are also split by, where the test recordings carry them (gender, and
#: the age group and personality EM2LDL reports its measures by).
GROUP_KEYS = ("gender", "age_group", "mbti_single")


def _group_of(utt: Utterance, key: str) -> str | None:
    value = utt.gender if key == "gender" else utt.extra.get(key)
    return None if value in (None, "") else str(value)


def _group_scores(model: Bundle, probs: np.ndarray, dimensions: np.ndarray | None,
                  test: Sequence[Utterance]) -> dict[str, Any]:
    """The fold's UA, LDL measures and CCC per value of each group key the recordings have."""
    out: dict[str, Any] = {}
    for key in GROUP_KEYS:
        values = sorted({v for u in test if (v := _group_of(u, key)) is not None})
        if not values:  # a fold of one group still counts for that group (e.g. LOSO)
            continue
        out[key] = {}
        for value in values:
            idx = [k for k, u in enumerate(test) if _group_of(u, key) == value]
            part = [test[k] for k in idx]
            scores: dict[str, Any] = _scores(model, probs[idx], part) if model.labels else {}
            doc: dict[str, Any] = {
                "n": len(idx), **{k: scores[k] for k in ("ua", "ldl") if k in scores},
                **_dimension_scores(None if dimensions is None else dimensions[idx], part)}
            out[key][value] = doc
    return out


def _scores(model: Bundle, probs: np.ndarray, test: Sequence[Utterance]) -> dict[str, Any]:
    if not model.labels:  # a model of valence/arousal/dominance alone
        return {"wa": None, "ua": None, "macro_f1": None, "labels": [], "confusion": [],
                "n": len(test)}
    keep = [k for k, u in enumerate(test) if u.label]  # dimensional-only: no label to score
    if not keep:
        return {"wa": None, "ua": None, "macro_f1": None, "labels": model.labels,
                "confusion": [[0] * len(model.labels) for _ in model.labels], "n": 0}
    probs, test = probs[keep], [test[k] for k in keep]
    pred = [model.labels[i] for i in probs.argmax(axis=1)]
    scores = classification_scores([str(u.label) for u in test], pred, model.labels)
    known = [k for k, u in enumerate(test) if u.label in model.labels]
    if known:
        truth = np.array([model.labels.index(str(test[k].label)) for k in known])
        scores["ece"] = round(100 * expected_calibration_error(truth, probs[known]), 2)
    soft = [k for k in known if test[k].extra.get("label_distribution")]
    if soft:  # against the raters' distributions (on the model's classes), where given
        target = distribution_matrix([test[k] for k in soft], model.labels)
        scores["ldl"] = {name: round(v, 4) for name, v in
                         ldl_measures(target, probs[soft]).items()}
        scores["n_ldl"] = len(soft)
    return scores


def _member_uas(model: Bundle, bank: FeatureBank,
                test: Sequence[Utterance]) -> list[float] | None:
    """Test UA of each member of an ensemble on its own (``None`` for one network)."""
    members = getattr(model.network, "members", None)
    if members is None or model.finetuned:
        return None
    uas = []
    for member in members:
        alone = dataclasses.replace(model, network=member)
        uas.append(round(_scores(alone, predict_utterances(alone, bank, test), test)["ua"], 2))
    return uas


def _predictions(model: Bundle, probs: np.ndarray, test: Sequence[Utterance],
                 dimensions: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Every test utterance's prediction, as the fold record keeps it."""
    out = []
    for i, (u, p) in enumerate(zip(test, probs, strict=True)):
        doc: dict[str, Any] = {
            "id": u.id, "label": model.labels[int(np.argmax(p))] if model.labels else None,
            "probabilities": {name: round(float(v), 6)
                              for name, v in zip(model.labels, p, strict=True)}}
        if dimensions is not None:
            doc.update({name: round(float(v), 4) for name, v in
                        zip(DIMENSIONS, dimensions[i], strict=True) if np.isfinite(v)})
        out.append(doc)
    return out


def _with_text(model: Bundle, audio: np.ndarray, test: Sequence[Utterance],
               cache_dir: str | Path | None, progress: bool,
               acoustic: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """A text-fusion model's answer for test utterances, and what text did.

    The test transcripts come from the model's ``text.source`` (stated, or ASR of the test
    audio); ``acoustic``: their acoustic vectors, for a model with a joint head. The record
    holds the audio-alone, text-alone and (with a joint head) late-fusion scores beside the
    model's.
    """
    from .fusion import fused_answer, utterance_transcripts
    from .textfit import word_matrix

    heard = utterance_transcripts(test, model.config.text.source, cache_dir=cache_dir,
                                  threads=model.config.optim.threads, progress=progress)
    texts = [text for text, _ in heard]
    words = has_words = None
    if acoustic is not None and model.info["text"].get("joint_words"):
        from .fusion import _minilm

        words, has_words = word_matrix(test, [w for _, w in heard], model.frontend_config,
                                       _minilm(model.config.optim.threads),
                                       cache_dir=cache_dir, progress=progress)
    answer = fused_answer(model, audio, texts, acoustic, words=words, has_words=has_words)
    keys = ("ua", "wa", "macro_f1", "ece")
    audio_scores = _scores(model, audio, test)
    record: dict[str, Any] = {"fusion": model.info["text"].get("fusion", "late"),
                              "weight": float(model.info["text"]["weight"]),
                              "rule": model.info["text"].get("rule", "mean"),
                              "n_with_text": int(answer.has_text.sum()),
                              "audio": {k: audio_scores.get(k) for k in keys}}
    if record["fusion"] == "embedding":
        late = _scores(model, answer.late, test)
        record["late"] = {k: late.get(k) for k in keys}
        record["joint_used"] = bool(model.info["text"].get("joint"))
    rows = [i for i in range(len(test)) if answer.has_text[i]]
    if rows:
        alone = _scores(model, answer.text[rows], [test[i] for i in rows])
        record["text_alone"] = {k: alone.get(k) for k in ("ua", "wa", "macro_f1", "n")}
    return answer.fused, record


def score_line(scores: Mapping[str, Any]) -> str:
    """Scores (a fold's, or the mean) as one line: UA, WA, macro-F1 and CCC, those present."""
    parts = []
    if scores.get("ua") is not None:
        parts.append(f"UA {scores['ua']:.2f}  WA {scores['wa']:.2f}  "
                     f"macro-F1 {scores['macro_f1']:.2f}")
    if scores.get("ccc"):
        parts.append("CCC " + ", ".join(f"{k} {v:.3f}" for k, v in scores["ccc"].items()))
    text = scores.get("text")
    if text and text.get("audio", {}).get("ua") is not None:
        how = ("joint head" if text.get("joint_used") else
               f"{text.get('rule', 'mean')} rule, weight {text['weight']:.2f}")
        parts.append(f"(fused with text, {how}; audio alone UA "
                     f"{text['audio']['ua']:.2f})")
    return "  ".join(parts) or "nothing to score"


def run_cv(
    config: TrainConfig,
    utterances: Sequence[Utterance],
    *,
    corpus: str,
    protocol: str,
    out_dir: str | Path,
    folds: Sequence[int] | None = None,
    k: int | None = None,
    fold_seed: int = 0,
    cache_dir: str | Path | None = None,
    argv: Sequence[str] | None = None,
    progress: bool = True,
    save_models: bool = False,
) -> dict[str, Any]:
    """Run one recipe over a protocol's folds; write per-fold files and the merged results.

    Args:
        config: The recipe.
        utterances: The corpus (already filtered to the recipe's classes).
        corpus: Corpus name (recorded).
        protocol: Protocol name (see :data:`emovox.folds.PROTOCOLS`).
        out_dir: Output folder (created).
        folds: Fold numbers to run (default: all).
        k: Folds of the k-fold protocols.
        fold_seed: Seed of the k-fold protocols' speaker assignment (recorded; independent of
            the training seed, so changing ``optim.seed`` never changes the test speakers).
        cache_dir: Feature cache root.
        argv: The command line to record (default: ``sys.argv``).
        progress: Progress on stderr.
        save_models: Also write ``OUT/models/fold_K.pt``.

    Returns:
        The merged results document (also written to ``OUT/results.json``).
    """
    if config.text.fusion != "none":  # the text extra before any feature is extracted
        from .text import check_text_extra

        check_text_extra()
    from .distributed import world

    main = world().main  # under torchrun only rank 0 writes
    out = Path(out_dir)
    if main:
        (out / "folds").mkdir(parents=True, exist_ok=True)
    all_folds = make_folds(utterances, protocol, k=k, seed=fold_seed)
    chosen = make_folds(utterances, protocol, k=k, seed=fold_seed, select=folds)
    labels = list(ordered(str(u.label) for u in utterances if u.label))
    frontend = build_frontend(frontend_options(config))
    bank = FeatureBank(frontend, sorted(utterances, key=lambda u: u.id),
                       Path(cache_dir) if cache_dir else None, config.data.cache_dtype, progress)
    meta = provenance(argv)
    for fold in chosen:
        if progress:
            sys_log(f"fold {fold.index}/{len(all_folds)}: test {', '.join(fold.test_speakers)}")
        started = time.monotonic()
        model = fit(config, fold.train, fold.valid, labels=labels, extra=fold.test,
                    frontend=frontend, bank=bank, run_dir=out / "runs" / f"fold_{fold.index}",
                    progress=progress)
        joint = bool((model.info.get("text") or {}).get("joint"))
        said = assess_utterances(model, bank, fold.test, vectors=joint)
        probs = said.probabilities
        text_record = None
        if model.info.get("text"):  # a fused model answers with its fused probabilities
            probs, text_record = _with_text(model, probs, fold.test, cache_dir, progress,
                                            said.embeddings if joint else None)
        scores = {**_scores(model, probs, fold.test),
                  **_dimension_scores(said.dimensions, fold.test)}
        if text_record is not None:
            scores["text"] = text_record
        groups = _group_scores(model, probs, said.dimensions, fold.test)
        if groups:
            scores["groups"] = groups
        record = {
            "fold": fold.index,
            "fold_seed": fold_seed,
            "test_speakers": fold.test_speakers,
            "valid_speakers": fold.valid_speakers,
            # what the model trained and selected on (classic models and ``train_on_valid``
            # runs train on the validation speakers too)
            "n_train": model.info.get("n_train", len(fold.train)),
            "n_valid": model.info.get("n_valid", len(fold.valid)),
            **scores,
            "valid_ua": model.scores.get("valid_ua"),
            "member_ua": _member_uas(model, bank, fold.test),
            "best_epoch": model.info.get("best_epoch"),
            # training taken over from a finished or interrupted run's last.pt (per member)
            "resumed_after_epoch": _resumed(model.info),
            "covada": model.info.get("covada"),  # what CO-VADA picked and converted, if on
            "train_seconds": round(time.monotonic() - started, 1),
            **meta,
            "predictions": _predictions(model, probs, fold.test, said.dimensions),
        }
        if main:
            write_text(out / "folds" / f"fold_{fold.index}.json", json.dumps(record, indent=1))
            if save_models:
                save_checkpoint(model, out / "models" / f"fold_{fold.index}.pt")
        if progress:
            sys_log(f"fold {fold.index}: " + score_line(scores))
    if not main:
        return {}
    return merge_results(out, config=config, corpus=corpus, protocol=protocol,
                         n_folds=len(all_folds), labels=labels, argv=argv, fold_seed=fold_seed)


def _resumed(info: dict[str, Any]) -> Any:
    """The epoch each network's training resumed after (``None``: it ran from the start).

    A list for an ensemble, one entry per member.
    """
    if "members" in info:
        return [m.get("resumed_after_epoch") for m in info["members"]]
    return info.get("resumed_after_epoch")


def sys_log(message: str) -> None:
    """Print a progress line to stderr."""
    import sys

    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def merge_results(out_dir: str | Path, *, config: TrainConfig, corpus: str, protocol: str,
                  n_folds: int, labels: Sequence[str],
                  argv: Sequence[str] | None = None, fold_seed: int = 0) -> dict[str, Any]:
    """Merge ``OUT/folds/fold_*.json`` into ``OUT/results.json`` and ``OUT/report.md``.

    The mean is taken over the folds present; ``missing_folds`` lists the others, and the
    report says the table is incomplete rather than filling them in.
    """
    out = Path(out_dir)
    records = []
    for path in sorted((out / "folds").glob("fold_*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise EmovoxError(f"{path}: unreadable fold result ({exc})") from None
    records.sort(key=lambda r: r["fold"])
    present = {r["fold"] for r in records}
    missing = [i for i in range(1, n_folds + 1) if i not in present]
    scored = [r for r in records if r.get("ua") is not None]
    mean: dict[str, Any] = {key: float(np.mean([r[key] for r in scored])) if scored else None
                            for key in ("wa", "ua", "macro_f1")}
    if records and all(r.get("ccc") for r in records):
        mean["ccc"] = {name: float(np.mean([r["ccc"][name] for r in records]))
                       for name in DIMENSIONS if all(name in r["ccc"] for r in records)}
    if records and all("ece" in r for r in records):
        mean["ece"] = float(np.mean([r["ece"] for r in records]))
    if records and all("ldl" in r for r in records):
        mean["ldl"] = {name: float(np.mean([r["ldl"][name] for r in records]))
                       for name in LDL_MEASURES}
    if scored and all(r.get("text") for r in scored):
        mean["text"] = {"weight": float(np.mean([r["text"]["weight"] for r in scored])),
                        "audio_ua": float(np.mean([r["text"]["audio"]["ua"] for r in scored]))}
    groups = _merge_groups(records)
    if groups:
        mean["groups"] = groups
    fold_keys = ("fold", "test_speakers", "valid_speakers", "n_train", "n_valid", "n", "wa", "ua",
                 "macro_f1", "per_class_recall", "confusion", "valid_ua", "member_ua", "best_epoch",
                 "train_seconds", "command", "git_revision", "date", "machine", "ece", "ldl",
                 "n_ldl", "ccc", "groups", "text")
    doc = {
        "corpus": corpus,
        "protocol": protocol,
        "fold_seed": fold_seed,
        "recipe": config.name,
        "config": config.to_dict(),
        **provenance(argv),
        "transductive": config.data.normalization == "speaker",
        "labels": list(labels),
        "folds": [{k: r.get(k) for k in fold_keys} for r in records],
        "n_folds": n_folds,
        "missing_folds": missing,
        "mean": mean,
        "confusion": _sum_confusion(records, len(labels)),
    }
    write_text(out / "results.json", json.dumps(doc, indent=1))
    write_text(out / "report.md", render_report(doc))
    _plot_confusion(doc, out / "confusion.png")
    return doc


def _merge_groups(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per group value, the folds' scores averaged, each fold weighted by its recordings.

    A fold without recordings of a group does not count for it.
    """
    out: dict[str, Any] = {}
    for r in records:
        for key, values in (r.get("groups") or {}).items():
            for value, doc in values.items():
                out.setdefault(key, {}).setdefault(value, []).append(doc)
    merged: dict[str, Any] = {}
    for key, values in out.items():
        merged[key] = {}
        for value, docs in values.items():
            n = np.array([d["n"] for d in docs], dtype=float)
            entry: dict[str, Any] = {"n": int(n.sum()), "folds": len(docs)}

            def wmean(get: Any, docs: list = docs, n: np.ndarray = n) -> float | None:
                have = [(get(d), w) for d, w in zip(docs, n, strict=True) if get(d) is not None]
                if not have:
                    return None
                return float(sum(v * w for v, w in have) / sum(w for _, w in have))

            if any(d.get("ua") is not None for d in docs):
                entry["ua"] = wmean(lambda d: d.get("ua"))
            if all("ldl" in d for d in docs):
                entry["ldl"] = {m: wmean(lambda d, m=m: d["ldl"][m]) for m in LDL_MEASURES}
            names = {name for d in docs for name in d.get("ccc", {})}
            if names:
                entry["ccc"] = {name: wmean(lambda d, name=name: d.get("ccc", {}).get(name))
                                for name in sorted(names)}
            merged[key][value] = entry
    return {key: values for key, values in merged.items() if len(values) > 1}


def _sum_confusion(records: Sequence[dict[str, Any]], n: int) -> list[list[int]]:
    total = np.zeros((n, n), dtype=np.int64)
    for r in records:
        total += np.asarray(r["confusion"], dtype=np.int64)
    return total.tolist()


def render_report(doc: dict[str, Any]) -> str:
    """A markdown report of a results document: per-fold table, mean, confusion matrix."""
    lines = [f"# {doc['recipe']} on {doc['corpus']} ({doc['protocol']})", ""]
    if doc["missing_folds"]:
        lines += [f"**Incomplete: folds {', '.join(map(str, doc['missing_folds']))} still "
                  f"missing; the mean covers {len(doc['folds'])} of {doc['n_folds']} folds.**", ""]
    if doc["transductive"]:
        lines += ["Transductive: features standardised per speaker with each test speaker's own "
                  "unlabelled statistics.", ""]
    dims = list(doc["mean"].get("ccc") or {})
    lines += ["| fold | test speakers | WA | UA | macro-F1 |" + "".join(
        f" CCC {d} |" for d in dims), "| --- | --- | --- | --- | --- |" + " --- |" * len(dims)]

    def cell(value: Any, bold: bool = False, digits: int = 2) -> str:
        text = "-" if value is None else f"{value:.{digits}f}"
        return f"**{text}**" if bold and value is not None else text

    for f in doc["folds"]:
        lines.append(f"| {f['fold']} | {' '.join(s.split('/')[-1] for s in f['test_speakers'])} "
                     f"| {cell(f['wa'])} | {cell(f['ua'])} | {cell(f['macro_f1'])} |" + "".join(
                         f" {cell((f.get('ccc') or {}).get(d), digits=3)} |" for d in dims))
    m = doc["mean"]
    if m["ua"] is not None or dims:
        lines.append(f"| **mean** | | {cell(m['wa'], True)} | {cell(m['ua'], True)} | "
                     f"{cell(m['macro_f1'], True)} |" + "".join(
                         f" {cell(m['ccc'][d], True, 3)} |" for d in dims))
    if m.get("text"):
        lines += ["", f"Fused with a text classifier (mean weight {m['text']['weight']:.2f}, "
                      f"learned per fold on its training speakers); the same folds' audio "
                      f"alone: UA {m['text']['audio_ua']:.2f}."]
    labels = doc["labels"]
    lines += ["", "Confusion matrix (all folds; rows = reference, columns = prediction):", "",
              "| | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for name, row in zip(labels, doc["confusion"], strict=True):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    lines += ["", "![confusion matrix](confusion.png)", "",
              f"Command: `{doc['command']}`  ", f"Revision: {doc['git_revision']}  ",
              f"Date: {doc['date']}  ", f"Machine: {doc['machine'].get('processor')}, "
              f"{doc['machine'].get('cpu_count')} cores"]
    return "\n".join(lines) + "\n"


def _plot_confusion(doc: dict[str, Any], path: Path) -> None:
    """Row-normalised confusion-matrix plot (skipped quietly without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    cm = np.asarray(doc["confusion"], dtype=float)
    if cm.size == 0 or cm.sum() == 0:
        return
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    labels = doc["labels"]
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(labels), 0.8 + 0.6 * len(labels)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{100 * norm[i, j]:.0f}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ua = doc["mean"]["ua"]
    ax.set_title(f"{doc['recipe']} on {doc['corpus']}" + (f", UA {ua:.1f}" if ua else ""))
    fig.tight_layout()
    save_png(fig, path)


def evaluate_model(model: Bundle, utterances: Sequence[Utterance], *,
                   cache_dir: str | Path | None = None,
                   progress: bool = True) -> dict[str, Any]:
    """Score a trained model on a (usually other) corpus, on the classes both share.

    Utterances whose label the model was not trained on are left out; predictions are
    restricted to the classes present in the evaluation set (renormalised probabilities), so a
    7-class model tested on a 6-class corpus is not penalised for a class the corpus cannot
    contain, nor a 6-class model for a class it never saw.
    """
    trained = set(model.info.get("trained_classes") or model.labels)
    known = [u for u in utterances if u.label in model.labels and u.label in trained]
    if not known:
        raise EmovoxError("no utterance of the evaluation corpus has a class the model knows")
    classes = [c for c in model.labels if any(u.label == c for u in known)]
    options = dict(model.frontend_config)
    frontend = build_frontend(options)
    bank = FeatureBank(frontend, known, Path(cache_dir) if cache_dir else None,
                       model.config.data.cache_dtype, progress)
    if model.normalizer.mode == "speaker":
        model.normalizer.stats.update(fit_normalizer("speaker", bank, [], known).stats)
    joint = bool((model.info.get("text") or {}).get("joint"))
    said = assess_utterances(model, bank, known, vectors=joint)
    probs = said.probabilities
    if model.info.get("text"):
        probs = _with_text(model, probs, known, cache_dir, progress,
                           said.embeddings if joint else None)[0]
    cols = [model.labels.index(c) for c in classes]
    pred = [classes[i] for i in probs[:, cols].argmax(axis=1)]
    scores = classification_scores([str(u.label) for u in known], pred, classes)
    return {"classes": classes, "n_skipped": len(utterances) - len(known), **scores}
