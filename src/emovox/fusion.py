"""Audio + text fusion learned on the training speakers (``text.fusion``; issue #20, item 2).

A recipe with ``text.fusion = "late"`` trains, beside its acoustic model and on the same
training speakers only:

- **a text classifier**: a logistic regression on all-MiniLM-L6-v2 sentence embeddings of the
  training recordings' transcripts (:class:`TextHead`, plain arrays in the model file);
- **the fusion rule and weight** ``w`` (:func:`combine`: the weighted mean of the two
  probability vectors, the same with each branch's share scaled per recording by its
  certainty ``exp(-entropy)``, or log-linear pooling): speaker folds of the training data
  (``text.folds``), each held-out fold scored by an acoustic model and a text classifier
  fitted on the other folds (the recipe itself, so a neural recipe trains ``text.folds`` more
  times); the rule and grid weight (0, 0.05, ..., 1) with the lowest log loss of the fused
  out-of-fold probabilities win (ties: the earlier rule, then the smaller weight).
  ``text.rule`` and ``text.weight`` fix them instead.

Recordings without a transcript (none given, or ASR heard no words) count as audio alone in
every step: they are left out of the text classifier's training and keep the audio
probabilities when fused. Where the transcript comes from is ``text.source``: ``"transcript"``
(what the corpus or manifest states, ``Utterance.extra["transcript"]``), ``"asr"`` (speech
recognition, :class:`~emovox.asr.Transcriber`, cached by file content) or ``"auto"`` (the
stated one where there is one, else ASR).

At prediction time (``emovox predict --with-text`` with such a model) the trained classifier
replaces the zero-shot prototype score of :mod:`emovox.text` and the learned weight its default
weight; :meth:`TextHead.scorer` gives the same interface as :class:`emovox.text.TextScorer`.

When it cannot help: on corpora that say the same sentences in every emotion (RAVDESS, EmoDB)
the text classifier learns the class prior and the weight goes to (about) 0, so the fused model
answers as the acoustic one; ``benchmarks/text_fusion.py`` measures both that and a corpus
whose words do carry the emotion.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError, EmovoxError, MissingExtraError, require
from .types import Utterance, Word

if TYPE_CHECKING:
    from .bundle import Bundle
    from .config import TrainConfig
    from .dataset import FeatureBank

__all__ = ["RULES", "WEIGHT_GRID", "FusedAnswer", "TextHead", "TrainedTextScorer",
           "attach_text", "combine", "fuse_matrix", "fused_answer", "plain_frontend",
           "utterance_texts", "utterance_transcripts", "word_level", "word_matrix"]

#: The fusion weights tried on the training speakers' out-of-fold probabilities.
WEIGHT_GRID = tuple(round(0.05 * k, 2) for k in range(21))

Encoder = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class TextHead:
    """A logistic regression on sentence embeddings: ``softmax(((v - mean) / scale) @ coef + b)``.

    Attributes:
        labels: Output classes, in order (the acoustic model's).
        mean, scale: Standardisation of the embedding ``[D]``.
        coef: ``[D, C]``; a class absent from the text training data keeps weight 0 and
            intercept -inf-like (-30), so it never gains probability from text.
        intercept: ``[C]``.
    """

    labels: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        """Class probabilities ``[N, C]`` of embeddings ``[N, D]``."""
        z = ((np.asarray(vectors, dtype=np.float64) - self.mean) / self.scale) @ self.coef
        z = z + self.intercept
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists (the model file's JSON)."""
        return {"labels": list(self.labels), "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept.tolist()}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> TextHead:
        """Read :meth:`to_dict` back."""
        return cls(tuple(doc["labels"]), np.asarray(doc["mean"], dtype=np.float64),
                   np.asarray(doc["scale"], dtype=np.float64),
                   np.asarray(doc["coef"], dtype=np.float64),
                   np.asarray(doc["intercept"], dtype=np.float64))

    def scorer(self, encoder: Encoder | None = None, threads: int | None = None
               ) -> TrainedTextScorer:
        """A text scorer (the :class:`emovox.text.TextScorer` interface) on this head."""
        return TrainedTextScorer(self, encoder, threads)


class TrainedTextScorer:
    """Text emotion scores from a trained :class:`TextHead` (``scores`` / ``score``).

    Args:
        head: The trained head.
        encoder: Texts -> unit sentence vectors (``None``: all-MiniLM-L6-v2, loaded now).
        threads: Torch threads of the sentence encoder.
    """

    def __init__(self, head: TextHead, encoder: Encoder | None = None,
                 threads: int | None = None) -> None:
        from .text import _minilm

        self.head = head
        self.labels = head.labels
        self.encoder = encoder or _minilm(threads)

    def scores(self, texts: Sequence[str]) -> list[dict[str, float] | None]:
        """The text score of each text (``None`` for an empty one), in order."""
        kept = [i for i, t in enumerate(texts) if t and t.strip()]
        out: list[dict[str, float] | None] = [None] * len(texts)
        if kept:
            probs = self.head.predict_proba(self.encoder([texts[i].strip() for i in kept]))
            for i, row in zip(kept, probs, strict=True):
                out[i] = {name: float(p) for name, p in zip(self.labels, row, strict=True)}
        return out

    def score(self, text: str) -> dict[str, float] | None:
        """The text score of one text (``None`` when it is empty)."""
        return self.scores([text])[0]


# --- transcripts of training and test utterances ---

def utterance_transcripts(utterances: Sequence[Utterance], source: str, *,
                          cache_dir: str | Path | None = None, threads: int | None = None,
                          progress: bool = False, transcriber: Any = None
                          ) -> list[tuple[str, tuple[Word, ...]]]:
    """Each utterance's transcript per ``source``: ``(text, timed words)``.

    ``"transcript"``: ``extra["transcript"]`` (no word times); ``"asr"``: speech recognition
    (whole files through the cache, a stretch of a file without it; its words are timed from
    the stretch's start); ``"auto"``: the stated transcript, else ASR. A recording ASR fails on
    gets ``("", ())`` (audio alone), never an error.

    Raises:
        ConfigError: On an unknown source.
        MissingExtraError: When ASR is needed without the ``text`` extra.
    """
    if source not in ("auto", "transcript", "asr"):
        raise ConfigError(f"text.source must be auto, transcript or asr (got {source!r})")
    out: list[tuple[str, tuple[Word, ...]]] = [
        ("" if source == "asr" else str(u.extra.get("transcript") or "").strip(), ())
        for u in utterances]
    todo = [i for i, (t, _) in enumerate(out) if not t and source != "transcript"]
    if not todo:
        return out
    if transcriber is None:
        from .asr import Transcriber

        transcriber = Transcriber(threads=threads, cache_dir=cache_dir, use_sidecar=False)
    for n, i in enumerate(todo, 1):
        u = utterances[i]
        try:
            if u.start == 0 and u.duration is None:
                heard = transcriber.transcribe_file(u.path)
            else:
                from . import audio

                wave = audio.load(u.path, 16000, max_seconds=None)
                a = int(round(u.start * 16000))
                b = len(wave) if u.duration is None else a + int(round(u.duration * 16000))
                heard = transcriber.transcribe_signal(wave[a:b])
            out[i] = (heard.text.strip(), tuple(getattr(heard, "words", ()) or ()))
        except MissingExtraError:
            raise
        except EmovoxError:
            out[i] = ("", ())
        if progress and (n % 100 == 0 or n == len(todo)):
            print(f"transcripts (ASR): {n}/{len(todo)}", file=sys.stderr, flush=True)
    return out


def utterance_texts(utterances: Sequence[Utterance], source: str, **options: Any) -> list[str]:
    """The text of :func:`utterance_transcripts` (``""`` where there is none)."""
    return [text for text, _ in utterance_transcripts(utterances, source, **options)]


def word_level(frames: np.ndarray, frame_seconds: float, words: Sequence[Word],
               encoder: Encoder) -> np.ndarray | None:
    """MATER-style word-level vector of one recording (``None`` without timed words).

    ``frames``: the frontend's frames of the unconditioned recording (``[T, D]``, or
    ``[L, T, D]``: the last layer is used), frame ``j`` starting at ``j * frame_seconds``.
    Per word, the mean of the frames it spans (at least the one at its midpoint) and its
    sentence-encoder embedding; the recording's vector is both averaged over its words (each
    word counts once, however long), side by side ``[D + E]``.
    """
    timed = [w for w in words if w.text.strip() and w.end >= w.start]
    if not timed or frame_seconds <= 0:
        return None
    x = np.asarray(frames, dtype=np.float64)
    x = x[-1] if x.ndim == 3 else x
    n = x.shape[0]
    pooled = []
    for w in timed:
        a = min(n - 1, max(0, int(np.floor(w.start / frame_seconds))))
        b = min(n, max(a + 1, int(np.ceil(w.end / frame_seconds))))
        pooled.append(x[a:b].mean(axis=0))
    text = np.asarray(encoder([w.text.strip() for w in timed]), dtype=np.float64)
    return np.concatenate([np.mean(pooled, axis=0), text.mean(axis=0)])


def plain_frontend(frontend_config: Mapping[str, Any]) -> Any:
    """The model's frontend without conditioning (no trim, level or gate).

    Its frames lie in the recording's own time, as :func:`word_level` needs.
    """
    from .features import CONDITIONING_OPTIONS, build_frontend

    return build_frontend({k: v for k, v in frontend_config.items()
                           if k not in CONDITIONING_OPTIONS})


def word_matrix(utterances: Sequence[Utterance], words: Sequence[Sequence[Word]],
                frontend_config: Mapping[str, Any], encoder: Encoder, *,
                cache_dir: str | Path | None = None, progress: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`word_level` of each utterance (zeros where ``None``) and which have one."""
    from .dataset import FeatureBank

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
                  class_weight: str | None = "balanced") -> TextHead:
    """A :class:`TextHead` fitted on vectors and their labels (at least 2 classes).

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
    coef = np.zeros((x.shape[1], len(classes)))
    intercept = np.full(len(classes), -30.0)
    raw_coef = clf.coef_ if len(clf.classes_) > 2 else np.vstack([-clf.coef_[0], clf.coef_[0]])
    raw_b = clf.intercept_ if len(clf.classes_) > 2 else np.array([-clf.intercept_[0],
                                                                   clf.intercept_[0]])
    if len(clf.classes_) == 2:  # a two-class fit is one logit: split it evenly
        raw_coef, raw_b = raw_coef / 2, raw_b / 2
    for j, name in enumerate(clf.classes_):
        k = list(classes).index(str(name))
        coef[:, k], intercept[k] = raw_coef[j], raw_b[j]
    return TextHead(tuple(classes), mean, scale, coef, intercept)


#: How audio and text probabilities combine (``text.rule``), each with the text weight ``w``.
RULES = ("mean", "entropy", "product")


def combine(audio: np.ndarray, text: np.ndarray, weight: float, rule: str = "mean"
            ) -> np.ndarray:
    """Fuse probability rows ``[N, C]`` (or one row ``[C]``) of audio and text.

    - ``"mean"``: ``(1 - w) * audio + w * text``;
    - ``"entropy"``: the same mixture with each branch's share also multiplied, per recording,
      by ``exp(-H)`` of its own probabilities (``H`` the predictive entropy) and renormalised:
      an unsure branch counts less on that recording (MATER's uncertainty-aware weighting,
      as ``optim.ensemble_weighting = "entropy"`` does for ensemble members);
    - ``"product"``: log-linear pooling, ``audio**(1 - w) * text**w`` renormalised: a branch
      that rules a class out keeps it out.

    Raises:
        ConfigError: On an unknown rule or a weight outside [0, 1].
    """
    if rule not in RULES:
        raise ConfigError(f"text.rule must be one of {', '.join(RULES)} (got {rule!r})")
    if not 0.0 <= weight <= 1.0:
        raise ConfigError(f"text weight must be in [0, 1] (got {weight:g})")
    a = np.asarray(audio, dtype=np.float64)
    t = np.asarray(text, dtype=np.float64)
    if rule == "mean":
        return (1.0 - weight) * a + weight * t
    if rule == "entropy":
        def sure(p: np.ndarray) -> np.ndarray:
            return np.exp((p * np.log(np.clip(p, 1e-12, None))).sum(axis=-1, keepdims=True))

        wa, wt = (1.0 - weight) * sure(a), weight * sure(t)
        return (wa * a + wt * t) / np.clip(wa + wt, 1e-300, None)
    logp = (1.0 - weight) * np.log(np.clip(a, 1e-12, None)) + \
        weight * np.log(np.clip(t, 1e-12, None))
    logp -= logp.max(axis=-1, keepdims=True)
    e = np.exp(logp)
    return e / e.sum(axis=-1, keepdims=True)


def fuse_matrix(audio: np.ndarray, text: np.ndarray, has_text: np.ndarray,
                weight: float, rule: str = "mean") -> np.ndarray:
    """Row-wise fusion (:func:`combine`); rows without text keep the audio probabilities."""
    return np.where(has_text[:, None], combine(audio, text, weight, rule), audio)


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
    from .experiment import assess_utterances, predict_utterances

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
        from .text import _minilm

        encoder = _minilm(config.optim.threads)
    embed = _Embeddings(encoder)
    classes = list(model.labels)
    truth = np.array([classes.index(str(u.label)) for u in train])

    def head_on(idx: Sequence[int]) -> TextHead:
        keep = [i for i in idx if has[i]]
        return fit_text_head(embed([texts[i] for i in keep]), [str(train[i].label) for i in keep],
                             classes, section.C, config.optim.seed)

    head = head_on(range(len(train)))
    record: dict[str, Any] = {"fusion": section.fusion, "source": section.source,
                              "embedder": "all-MiniLM-L6-v2", "n_train": len(train),
                              "n_text": int(has.sum()), "head": head.to_dict()}
    if section.fusion == "embedding":
        parts = []
        rows = [i for i in range(len(train)) if has[i]]
        if section.words:  # MATER's word level: only recordings with timed words
            words, has_words = word_matrix(train, [w for _, w in heard], model.frontend_config,
                                           embed, cache_dir=cache_dir, progress=progress)
            rows = [i for i in rows if has_words[i]]
        if len(rows) < 2:
            raise EmovoxError("the joint text head needs training recordings with a "
                              "transcript" + (" and timed words" if section.words else ""))
        acoustic = assess_utterances(model, bank, [train[i] for i in rows],
                                     vectors=True).embeddings
        if acoustic is None:
            raise EmovoxError("this model gives no acoustic vector for a joint text head")
        parts = [acoustic, embed([texts[i] for i in rows])]
        if section.words:
            parts.append(words[rows])
        joint = fit_text_head(np.hstack(parts), [str(train[i].label) for i in rows], classes,
                              section.C, config.optim.seed, config.classic.class_weight)
        record.update(joint=joint.to_dict(), joint_dims=[int(p.shape[1]) for p in parts],
                      joint_words=bool(section.words), n_joint=len(rows))
        if progress:
            _log(f"text fusion: a joint head on the acoustic vector ({parts[0].shape[1]}), the "
                 f"sentence embedding ({parts[1].shape[1]})"
                 + (f" and the word-level vector ({parts[2].shape[1]})" if section.words
                    else "") + f", {len(rows)} recordings")
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


@dataclass(frozen=True)
class FusedAnswer:
    """A text-fusion model's answer for ``N`` recordings.

    Attributes:
        fused: ``[N, C]``, the model's answer: the joint head's where it has one and the
            recording has text, else the late fusion's (audio alone without text).
        late: ``[N, C]``, the late fusion by the learned rule and weight.
        text: ``[N, C]``, the text classifier's probabilities (zeros without text).
        has_text: ``[N]``, which recordings have a transcript.
    """

    fused: np.ndarray
    late: np.ndarray
    text: np.ndarray
    has_text: np.ndarray


def fused_answer(model: Bundle, audio: np.ndarray, texts: Sequence[str],
                 acoustic: np.ndarray | None = None, encoder: Encoder | None = None,
                 words: np.ndarray | None = None, has_words: np.ndarray | None = None
                 ) -> FusedAnswer:
    """Fuse a text-fusion model's audio probabilities with the transcripts.

    Args:
        model: A model trained with ``text.fusion`` (``info["text"]``).
        audio: Its audio probabilities ``[N, C]``.
        texts: Each recording's transcript (``""``: none).
        acoustic: The acoustic vectors ``[N, D]`` (:meth:`Bundle.classify` with
            ``vectors=True``) for a joint head; ``None``: late fusion only.
        encoder: The sentence encoder (``None``: all-MiniLM-L6-v2).
        words: A word-level joint head's input (:func:`word_matrix`).
        has_words: Which rows of ``words`` hold one; rows without keep the late fusion.
    """
    record = model.info["text"]
    head = TextHead.from_dict(record["head"])
    has = np.array([bool(t and t.strip()) for t in texts], dtype=bool)
    text = np.zeros((len(texts), len(model.labels)))
    vectors = None
    if has.any():
        if encoder is None:
            from .text import _minilm

            encoder = _minilm(model.config.optim.threads)
        vectors = np.asarray(encoder([t.strip() for t, h in zip(texts, has, strict=True) if h]))
        text[has] = head.predict_proba(vectors)
    late = fuse_matrix(audio, text, has, float(record["weight"]), record.get("rule", "mean"))
    fused = late
    if record.get("joint") and acoustic is not None and vectors is not None:
        joint = TextHead.from_dict(record["joint"])
        parts = [np.asarray(acoustic)[has], vectors]
        rows = np.flatnonzero(has)
        if record.get("joint_words"):
            if words is None or has_words is None:
                return FusedAnswer(late, late, text, has)
            parts.append(np.asarray(words)[has])
            ok = np.asarray(has_words)[has]
            parts, rows = [p[ok] for p in parts], rows[ok]
        fused = late.copy()
        if len(rows):
            fused[rows] = joint.predict_proba(np.hstack(parts))
    return FusedAnswer(fused, late, text, has)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
