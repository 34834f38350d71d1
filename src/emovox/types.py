"""Small frozen records that flow between the stages of emovox.

``Utterance`` is what a corpus loader returns; ``Prediction`` is what the recognizer returns.
Both serialise to plain dicts (``to_dict``) so the CLI and the HTTP service need no extra code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class Utterance:
    """One labelled stretch of speech in a corpus.

    Attributes:
        id: Corpus-namespaced id, e.g. ``"ravdess/03-01-05-01-01-01-12"``; unique across corpora.
        path: Path of the audio file (as found under the corpus root).
        corpus: Corpus name, e.g. ``"ravdess"``.
        speaker: Corpus-namespaced speaker id, e.g. ``"ravdess/12"``.
        label: Canonical emotion name (see :mod:`emovox.labels`), or ``None`` when the utterance
            carries no categorical label (dimensional-only data).
        gender: ``"female"``, ``"male"`` or ``None`` when unknown.
        session: Corpus-namespaced recording session (IEMOCAP, MSP-IMPROV), else ``None``.
        start: Start of the utterance inside the file, in seconds.
        duration: Length in seconds, or ``None`` for "to the end of the file".
        extra: Everything else, read-only. Always holds ``"raw_label"`` (the corpus's own label,
            so every mapping can be audited); may hold ``"valence"``, ``"arousal"``,
            ``"dominance"`` (floats), ``"label_distribution"`` (emotion -> probability) and
            ``"transcript"``: what was said, the words as the corpus (or the manifest) states
            them, stripped; absent when unknown, never ``""``.
    """

    id: str
    path: str
    corpus: str
    speaker: str
    label: str | None
    gender: str | None = None
    session: str | None = None
    start: float = 0.0
    duration: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", _frozen_mapping(self.extra))

    @property
    def raw_label(self) -> str | None:
        """The corpus's own label before mapping to the canonical set."""
        value = self.extra.get("raw_label")
        return None if value is None else str(value)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict of every field."""
        return {
            "id": self.id,
            "path": self.path,
            "corpus": self.corpus,
            "speaker": self.speaker,
            "label": self.label,
            "gender": self.gender,
            "session": self.session,
            "start": self.start,
            "duration": self.duration,
            "extra": dict(self.extra),
        }


def _rounded(probabilities: Mapping[str, float], digits: int = 6) -> dict[str, float]:
    return {name: round(float(p), digits) for name, p in probabilities.items()}


@dataclass(frozen=True)
class Word:
    """One recognised word of a transcript (:mod:`emovox.asr`).

    Attributes:
        text: The word as heard (punctuation attached, no surrounding spaces).
        start: Its start in the recording, in seconds.
        end: Its end, in seconds.
        probability: The recogniser's probability of the word, in [0, 1].
    """

    text: str
    start: float
    end: float
    probability: float

    def to_dict(self) -> dict[str, Any]:
        """``{"word", "start", "end", "probability"}`` (times to 1 ms, probability to 1e-3)."""
        return {"word": self.text, "start": round(float(self.start), 3),
                "end": round(float(self.end), 3), "probability": round(float(self.probability), 3)}


def _text_fields(transcript: str | None, text_probabilities: Mapping[str, float],
                 fused_label: str | None, fused: Mapping[str, float]) -> dict[str, Any]:
    return {"transcript": transcript, "text_probabilities": _rounded(text_probabilities),
            "fused_label": fused_label, "fused_probabilities": _rounded(fused)}


@dataclass(frozen=True)
class Segment:
    """One analysis window of a timeline.

    Windows slide over the recording (``window`` seconds long, every ``hop`` seconds), so
    consecutive segments overlap when the hop is shorter than the window.

    Attributes:
        start: Start of the window in the recording, in seconds.
        end: End of the window, in seconds.
        label: Most probable emotion, or ``"silence"`` when the window holds no speech
            (``"speech"`` for a model of valence/arousal/dominance alone).
        probabilities: Emotion -> probability (sums to 1); empty for a silent window, which is
            not run through the model.
        speech: Whether voice activity detection found speech in the window.
        dimensions: Valence, arousal, dominance (the ones the model learned) for a model with
            a VAD head; empty otherwise.
        transcript: With text (``--with-text``, :mod:`emovox.text`): the words whose midpoint
            falls in the window (``""`` for none); ``None`` when text was not analysed or the
            transcript has no word times (a given one).
        text_probabilities: The text emotion score of ``transcript``; empty without one.
        fused_label: With text: the most probable emotion of ``fused_probabilities``
            (``"silence"`` for a silent window); ``None`` when text was not analysed.
        fused_probabilities: With text: the late fusion of the audio and text probabilities,
            or the audio ones alone when the window has no text score.
    """

    start: float
    end: float
    label: str
    probabilities: Mapping[str, float] = field(default_factory=dict)
    speech: bool = True
    dimensions: Mapping[str, float] = field(default_factory=dict)
    transcript: str | None = None
    text_probabilities: Mapping[str, float] = field(default_factory=dict)
    fused_label: str | None = None
    fused_probabilities: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("probabilities", "dimensions", "text_probabilities", "fused_probabilities"):
            object.__setattr__(self, name, _frozen_mapping(getattr(self, name)))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (times in seconds, probabilities rounded to 1e-6)."""
        doc = {
            "start": round(float(self.start), 3),
            "end": round(float(self.end), 3),
            "label": self.label,
            "speech": self.speech,
            "probabilities": _rounded(self.probabilities),
        }
        doc.update(_rounded(self.dimensions))
        if self.fused_label is not None:
            doc.update(_text_fields(self.transcript, self.text_probabilities, self.fused_label,
                                    self.fused_probabilities))
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Segment:
        """The segment :meth:`to_dict` wrote (``from_dict(d).to_dict() == d``)."""
        return cls(float(doc["start"]), float(doc["end"]), str(doc["label"]),
                   dict(doc.get("probabilities") or {}), bool(doc.get("speech", True)),
                   _dims_of(doc), doc.get("transcript"),
                   dict(doc.get("text_probabilities") or {}), doc.get("fused_label"),
                   dict(doc.get("fused_probabilities") or {}))


