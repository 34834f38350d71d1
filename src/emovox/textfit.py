"""Training audio + text fusion on the training speakers (``text.fusion``; issue #20).

A recipe with ``text.fusion = "late"`` (or ``"embedding"``) trains, beside its acoustic model
and on the same training speakers only (:func:`attach_text`, called by
:func:`emovox.train.fit`):

- **a text classifier**: a logistic regression on all-MiniLM-L6-v2 sentence embeddings of the
  training recordings' transcripts, classes weighted evenly (:func:`fit_text_head`);
- **the fusion rule and weight** ``w`` (:func:`emovox.fusion.combine`): speaker folds of the
  training data (``text.folds``), each held-out fold scored by an acoustic model and a text
  classifier fitted on the other folds (the recipe itself, so a neural recipe trains
  ``text.folds`` more times); the rule and grid weight (0, 0.05, ..., 1) with the lowest log
  loss of the fused out-of-fold probabilities win (ties: the earlier rule, then the smaller
  weight). ``text.rule`` and ``text.weight`` fix them instead;
- with ``text.fusion = "embedding"``, **a joint head**: a logistic regression on the acoustic
  vector the model classifies from beside the sentence embedding (and, with ``text.words``,
  the word level of :func:`emovox.fusion.word_level`), fitted on the training recordings
  with a transcript.

Recordings without a transcript are left out of the text classifier's and the joint head's
training and keep the audio probabilities when fused.

When it cannot help: on corpora that say the same sentences in every emotion (RAVDESS, EmoDB)
the text classifier scores every class evenly, so the fused model answers as the acoustic one;
``benchmarks/text_fusion.py`` measures both that and a corpus whose words do carry the emotion.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .bundle import LinearHead
from .dataset import FeatureBank, assess_utterances, predict_utterances
from .errors import EmovoxError, require
from .fusion import (
    RULES,
    Encoder,
    _minilm,
    fuse_matrix,
    head_to_dict,
    plain_frontend,
    utterance_transcripts,
    word_level,
)
from .ops import fit_temperature, softmax
from .types import Utterance, Word

if TYPE_CHECKING:
    from .bundle import Bundle
    from .config import TrainConfig

__all__ = ["WEIGHT_GRID", "attach_text", "fit_text_head", "word_matrix"]

#: The fusion weights tried on the training speakers' out-of-fold probabilities.
WEIGHT_GRID = tuple(round(0.05 * k, 2) for k in range(21))


class _Embeddings:
    """Sentence vectors of texts, each distinct text encoded once."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.known: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        new = sorted({t for t in texts if t and t not in self.known})
        if new:
            for t, v in zip(new, self.encoder(new), strict=True):
                self.known[t] = np.asarray(v, dtype=np.float64)
        return np.stack([self.known[t] for t in texts]) if texts else np.zeros((0, 1))


