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
            ``"dominance"`` (floats) and ``"label_distribution"`` (emotion -> probability).
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