def _dims_of(doc: Mapping[str, Any]) -> dict[str, float]:
    return {d: float(doc[d]) for d in ("valence", "arousal", "dominance")
            if doc.get(d) is not None}


@dataclass(frozen=True)
class Prediction:
    """What the recognizer says about one recording (or why it could not say anything).

    A failed input has ``error`` set and nothing else but ``path``. A recording without speech
    has ``label == "silence"``, ``speech == False``, empty ``probabilities`` and a ``note``: it
    is not forced into an emotion.

    Attributes:
        label: Most probable emotion; ``"silence"`` when no speech was found; ``None`` on error
            or for a model of valence/arousal/dominance alone (no emotion classes).
        probabilities: Emotion -> probability over the model's classes (sums to 1).
        top_k: The ``k`` most probable ``(emotion, probability)`` pairs, best first (empty
            unless asked for).
        timeline: Per-window results (:class:`Segment`) for long recordings or when asked for;
            ``None`` otherwise. With a timeline, ``probabilities`` is the mean over the windows
            that hold speech.
        embedding: The model's utterance embedding (64 numbers for the MLL models) when asked
            for and the model has one; ``None`` otherwise.
        duration: Length of the recording in seconds.
        path: The input file as given (``None`` for an in-memory signal).
        error: One-line reason the input could not be processed, else ``None``.
        speech: Whether any speech was found.
        note: A remark for the user (e.g. why the label is ``"silence"``), else ``None``.
        uncertain: Whether the most probable emotion is below the recognizer's
            ``min_confidence``: the label is still the best guess, but the model does not know
            (the note says so). Always ``False`` without speech.
        dimensions: ``valence``, ``arousal``, ``dominance`` (those the model learned, on its
            training data's scale) for a model with a VAD head; empty otherwise.
        transcript: With text (``--with-text``, :mod:`emovox.text`): what was said (``""``
            when nothing was heard); ``None`` when text was not analysed or no transcript
            could be had (``text_note`` says why).
        words: The transcript's words with their times (empty for a given transcript).
        transcript_source: ``"asr"`` (speech recognition), ``"given"`` (the user's sidecar
            ``.txt``) or ``None``.
        text_probabilities: The zero-shot text emotion score over the model's classes; empty
            when there is no text to score.
        fused_label: The most probable emotion of ``fused_probabilities`` (``"silence"``
            without speech); ``None`` when text was not analysed.
        fused_probabilities: The audio and text result fused: ``(1 - text_weight) *
            probabilities + text_weight * text_probabilities`` by default (a model trained with
            ``text.fusion`` fuses by its own rule, or by its joint head); the audio
            probabilities alone when there is no text score.
        text_weight: The text weight of the fusion; ``None`` when text was not analysed (the
            marker that the text fields are present).
        text_note: Why the fused result is audio alone (no speech, ASR failed, empty
            transcript), else ``None``.
        fusion_vector: The acoustic vector the joint audio + text head of a model trained with
            ``text.fusion = "embedding"`` reads (:mod:`emovox.fusion`); ``None`` for other
            models. Never written out (not in :meth:`to_dict`).
    """

    label: str | None
    probabilities: Mapping[str, float] = field(default_factory=dict)
    top_k: tuple[tuple[str, float], ...] = ()
    timeline: tuple[Segment, ...] | None = None
    embedding: tuple[float, ...] | None = None
    duration: float | None = None
    path: str | None = None
    error: str | None = None
    speech: bool = True
    note: str | None = None
    uncertain: bool = False
    dimensions: Mapping[str, float] = field(default_factory=dict)
    transcript: str | None = None
    words: tuple[Word, ...] = ()
    transcript_source: str | None = None
    text_probabilities: Mapping[str, float] = field(default_factory=dict)
    fused_label: str | None = None
    fused_probabilities: Mapping[str, float] = field(default_factory=dict)
    text_weight: float | None = None
    text_note: str | None = None
    fusion_vector: tuple[float, ...] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("probabilities", "dimensions", "text_probabilities", "fused_probabilities"):
            object.__setattr__(self, name, _frozen_mapping(getattr(self, name)))
        object.__setattr__(self, "words", tuple(self.words))
        object.__setattr__(self, "top_k", tuple((str(k), float(p)) for k, p in self.top_k))
        if self.timeline is not None:
            object.__setattr__(self, "timeline", tuple(self.timeline))
        if self.embedding is not None:
            object.__setattr__(self, "embedding", tuple(float(v) for v in self.embedding))

    @property
    def ok(self) -> bool:
        """True unless the input failed."""
        return self.error is None

    @classmethod
    def failed(cls, path: str | None, error: str) -> Prediction:
        """The record of an input that could not be processed."""
        return cls(label=None, path=path, error=error, speech=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Prediction:
        """The record :meth:`to_dict` wrote (``from_dict(d).to_dict() == d``).

        For records read back (a journal, a JSON Lines output); ``fusion_vector`` is never
        written, so it does not come back.
        """
        if doc.get("error") is not None:
            return cls.failed(doc.get("path"), str(doc["error"]))
        timeline = doc.get("timeline")
        return cls(
            label=doc.get("label"), probabilities=dict(doc.get("probabilities") or {}),
            top_k=tuple((str(k), float(p)) for k, p in doc.get("top_k") or ()),
            timeline=None if timeline is None else tuple(Segment.from_dict(s)
                                                         for s in timeline),
            embedding=None if doc.get("embedding") is None else tuple(doc["embedding"]),
            duration=doc.get("duration"), path=doc.get("path"),
            speech=bool(doc.get("speech", True)), note=doc.get("note"),
            uncertain=bool(doc.get("uncertain", False)), dimensions=_dims_of(doc),
            transcript=doc.get("transcript"),
            words=tuple(Word(w["word"], w["start"], w["end"], w["probability"])
                        for w in doc.get("words") or ()),
            transcript_source=doc.get("transcript_source"),
            text_probabilities=dict(doc.get("text_probabilities") or {}),
            fused_label=doc.get("fused_label"),
            fused_probabilities=dict(doc.get("fused_probabilities") or {}),
            text_weight=doc.get("text_weight"), text_note=doc.get("text_note"))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict.

        A failed input gives ``{"path", "error"}``. Otherwise ``{"path", "label", "speech",
        "uncertain", "duration", "probabilities"}`` plus ``"top_k"``, ``"timeline"``,
        ``"embedding"`` and ``"note"`` when present; ``"valence"``, ``"arousal"``,
        ``"dominance"`` for a model with a VAD head; with text (``text_weight`` set), also
        ``"transcript"``, ``"transcript_source"``, ``"words"``, ``"text_probabilities"``,
        ``"fused_label"``, ``"fused_probabilities"``, ``"text_weight"`` and ``"text_note"``
        (when set). Probabilities are rounded to 6 decimals, times to 1 ms.
        """
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        doc: dict[str, Any] = {
            "path": self.path,
            "label": self.label,
            "speech": self.speech,
            "uncertain": self.uncertain,
            "duration": None if self.duration is None else round(float(self.duration), 3),
            "probabilities": _rounded(self.probabilities),
        }
        doc.update(_rounded(self.dimensions))
        if self.top_k:
            doc["top_k"] = [[name, round(p, 6)] for name, p in self.top_k]
        if self.timeline is not None:
            doc["timeline"] = [segment.to_dict() for segment in self.timeline]
        if self.embedding is not None:
            doc["embedding"] = [round(v, 6) for v in self.embedding]
        if self.note:
            doc["note"] = self.note
        if self.text_weight is not None:
            doc.update(_text_fields(self.transcript, self.text_probabilities, self.fused_label,
                                    self.fused_probabilities))
            doc["transcript_source"] = self.transcript_source
            doc["words"] = [w.to_dict() for w in self.words]
            doc["text_weight"] = self.text_weight
            if self.text_note:
                doc["text_note"] = self.text_note
        return doc