def fit_text_head(vectors: np.ndarray, labels: Sequence[str], classes: Sequence[str],
                  C: float = 1.0, seed: int = 0,  # noqa: N803 - scikit-learn's C
                  class_weight: str | None = "balanced") -> LinearHead:
    """A logistic regression on vectors and their labels (at least 2 classes), over ``classes``.

    A class it never saw gets no weight and a very low intercept.

    With ``class_weight = "balanced"`` (the text classifier's) every class weighs the same in
    the fit whatever its count, so an uninformative text scores every class evenly.
    """
    require("sklearn", "sklearn")
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(vectors, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    present = sorted({str(y) for y in labels}, key=list(classes).index)
    if len(present) < 2:
        raise EmovoxError(f"the text classifier needs transcripts of at least 2 emotions "
                          f"(these are all {present or ['none']})")
    # Balanced class weights: text that says nothing (the same sentence in every emotion)
    # gets even probabilities, not the training set's class frequencies, which the acoustic
    # model already carries; fusing them in again would tilt every answer towards the
    # frequent classes.
    clf = LogisticRegression(C=C, max_iter=3000, random_state=seed, class_weight=class_weight)
    clf.fit((x - mean) / scale, [str(y) for y in labels])
    coef = np.zeros((len(classes), x.shape[1]))
    intercept = np.full(len(classes), -30.0)
    raw_coef = clf.coef_ if len(clf.classes_) > 2 else np.vstack([-clf.coef_[0], clf.coef_[0]])
    raw_b = clf.intercept_ if len(clf.classes_) > 2 else np.array([-clf.intercept_[0],
                                                                   clf.intercept_[0]])
    if len(clf.classes_) == 2:  # a two-class fit is one logit: split it evenly
        raw_coef, raw_b = raw_coef / 2, raw_b / 2
    for j, name in enumerate(clf.classes_):
        k = list(classes).index(str(name))
        coef[k], intercept[k] = raw_coef[j], raw_b[j]
    return LinearHead(mean, scale, coef, intercept)


def word_matrix(utterances: Sequence[Utterance], words: Sequence[Sequence[Word]],
                frontend_config: Mapping[str, Any], encoder: Encoder, *,
                cache_dir: str | Path | None = None, progress: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:
    """The word-level vector of each utterance (zeros where it has none), and which have one.

    :func:`~emovox.fusion.word_level` on the frames of the model's frontend without
    conditioning (cached like any features).
    """
    frontend = plain_frontend(frontend_config)
    keep = [i for i, w in enumerate(words) if w]
    vectors: dict[int, np.ndarray] = {}
    if keep:
        bank = FeatureBank(frontend, [utterances[i] for i in keep],
                           Path(cache_dir) if cache_dir else None, "float16", progress)
        for i in keep:
            v = word_level(bank.get(utterances[i]), float(frontend.frame_seconds), words[i],
                           encoder)
            if v is not None:
                vectors[i] = v
    width = len(next(iter(vectors.values()))) if vectors else 0
    out = np.zeros((len(utterances), width))
    for i, v in vectors.items():
        out[i] = v
    has = np.array([i in vectors for i in range(len(utterances))], dtype=bool)
    return out, has


def _log_loss(probs: np.ndarray, truth: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(truth)), truth], 1e-12, None))))


def _speaker_folds(utterances: Sequence[Utterance], k: int) -> list[list[int]]:
    """``k`` groups of indices, whole speakers each, balanced by count (deterministic)."""
    by_speaker: dict[str, list[int]] = {}
    for i, u in enumerate(utterances):
        by_speaker.setdefault(u.speaker, []).append(i)
    groups: list[list[int]] = [[] for _ in range(k)]
    for speaker in sorted(by_speaker, key=lambda s: (-len(by_speaker[s]), s)):
        min(groups, key=len).extend(by_speaker[speaker])
    return [sorted(g) for g in groups if g]


def attach_text(config: TrainConfig, model: Bundle, train: Sequence[Utterance],
                bank: FeatureBank, *, cache_dir: str | Path | None = None,
                encoder: Encoder | None = None, progress: bool = True,
                refit: Callable[[Sequence[Utterance]], Bundle] | None = None) -> Bundle:
    """The trained model with a text classifier and a fusion weight (``info["text"]``).

    Args:
        config: The recipe (its ``text`` section).
        model: The acoustic model trained on ``train``.
        train: The training utterances (speakers the model trained on; never test speakers).
        bank: Their features.
        cache_dir: The transcript cache root for ASR.
        encoder: A sentence encoder (``None``: all-MiniLM-L6-v2).
        progress: Progress lines on stderr.
        refit: Trains the acoustic recipe on a subset of ``train`` (for the out-of-fold
            weight; required unless ``text.weight`` is set).

    Raises:
        EmovoxError: Fewer than 2 emotions among the transcribed training recordings.
    """
    section = config.text
    train = [u for u in train if u.label in model.labels]
    heard = utterance_transcripts(train, section.source, cache_dir=cache_dir,
                                  threads=config.optim.threads, progress=progress)
    texts = [text for text, _ in heard]
    has = np.array([bool(t) for t in texts])
    if progress:
        _log(f"text: {int(has.sum())} of {len(train)} training recordings have a transcript "
             f"(source {section.source})")
    if encoder is None:
        encoder = _minilm(config.optim.threads)
    embed = _Embeddings(encoder)
    classes = list(model.labels)
    truth = np.array([classes.index(str(u.label)) for u in train])

    def head_on(idx: Sequence[int]) -> LinearHead:
        keep = [i for i in idx if has[i]]
        return fit_text_head(embed([texts[i] for i in keep]), [str(train[i].label) for i in keep],
                             classes, section.C, config.optim.seed)

    head = head_on(range(len(train)))
    record: dict[str, Any] = {"fusion": section.fusion, "source": section.source,
                              "embedder": "all-MiniLM-L6-v2", "n_train": len(train),
                              "n_text": int(has.sum()), "head": head_to_dict(head)}
    joint_rows = [i for i in range(len(train)) if has[i]]
    if section.fusion == "embedding":
        if section.words:  # MATER's word level: only recordings with timed words
            words, has_words = word_matrix(train, [w for _, w in heard], model.frontend_config,
                                           embed, cache_dir=cache_dir, progress=progress)
            joint_rows = [i for i in joint_rows if has_words[i]]
    in_joint = set(joint_rows)

    def joint_inputs(acoustic_model: Bundle, idx: Sequence[int]) -> list[np.ndarray]:
        """The joint head's inputs of rows ``idx``: acoustic vector, sentence (, words)."""
        acoustic = assess_utterances(acoustic_model, bank, [train[i] for i in idx],
                                     vectors=True).embeddings
        if acoustic is None:
            raise EmovoxError("this model gives no acoustic vector for a joint text head")
        parts = [acoustic, embed([texts[i] for i in idx])]
        if section.words:
            parts.append(words[list(idx)])
        return parts

    def joint_on(acoustic_model: Bundle, idx: Sequence[int]) -> LinearHead:
        keep = [i for i in idx if i in in_joint]
        return fit_text_head(np.hstack(joint_inputs(acoustic_model, keep)),
                             [str(train[i].label) for i in keep], classes, section.C,
                             config.optim.seed, config.classic.class_weight)

    if section.fusion == "embedding":
        if len(joint_rows) < 2:
            raise EmovoxError("the joint text head needs training recordings with a "
                              "transcript" + (" and timed words" if section.words else ""))
        joint = joint_on(model, joint_rows)
        dims = [int(p.shape[1]) for p in joint_inputs(model, joint_rows[:1])]
        record.update(joint=head_to_dict(joint), joint_dims=dims, joint_words=bool(section.words),
                      n_joint=len(joint_rows))
        if progress:
            _log(f"text fusion: a joint head on the acoustic vector ({dims[0]}), the sentence "
                 f"embedding ({dims[1]})" + (f" and the word-level vector ({dims[2]})"
                                              if section.words else "")
                 + f", {len(joint_rows)} recordings")
    rules = RULES if section.rule == "auto" else (section.rule,)
    if section.weight is not None:
        record.update(weight=float(section.weight), rule=rules[0] if len(rules) == 1 else "mean",
                      weight_rule="given (text.weight)")
    else:
        if refit is None:
            raise EmovoxError("the fusion weight is learned by refitting the recipe: give refit")
        folds = _speaker_folds(train, section.folds)
        if len(folds) < 2:
            raise EmovoxError("learning the fusion weight needs training recordings of at "
                              "least 2 speakers (or set text.weight)")
        audio_oof = np.zeros((len(train), len(classes)))
        text_oof = np.zeros((len(train), len(classes)))
        joint_oof = np.full((len(train), len(classes)), np.nan)
        for n, held in enumerate(folds, 1):
            held_set = set(held)
            rest = [i for i in range(len(train)) if i not in held_set]
            if progress:
                _log(f"text fusion weight: training-speaker fold {n}/{len(folds)}")
            inner = refit([train[i] for i in rest])
            audio_oof[held] = _on_classes(inner, predict_utterances(inner, bank,
                                                                    [train[i] for i in held]),
                                          classes)
            try:
                inner_head = head_on(rest)
            except EmovoxError:  # too few transcribed emotions in this fold: audio alone
                text_oof[held] = audio_oof[held]
                continue
            with_text = [i for i in held if has[i]]
            if with_text:
                text_oof[with_text] = inner_head.predict_proba(embed([texts[i]
                                                                      for i in with_text]))
            scored = [i for i in held if i in in_joint]
            if section.fusion == "embedding" and scored:  # logits: calibrated below
                joint_oof[scored] = joint_on(inner, rest).logits(
                    np.hstack(joint_inputs(inner, scored)))
        from .evaluate import unweighted_accuracy

        curves: dict[str, dict[str, dict[str, float]]] = {}
        best: tuple[float, int, float, str] | None = None
        for order, rule in enumerate(rules):
            curves[rule] = {}
            for w in WEIGHT_GRID:
                fused = fuse_matrix(audio_oof, text_oof, has, w, rule)
                loss = round(_log_loss(fused, truth), 6)
                curves[rule][f"{w:.2f}"] = {"log_loss": round(loss, 4), "ua": round(
                    100 * unweighted_accuracy(truth, fused.argmax(axis=1)), 2)}
                key = (loss, order, w, rule)  # ties: the earlier rule, then the smaller weight
                if best is None or key[:3] < best[:3]:
                    best = key
        assert best is not None
        record.update(weight=best[2], rule=best[3], weight_rule=(
            f"lowest out-of-fold log loss over {len(folds)} training-speaker folds"
            + (f", of the rules {', '.join(rules)}" if len(rules) > 1 else "")), curve=curves)
        if section.fusion == "embedding":
            # the joint head answers only if, calibrated (a temperature fitted on the same
            # out-of-fold probabilities), it beats the late fusion out of fold
            late = fuse_matrix(audio_oof, text_oof, has, best[2], best[3])
            scored = ~np.isnan(joint_oof[:, 0])
            temperature = (fit_temperature(joint_oof[scored], truth[scored]) if scored.any()
                           else 1.0)
            answer = late.copy()
            answer[scored] = softmax(joint_oof[scored], temperature)
            loss = _log_loss(answer, truth)
            record["joint_check"] = {
                "log_loss": round(loss, 4), "late_log_loss": round(best[0], 4),
                "temperature": temperature,
                "ua": round(100 * unweighted_accuracy(truth, answer.argmax(axis=1)), 2),
                "late_ua": round(100 * unweighted_accuracy(truth, late.argmax(axis=1)), 2),
                "used": bool(loss < best[0])}
            if loss < best[0]:
                record["joint"] = {**record["joint"], "temperature": temperature}
            else:
                record.pop("joint")
            if progress:
                _log(f"text fusion: the joint head's out-of-fold log loss {loss:.4f} against "
                     f"the late fusion's {best[0]:.4f}: "
                     + ("used" if loss < best[0] else "not used (late fusion answers)"))
    if progress:
        _log(f"text fusion: rule {record['rule']}, weight {record['weight']:.2f} "
             f"({record['weight_rule']})")
    return dataclasses.replace(model, info={**model.info, "text": record})


def _on_classes(model: Bundle, probs: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """``probs`` over ``model.labels`` rearranged to ``classes`` (absent classes 0)."""
    if list(model.labels) == list(classes):
        return probs
    out = np.zeros((len(probs), len(classes)))
    for j, name in enumerate(model.labels):
        if name in classes:
            out[:, list(classes).index(name)] = probs[:, j]
    return out


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
