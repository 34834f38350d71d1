"""The recognizer: point it at recordings, get emotions.

:class:`Recognizer` wraps a trained model (a :class:`~emovox.bundle.Bundle`: the bundled
default model, or your own checkpoint) behind four verbs that all return
:class:`~emovox.types.Prediction` records:

- :meth:`~Recognizer.predict_signal` for an array already in memory,
- :meth:`~Recognizer.predict_file` for one file,
- :meth:`~Recognizer.predict_files` for many files (a failed file gives a record with ``error``
  set and the batch goes on),
- :meth:`~Recognizer.predict_folder` for every audio file under a folder.

What happens to one recording, each step a function of plain values:

1. **read** (:meth:`~Recognizer.open`): the header (or the array) gives its length; limits are
   checked; a recording up to ``whole_seconds`` (twice the window by default: 6 s) is read as
   float32 mono at the model's rate (any format libsndfile reads; channels averaged, rate
   converted; see :mod:`emovox.audio`). Longer ones are read later, in chunks of
   ``chunk_seconds``, so memory stays bounded whatever the length.
2. **speech check**: energy voice activity detection (:mod:`emovox.vad`). A recording without
   speech is reported as ``label == "silence"`` with ``speech == False``, empty probabilities and
   a ``note``: it is never forced into an emotion.
3. **encode** (:meth:`~Recognizer.encode`): the model's frontend turns the samples into
   features, at the precision the model was trained with.
4. **classify**: :meth:`emovox.bundle.Bundle.classify`, the same path cross-validation scores
   with.
5. **windows**: a recording longer than ``whole_seconds`` is analysed in sliding windows
   (``window`` seconds every ``hop`` seconds); windows without speech are marked ``"silence"``
   and are neither encoded nor classified.

The overall result is defined once: a recording up to ``whole_seconds`` is classified whole; a
longer one gets the mean of its speech windows' probabilities. Asking for a timeline
(``timeline=True``, or a recording longer than ``timeline_after``: 20 s) adds the windows'
results and never changes the overall one. Why windows for long recordings: emotion models are
trained on short clips (acted corpora: 2-5 s), and a Whisper encoding of a longer recording is
not what they saw. Measured with a development model (Whisper tiny, trained on RAVDESS clips)
on recordings made of 2 or 3 RAVDESS clips of one emotion: 27 % and 22 % accuracy when encoded
whole, 62 % and 72 % as the mean of 3 s windows. Speech windows are encoded on their own
(Whisper and other contextual encoders: a window cut out of a longer encoding looks nothing
like the clips the model was trained on, see :data:`LOCAL_FRONTENDS`); for frontends whose
frames are local (log-mel), features are computed once per chunk and sliced per window.

Consistency: a recording's record does not depend on the other recordings in the call, their
order or the batch size: each recording is encoded and classified on its own (a padded batch
changes float rounding with the neighbours, and dynamic int8 quantisation scales a batch's
activations together), so it gets exactly the record it gets alone; nor on the interface
(the CLI, ``emovox serve`` and ``listen`` build their recognizer with :meth:`Recognizer.load`,
with the same defaults), nor on whether a timeline was asked for.

Runtime and precision: the bundled model runs without PyTorch: its encoder is an int8 ONNX
graph (:func:`emovox.export.export_encoder`) run by ONNX Runtime
(:class:`~emovox.features.onnx.OnnxWhisper`), its head the numpy classify path; how often
its labels agree with the float PyTorch model is measured by ``benchmarks/onnx_parity.py``
(the model's training recordings) and ``benchmarks/onnx_held_out.py`` (speakers it never
heard). ``runtime="torch"`` runs the float PyTorch encoder instead
(the reference; needs ``emovox[train]``), as do checkpoints without an encoder graph; there
``quantize=True`` (``--int8``) runs the encoder's linear layers with int8 weights
(:data:`INT8_DEFAULT`: off).

Normalisation groups (``group_by``): a model trained with ``data.normalization = "speaker"``
standardises each speaker's features with that speaker's own statistics. Give the recognizer the
same kind of group and it computes the statistics over the group's recordings (over the
features their overall results are computed from) before classifying them: ``"folder"`` (the
recordings in one folder), ``"speaker"`` (a ``speakers`` mapping from path to speaker),
``"file"`` (each recording's own statistics), or any callable ``path -> group name``. Without
``group_by`` (the default), the statistics of the training data are used, so a single file
needs nothing, and a file's result never depends on the others. Models trained with
``"global"`` normalisation use group statistics too when asked (an adaptation to the recording
conditions); models trained with ``"utterance"`` or ``"none"`` ignore ``group_by``.

Example:
    >>> from emovox import Recognizer, example_path
    >>> recognizer = Recognizer.default()
    >>> prediction = recognizer.predict_file(example_path())
    >>> prediction.label in recognizer.labels, sorted(prediction.probabilities) == list(
    ...     recognizer.labels)
    (True, True)
    >>> [p.to_dict()["path"] for p in recognizer.predict_files([example_path(), "missing.wav"])]
    ... # doctest: +ELLIPSIS
    ['.../example.wav', 'missing.wav']
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import audio
from .errors import ConfigError, EmovoxError
from .ops import Moments, Stats
from .types import Prediction, Segment
from .vad import SILENCE_DB, EnergyVAD

if TYPE_CHECKING:
    from .bundle import Classified

__all__ = [
    "AUDIO_EXTENSIONS",
    "INT8_DEFAULT",
    "SILENCE",
    "Recognizer",
    "Recording",
    "Windows",
    "example_path",
    "find_audio",
    "plot_timelines",
    "read_speakers",
]

#: The label of a recording or window without speech.
SILENCE = "silence"

#: Whether the encoder runs with int8 weights when nobody says otherwise. The one default of the
#: Python API, ``emovox predict``, ``emovox listen`` and ``emovox serve`` (their ``--int8``
#: flag turns it on): float, so users get the model that was trained and measured.
INT8_DEFAULT = False

#: Shortest recording given an emotion (seconds, default ``min_seconds``): below half a second
#: there is too little speech to judge, and a model would still answer with confidence.
MIN_SECONDS = 0.5

#: Default ``min_confidence``: a record whose most probable emotion is below it is marked
#: ``uncertain`` (its label is still the best guess). With a calibrated model the top
#: probability is about how often such an answer is right; benchmarks/robustness_table.py
#: reports how often records are flagged and how right the flagged ones are.
MIN_CONFIDENCE = 0.4

#: File name endings :func:`find_audio` picks up in folders (files named on their own are
#: always tried, whatever their name).
AUDIO_EXTENSIONS: tuple[str, ...] = (
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au",
    ".snd", ".caf", ".w64", ".rf64", ".sph", ".nist", ".voc",
)

#: Frontends whose frames depend only on nearby samples (log-mel, openSMILE low-level
#: descriptors): a timeline window's features are cut from the features of the whole chunk.
#: Every other frontend re-encodes each window on its own. For Whisper this is not a matter of
#: taste: its frames carry 30 s of context and absolute positions, and windows cut from a
#: chunk's encoding were classified completely differently from the same windows encoded alone
#: (2 of 44 labels agreed on a RAVDESS test recording), while the models are trained on
#: separately encoded clips.
LOCAL_FRONTENDS = frozenset({"logmel", "opensmile"})

#: Where the bundled default model lives inside the package: its head (torch-free ``.npz``),
#: which names the int8 encoder graph beside it that ONNX Runtime runs (no PyTorch needed).
DEFAULT_MODEL = "pretrained/default.npz"

#: What can run a recognizer's frontend (see :class:`Recognizer`).
RUNTIMES = ("auto", "onnx", "torch")

#: Where the bundled example recording lives inside the package (see :func:`example_path`).
EXAMPLE = "data/example.wav"

GroupBy = Literal["speaker", "folder", "file"] | Callable[[str], str] | None
Progress = Callable[[int, int], None]


# --- small pieces ------------------------------------------------------------------------------


#: The bundled edge model (:mod:`emovox.edge`): a small network distilled from the default
#: model, its graph beside it (``--model edge``).
EDGE_MODEL = "pretrained/edge.npz"

#: Names that mean a bundled model wherever a model is taken (``--model default``,
#: ``--model edge``), and the file each is inside the package.
BUNDLED_NAMES = ("default", "edge")


def _bundled_file(name: str) -> str:
    return EDGE_MODEL if name == "edge" else DEFAULT_MODEL


def is_bundled_name(model: str | os.PathLike[str]) -> bool:
    """Whether ``model`` names a bundled model rather than a file (a real file wins)."""
    return os.fspath(model) in BUNDLED_NAMES and not os.path.exists(os.fspath(model))


def bundled_model_path(model: str | os.PathLike[str] | None) -> str | None:
    """The checkpoint file ``model`` means: the bundled one for ``None``/``"default"``/``"edge"``.

    Returns ``None`` only if that bundled model is missing from the installation.
    """
    if model is not None and not is_bundled_name(model):
        return os.fspath(model)
    resource = resources.files("emovox").joinpath(_bundled_file(os.fspath(model or "default")))
    return str(resource) if resource.is_file() else None


def example_path() -> str:
    """The path of the example recording shipped with emovox (a synthetic English sentence).

    Example:
        >>> example_path().endswith("example.wav")
        True
    """
    return str(resources.files("emovox").joinpath(EXAMPLE))


def _reason(exc: BaseException, name: str | None) -> str:
    """An error's one-line message without the leading ``"<path>: "`` the audio module adds."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if name:
        shown = _display(name)
        if text.startswith(shown + ": "):
            text = text[len(shown) + 2 :]
    return text


def _failure(job_name: str | None, exc: BaseException) -> Prediction:
    """The record of a recording that raised: its one-line reason, never a traceback."""
    if isinstance(exc, EmovoxError):
        return Prediction.failed(job_name, _reason(exc, job_name))
    if isinstance(exc, MemoryError):
        return Prediction.failed(job_name, "out of memory")
    return Prediction.failed(job_name, f"internal error: {type(exc).__name__}: "
                                       f"{_reason(exc, job_name)} (please report it)")


def _display(path: Any) -> str:
    """A path on one line, control characters escaped (as the audio module shows it)."""
    text = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _top(probs: np.ndarray, labels: Sequence[str], k: int | None) -> tuple[tuple[str, float], ...]:
    if not k:
        return ()
    order = np.argsort(-probs, kind="stable")[:k]
    return tuple((labels[i], float(probs[i])) for i in order)


def _silence_note(peak_db: float) -> str:
    if peak_db <= SILENCE_DB:
        return "no speech detected (digital silence); no emotion estimated"
    return (f"no speech detected (loudest 10 ms at {peak_db:.0f} dBFS, too quiet or too steady "
            "for speech); no emotion estimated")


# --- finding inputs ----------------------------------------------------------------------------


def find_audio(paths: Sequence[str | os.PathLike[str]],
               recursive: bool = True) -> list[tuple[str, str | None]]:
    """Expand files and folders into the list of recordings to process.

    Files named directly are always kept (a bad one gets its error when it is read). Folders are
    searched for names ending in one of :data:`AUDIO_EXTENSIONS` (any case), recursively unless
    ``recursive`` is false, following symbolic links (each real folder once); names starting
    with ``.`` are skipped (hidden files, macOS ``._*`` resource forks). Broken links with an
    audio name are kept, so they are reported.

    Args:
        paths: Files and folders.
        recursive: Search sub-folders too.

    Returns:
        ``(path, error)`` pairs in a stable order (inputs as given, folder contents sorted):
        ``error`` is ``None`` for a recording to process, or a one-line reason for a folder that
        holds no audio or cannot be listed.
    """
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()

    def keep(path: str, error: str | None = None) -> None:
        if path not in seen:
            seen.add(path)
            out.append((path, error))

    exts = ", ".join(AUDIO_EXTENSIONS[:6])
    for given in paths:
        top = os.fspath(given)
        if not os.path.isdir(top):
            keep(top)
            continue
        found = 0
        visited: set[tuple[int, int]] = set()
        problems: list[tuple[str, str]] = []

        def on_error(exc: OSError) -> None:
            name = exc.filename if isinstance(exc.filename, str) else top  # noqa: B023
            problems.append((name, f"cannot list folder ({exc.strerror or exc})"))  # noqa: B023

        for folder, dirs, files in os.walk(top, onerror=on_error, followlinks=True):
            try:
                st = os.stat(folder)
                ident = (st.st_dev, st.st_ino)
            except OSError:
                continue
            if ident in visited:  # a link back up the tree: do not loop
                dirs[:] = []
                continue
            visited.add(ident)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
            for name in sorted(files):
                if name.startswith(".") or not name.lower().endswith(AUDIO_EXTENSIONS):
                    continue
                keep(os.path.join(folder, name))
                found += 1
        for name, problem in problems:
            keep(name, problem)
        if not found and not problems:
            where = "in this folder or below" if recursive else "in this folder"
            keep(top, f"no audio files found {where} (looked for {exts}, ...)")
    return out


def read_manifest_paths(path: str | os.PathLike[str]) -> list[str]:
    """The recordings a CSV lists: its ``path`` column, relative to the CSV's folder.

    Raises:
        EmovoxError: One line, if the file cannot be read or has no ``path`` column.
    """
    import csv

    shown = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EmovoxError(f"--manifest {shown}: cannot be read "
                          f"({getattr(exc, 'strerror', None) or exc})") from None
    if not rows or "path" not in rows[0]:
        raise EmovoxError(f"--manifest {shown}: needs a header with a 'path' column and at "
                          "least one row")
    folder = os.path.dirname(shown)
    out: list[str] = []
    for row in rows:
        value = (row.get("path") or "").strip()
        if value:
            out.append(value if os.path.isabs(value) else os.path.join(folder, value))
    return list(dict.fromkeys(out))


def read_speakers(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a speaker table for ``group_by="speaker"``: a CSV with ``path`` and ``speaker``.

    Other columns are ignored, so a corpus manifest (see :mod:`emovox.corpora.manifest`) works
    as it is. Relative paths are taken relative to the CSV file's folder.

    Returns:
        Absolute path -> speaker.

    Raises:
        EmovoxError: If the file cannot be read or lacks the two columns.
    """
    import csv

    file = Path(path)
    try:
        with open(file, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EmovoxError(f"{file}: cannot read speaker table ({exc})") from None
    if not rows or not {"path", "speaker"} <= set(rows[0]):
        raise EmovoxError(f"{file}: speaker table needs a header with 'path' and 'speaker' columns")
    base = file.resolve().parent
    return {os.path.abspath(base / row["path"]): str(row["speaker"]) for row in rows
            if row.get("path") and row.get("speaker")}


# --- sources of audio --------------------------------------------------------------------------


class _Source:
    """A recording read in consecutive chunks at the model's rate."""

    samples: int

    def chunks(self, size: int) -> Iterator[tuple[int, np.ndarray]]:
        raise NotImplementedError


class _ArraySource(_Source):
    def __init__(self, signal: np.ndarray) -> None:
        self.signal = signal
        self.samples = len(signal)

    def chunks(self, size: int) -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, self.samples, size):
            yield start, self.signal[start : start + size]


class _FileSource(_Source):
    def __init__(self, path: str, sample_rate: int, info: audio.AudioInfo) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self.file_rate = info.sample_rate
        self.file_frames = info.frames
        self.samples = int(round(info.frames * sample_rate / info.sample_rate))

    def chunks(self, size: int) -> Iterator[tuple[int, np.ndarray]]:
        seconds = size / self.sample_rate
        offset = 0
        index = 0
        while int(round(index * seconds * self.file_rate)) < self.file_frames:
            chunk = audio.load(self.path, self.sample_rate, start=index * seconds,
                               duration=seconds, max_seconds=None)
            yield offset, chunk
            offset += len(chunk)
            index += 1


# --- the values a recording passes through -----------------------------------------------------


@dataclass(frozen=True)
class Recording:
    """A recording opened for analysis.

    Attributes:
        name: The path as given (for records and messages); ``None`` for an in-memory signal.
        seconds: Its length.
        whole: Whether it is classified whole (up to ``whole_seconds``) rather than in windows.
        signal: Its samples (float32 mono at the model's rate) when it is classified whole or
            was given in memory; ``None`` for a long file, read in chunks when needed.
        info: The file's header (``None`` for an in-memory signal).
    """

    name: str | None
    seconds: float
    whole: bool
    signal: np.ndarray | None = None
    info: audio.AudioInfo | None = None


@dataclass(frozen=True)
class Windows:
    """The analysis windows of a recording and which of them hold speech.

    Attributes:
        spans: Window ``k`` covers samples ``spans[k] = (start, end)``.
        speech: Per window, whether voice activity detection found speech in it.
        peak_db: Loudest 10 ms block of the recording, dBFS.
    """

    spans: tuple[tuple[int, int], ...]
    speech: tuple[bool, ...]
    peak_db: float


@dataclass(frozen=True)
class _Options:
    timeline: bool | None = None
    top_k: int | None = None
    embeddings: bool = False


def _dimensions(values: np.ndarray | None) -> dict[str, float]:
    """Valence / arousal / dominance by name (the ones the model learned), or nothing."""
    if values is None:
        return {}
    from .targets import DIMENSIONS

    return {name: float(v) for name, v in zip(DIMENSIONS, values, strict=False)
            if np.isfinite(v)}


@dataclass(frozen=True)
class _Overall:
    """A recording's overall result before it becomes a :class:`Prediction`."""

    probabilities: np.ndarray | None  # None: no speech
    embedding: np.ndarray | None
    peak_db: float
    timeline: tuple[Segment, ...] | None
    dimensions: np.ndarray | None = None  # valence, arousal, dominance (VAD-head models)


class Recognizer:
    """Speech emotion recognition with a trained emovox model.

    Build one with :meth:`load` (a checkpoint, or the bundled model), :meth:`default` or
    :meth:`from_checkpoint`; it holds the model, its frontend and the analysis options, and is
    reused for any number of recordings. Its results depend only on the recording and these
    options (see the module docstring).

    Args:
        model: A trained model (:func:`emovox.bundle.load_checkpoint`).
        batch_size: Windows of a long recording classified at once (every recording is
            encoded and classified on its own, so this never couples recordings).
        window: Timeline window length, in seconds.
        hop: Time between timeline windows, in seconds (at most ``window``).
        timeline_after: Recordings longer than this (seconds) show their timeline unless
            ``timeline=False``.
        whole_seconds: Recordings up to this long (seconds) are classified whole; longer ones
            are analysed in windows (default: twice ``window``).
        chunk_seconds: Audio read and encoded at a time for the window analysis (30 s is
            Whisper's own window, so chunking changes nothing for Whisper models).
        min_seconds: Shorter recordings are refused (default :data:`MIN_SECONDS`: 0.5 s).
        max_seconds: Longer recordings are refused (``None``: no limit; memory is bounded by
            the chunked window analysis either way).
        vad: The voice activity detector (default :class:`~emovox.vad.EnergyVAD()`).
        threads: Threads for the frontend: the ONNX Runtime session's, or torch's for this
            process (``None``: leave the library's default).
        cache_megabytes: Memory for features kept between the two passes of ``group_by``
            (features beyond it are recomputed).
        quantize: Run the frontend's linear layers with int8 weights (PyTorch dynamic
            quantisation); default :data:`INT8_DEFAULT` (off). See the module docstring.
            Ignored on ONNX Runtime, where the encoder graph's weights run (int8 for the
            bundled model; :attr:`quantize` then says which).
        min_confidence: A record whose top probability is below this is marked
            ``uncertain`` (default :data:`MIN_CONFIDENCE`; 0 never marks one).
        runtime: What runs the frontend: ``"auto"`` (the model's encoder graph on ONNX
            Runtime when it has one, as the bundled model does, else PyTorch), ``"onnx"`` or
            ``"torch"`` (the PyTorch frontend even for a model with an encoder graph: the
            float reference).

    Attributes:
        labels: The model's emotions, in output order.
        sample_rate: The rate recordings are converted to, in Hz.
        model: The :class:`~emovox.bundle.Bundle`.
        frontend: The model's feature frontend.
        mode: The model's normalisation mode.
        runtime: ``"onnx"`` or ``"torch"``: what runs the frontend.

    Raises:
        ConfigError: On a bad option.

    Example:
        >>> recognizer = Recognizer.default(window=2.0)
        >>> recognizer.labels
        ('angry', 'disgust', 'fearful', 'happy', 'neutral', 'sad', 'surprised')
        >>> recognizer.whole_seconds, recognizer.runtime, recognizer.quantize
        (4.0, 'onnx', True)
    """

    def __init__(
        self,
        model: Any,
        *,
        batch_size: int = 8,
        window: float = 3.0,
        hop: float = 1.0,
        timeline_after: float = 20.0,
        whole_seconds: float | None = None,
        chunk_seconds: float = 30.0,
        min_seconds: float = MIN_SECONDS,
        max_seconds: float | None = None,
        vad: EnergyVAD | None = None,
        threads: int | None = None,
        cache_megabytes: float = 1024.0,
        quantize: bool = INT8_DEFAULT,
        min_confidence: float = MIN_CONFIDENCE,
        runtime: str = "auto",
    ) -> None:
        from .features import build_frontend

        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1 (got {batch_size})")
        if not window > 0 or not 0 < hop <= window:
            raise ConfigError(f"need window > 0 and 0 < hop <= window (got window {window:g} s, "
                              f"hop {hop:g} s)")
        if not chunk_seconds >= window:
            raise ConfigError(f"chunk_seconds ({chunk_seconds:g}) must be >= window ({window:g})")
        if not 0.0 <= min_confidence <= 1.0:
            raise ConfigError(f"min_confidence must be in [0, 1] (got {min_confidence:g})")
        if not timeline_after > 0 or not min_seconds > 0:
            raise ConfigError("timeline_after and min_seconds must be > 0")
        if whole_seconds is not None and not whole_seconds > 0:
            raise ConfigError("whole_seconds must be > 0 or None")
        if max_seconds is not None and not max_seconds > 0:
            raise ConfigError("max_seconds must be > 0 or None")
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be >= 1 (got {threads})")
        if runtime not in RUNTIMES:
            raise ConfigError(f"runtime must be one of {', '.join(RUNTIMES)} (got {runtime!r})")
        if runtime == "torch" and model.frontend_config.get("name") == "edge":
            raise ConfigError("the edge model runs on ONNX Runtime only (runtime 'auto' or "
                              "'onnx')")
        encoder = getattr(model, "encoder", None) if runtime != "torch" else None
        if runtime == "onnx" and encoder is None:
            raise ConfigError("runtime 'onnx' needs a model with an encoder graph (a .npz "
                              "model from `emovox export --npz`)")
        self.model = model
        # a joint audio + text head reads each recording's acoustic vector (emovox.fusion)
        self.fusion_vectors = bool(((getattr(model, "info", None) or {}).get("text") or {})
                                   .get("joint"))
        self.labels: tuple[str, ...] = tuple(model.labels)
        self.frontend = build_frontend(model.frontend_config, encoder=encoder, threads=threads)
        self.runtime = "onnx" if encoder is not None else "torch"
        if threads is not None and encoder is None:
            import torch

            torch.set_num_threads(int(threads))
        self.sample_rate = int(self.frontend.sample_rate)
        self.batch_size = int(batch_size)
        self.window = float(window)
        self.hop = float(hop)
        self.timeline_after = float(timeline_after)
        self.whole_seconds = float(whole_seconds) if whole_seconds else 2.0 * self.window
        self.min_seconds = float(min_seconds)
        self.max_seconds = None if max_seconds is None else float(max_seconds)
        self.vad = vad or EnergyVAD()
        self.cache_bytes = int(cache_megabytes * 2**20)
        # On ONNX Runtime the graph's own weights run (int8 for the bundled model).
        self.quantize = (bool(getattr(self.frontend, "int8", False)) if encoder is not None
                         else bool(quantize))
        self.min_confidence = float(min_confidence)
        self.mode = str(model.normalizer.mode)
        # Samples per feature frame (0 for functionals).
        fs = float(getattr(self.frontend, "frame_seconds", 0.0) or 0.0)
        self.frame_samples = int(round(fs * self.sample_rate)) if fs > 0 else 0
        # Timeline windows are cut from the features of the whole chunk only when a frame
        # depends on nearby samples alone; contextual encoders re-encode every window.
        # A frontend that trims silence first changes where frames fall: windows re-encode too.
        self.slices_frames = (bool(self.frame_samples) and self.frontend.name in LOCAL_FRONTENDS
                              and getattr(self.frontend, "trim_db", None) is None)
        unit = math.lcm(self.frame_samples or 1, self.vad.block_samples(self.sample_rate))
        self.chunk_samples = max(unit, int(round(chunk_seconds * self.sample_rate / unit)) * unit)
        self.window_samples = max(1, int(round(self.window * self.sample_rate)))
        self.hop_samples = max(1, int(round(self.hop * self.sample_rate)))
        self._module: Any = None

    # --- construction ---

    @classmethod
    def load(cls, model: str | os.PathLike[str] | None = None, **options: Any) -> Recognizer:
        """The one way the CLI, ``listen`` and ``serve`` build a recognizer.

        Args:
            model: A checkpoint file, or ``None`` or ``"default"`` for the bundled default
                model (a file named ``default`` in the working folder wins).
            **options: Options of :class:`Recognizer` (their defaults are the same for every
                interface; ``quantize`` defaults to :data:`INT8_DEFAULT`).

        Raises:
            EmovoxError: If the checkpoint is missing or unusable, or on a bad option.
        """
        if model is not None and is_bundled_name(model) and os.fspath(model) == "edge":
            return cls.edge(**options)
        if model is None or is_bundled_name(model):
            return cls.default(**options)
        return cls.from_checkpoint(model, **options)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], **options: Any) -> Recognizer:
        """Load a checkpoint written by ``emovox train`` (:func:`emovox.bundle.save_checkpoint`).

        Args:
            path: The checkpoint file.
            **options: Options of :class:`Recognizer`.

        Raises:
            EmovoxError: If the file is missing or not an emovox checkpoint, or its frontend
                cannot be built here (e.g. a missing extra).
        """
        from .bundle import load_checkpoint

        return cls(load_checkpoint(Path(path)), **options)

    @classmethod
    def default(cls, **options: Any) -> Recognizer:
        """The bundled default model (7 emotions; see its model card beside it).

        Args:
            **options: Options of :class:`Recognizer`.

        Raises:
            EmovoxError: If the model file is missing from the installation.
        """
        return cls._bundled(DEFAULT_MODEL, "default", **options)

    @classmethod
    def edge(cls, **options: Any) -> Recognizer:
        """The bundled edge model: the default model's 7 emotions from a far smaller network.

        See :mod:`emovox.edge`; its card is ``EDGE_CARD.md`` beside it.

        Args:
            **options: Options of :class:`Recognizer`.

        Raises:
            EmovoxError: If the model file is missing from the installation.
        """
        return cls._bundled(EDGE_MODEL, "edge", **options)

    @classmethod
    def _bundled(cls, file: str, name: str, **options: Any) -> Recognizer:
        resource = resources.files("emovox").joinpath(file)
        if not resource.is_file():
            raise EmovoxError(f"the bundled {name} model is missing from this installation "
                              "(reinstall emovox, or give a checkpoint with --model)")
        with resources.as_file(resource) as path:
            return cls.from_checkpoint(path, **options)

    def __repr__(self) -> str:
        return (f"Recognizer(labels={list(self.labels)}, frontend={self.frontend.name!r}, "
                f"normalization={self.mode!r}, window={self.window:g}, hop={self.hop:g}, "
                f"int8={self.quantize}, runtime={self.runtime!r})")

    # --- public verbs ---

    def predict_signal(
        self,
        signal: Any,
        sample_rate: int,
        *,
        timeline: bool | None = None,
        top_k: int | None = None,
        embeddings: bool = False,
        group_by: Literal["file"] | None = None,
    ) -> Prediction:
        """Recognise the emotion in an in-memory signal.

        Args:
            signal: Samples ``[frames]``, ``[frames, channels]`` or ``[channels, frames]``, any
                integer or float dtype (see :func:`emovox.audio.prepare`).
            sample_rate: Its rate, in Hz (converted to the model's).
            timeline: ``True``: also return the windows' results; ``False``: never; ``None``:
                for signals longer than ``timeline_after``. It never changes the overall result.
            top_k: Also return the ``k`` most probable emotions.
            embeddings: Also return the model's embedding.
            group_by: ``"file"`` standardises with the signal's own statistics (see the module
                docstring); ``None`` uses the training statistics.

        Returns:
            The :class:`~emovox.types.Prediction` (``path`` is ``None``).

        Raises:
            EmovoxError: If the signal is unusable (empty, NaN, too short, ...).

        Example:
            >>> silence = np.zeros(16000, dtype=np.float32)
            >>> Recognizer.default().predict_signal(silence, 16000).label
            'silence'
        """
        if group_by not in (None, "file"):
            raise ConfigError("predict_signal: group_by must be None or 'file'")
        wave = audio.prepare(signal, sample_rate, self.sample_rate, max_seconds=self.max_seconds)
        try:
            recording = self._recording(None, len(wave) / self.sample_rate, wave, None)
            result = self._predict([recording], _Options(timeline, top_k, embeddings),
                                   None, own_stats=group_by == "file")[0]
        except EmovoxError as exc:
            raise EmovoxError(f"signal: {_reason(exc, None)}") from None
        if result.error is not None:
            raise EmovoxError(f"signal: {result.error}")
        return result

    def predict_file(self, path: str | os.PathLike[str], **options: Any) -> Prediction:
        """Recognise the emotion in one audio file.

        Args:
            path: The file (symbolic links are followed).
            **options: ``timeline``, ``top_k``, ``embeddings`` and ``group_by`` (only
                ``"file"`` makes sense for one file), as in :meth:`predict_files`.

        Returns:
            The :class:`~emovox.types.Prediction`.

        Raises:
            EmovoxError: If the file cannot be used (missing, not audio, truncated, ...); the
                message is one line starting with the path.

        Example:
            >>> from emovox import example_path
            >>> prediction = Recognizer.default().predict_file(example_path(), top_k=2)
            >>> [name for name, p in prediction.top_k][0] == prediction.label
            True
        """
        result = self.predict_files([path], **options)[0]
        if result.error is not None:
            raise EmovoxError(f"{_display(path)}: {result.error}")
        return result

    def explain_file(self, path: str | os.PathLike[str], **options: Any) -> Any:
        """Why a file gets its emotion (:mod:`emovox.explain`).

        Saliency over time, acoustic cues in the salient regions against neutral speech, and
        a sentence.

        Args:
            path: The file.
            **options: As :func:`emovox.explain.explain_signal` takes them (``methods``,
                ``primary``, ``window``, ``hop``, ``top``, ``cues``).

        Returns:
            The :class:`~emovox.explain.Explanation`.

        Raises:
            EmovoxError: If the file cannot be used (as :meth:`predict_file`) or is silent;
                one line starting with the path.
        """
        from .explain import explain_signal

        shown = _display(path)
        try:
            info = audio.info(path)
            if info.frames <= 0:
                raise EmovoxError("no audio samples")
            seconds = info.frames / info.sample_rate
            self._check_length(seconds, info.frames)
            wave = audio.load(path, self.sample_rate, max_seconds=None)
            return explain_signal(self, wave, path=shown, **options)
        except EmovoxError as exc:
            raise EmovoxError(f"{shown}: {_reason(exc, str(path))}") from None

    def predict_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        timeline: bool | None = None,
        top_k: int | None = None,
        embeddings: bool = False,
        group_by: GroupBy = None,
        speakers: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> list[Prediction]:
        """Recognise the emotion in each of several files.

        A file that cannot be used gives a record with ``error`` set (``to_dict()`` is
        ``{"path", "error"}``) and the others go on. Each record is the one the file gets alone
        (unless ``group_by`` asks for statistics shared by a group).

        Args:
            paths: Audio files.
            timeline: ``True``: also return each recording's windows; ``False``: never;
                ``None``: for recordings longer than ``timeline_after``.
            top_k: Also return the ``k`` most probable emotions of each recording.
            embeddings: Also return each recording's embedding.
            group_by: Normalisation groups: ``"folder"``, ``"speaker"`` (needs ``speakers``),
                ``"file"``, a callable ``path -> group``, or ``None`` (training statistics).
            speakers: Path -> speaker for ``group_by="speaker"`` (see :func:`read_speakers`);
                a file missing from it gets an error record.
            progress: Called as ``progress(done, total)`` as recordings finish.

        Returns:
            One :class:`~emovox.types.Prediction` per path, in order.
        """
        if group_by == "speaker" and speakers is None:
            raise ConfigError("group_by='speaker' needs a speakers mapping (path -> speaker)")
        if group_by not in (None, "speaker", "folder", "file") and not callable(group_by):
            raise ConfigError(f"unknown group_by {group_by!r} (speaker, folder, file or None)")
        names = [os.fspath(p) for p in paths]
        opts = _Options(timeline, top_k, embeddings)
        results: list[Prediction | None] = [None] * len(names)
        done = 0

        def finished(count: int) -> None:
            nonlocal done
            done += count
            if progress is not None and count:
                progress(done, len(names))

        uses_groups = group_by is not None and self.model.normalizer.uses_groups
        groups: dict[str | None, list[int]] = {}
        for i, name in enumerate(names):
            try:
                key = (self._group_key(name, group_by, speakers)
                       if uses_groups and group_by != "file" else None)
            except EmovoxError as exc:
                results[i] = Prediction.failed(name, _reason(exc, name))
                finished(1)
                continue
            groups.setdefault(key, []).append(i)
        block = 4 * self.batch_size
        for key, members in groups.items():
            stats: Stats | None = None
            kept: dict[int, np.ndarray] = {}
            failed: dict[int, Prediction] = {}
            if key is not None:
                stats, kept, failed = self._group_statistics([names[i] for i in members])
            for start in range(0, len(members), block):
                part = members[start : start + block]
                recordings: list[Recording | Prediction] = []
                for k, i in enumerate(part):
                    position = start + k
                    if position in failed:
                        recordings.append(failed[position])
                        continue
                    try:
                        recordings.append(self.open(names[i]))
                    except Exception as exc:  # noqa: BLE001 - one record per failed recording
                        recordings.append(_failure(names[i], exc))
                known = {k: kept[start + k] for k in range(len(part)) if start + k in kept}
                for i, result in zip(part, self._predict(
                        recordings, opts, stats, own_stats=uses_groups and group_by == "file",
                        features=known), strict=True):
                    results[i] = result
                finished(len(part))
        return [r or Prediction.failed(n, "not processed") for r, n in zip(results, names,
                                                                            strict=True)]

    def predict_folder(self, path: str | os.PathLike[str], recursive: bool = True,
                       **options: Any) -> list[Prediction]:
        """Recognise the emotion in every audio file under a folder.

        Args:
            path: The folder (searched as :func:`find_audio` describes).
            recursive: Include sub-folders.
            **options: As in :meth:`predict_files` (``group_by="folder"`` is a natural choice
                when each folder holds one speaker).

        Returns:
            One :class:`~emovox.types.Prediction` per file found (sorted by path); a
            sub-folder that cannot be listed gives an error record.

        Raises:
            EmovoxError: If ``path`` is not a folder or holds no audio file.
        """
        if not os.path.isdir(path):
            raise EmovoxError(f"{_display(path)}: not a folder")
        found = find_audio([path], recursive)
        if len(found) == 1 and found[0][1] is not None and found[0][0] == os.fspath(path):
            raise EmovoxError(f"{_display(path)}: {found[0][1]}")
        files = [p for p, error in found if error is None]
        results = iter(self.predict_files(files, **options))
        return [next(results) if error is None else Prediction.failed(p, error)
                for p, error in found]

    # --- the steps: read, speech check, encode, classify, windows ---

    def open(self, path: str) -> Recording:
        """Read a file's header and check its length; read its samples if it is classified whole.

        Raises:
            EmovoxError: A one-line reason the file cannot be used.
        """
        info = audio.info(path)
        if info.frames <= 0:
            raise EmovoxError("no audio samples")
        seconds = info.frames / info.sample_rate
        self._check_length(seconds, info.frames)
        signal = None
        if seconds <= self.whole_seconds:
            signal = audio.load(path, self.sample_rate, max_seconds=None)
        return self._recording(path, seconds, signal, info)

    def _check_length(self, seconds: float, frames: int | None = None) -> None:
        """The length limits, checked from the header before anything is read."""
        if seconds < self.min_seconds:
            shown = "1 sample" if frames == 1 else f"{seconds:.3g} s"
            raise EmovoxError(f"too short for emotion recognition ({shown}; "
                              f"at least {self.min_seconds:g} s needed)")
        if self.max_seconds is not None and seconds > self.max_seconds:
            raise EmovoxError(f"{seconds:.1f} s long, over the {self.max_seconds:g} s limit "
                              "(max_seconds): cut it into parts, or raise the limit")

    def _recording(self, name: str | None, seconds: float, signal: np.ndarray | None,
                   info: audio.AudioInfo | None) -> Recording:
        self._check_length(seconds)
        return Recording(name, seconds, seconds <= self.whole_seconds, signal, info)

    def speech(self, signal: np.ndarray) -> tuple[bool, float]:
        """Whether a whole recording holds speech, and its loudest 10 ms block (dBFS)."""
        levels = self.vad.levels(signal, self.sample_rate)
        peak = float(levels.max()) if levels.size else SILENCE_DB
        return (self.vad.is_speech(levels, self.vad.threshold(levels),
                                   len(signal) / self.sample_rate), peak)

    def encode(self, signals: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Frontend features of signals, each encoded on its own, at the training precision.

        Each signal goes through the frontend alone: a padded batch would change the float
        rounding of its features (and, with int8 weights, their quantisation scale) with its
        neighbours. So a recording's features never depend on the others.

        Args:
            signals: Mono float32 signals at :attr:`sample_rate`.

        Returns:
            One feature matrix per signal, in order, shaped as the frontend returns it
            (``[T, D]``; ``[L + 1, T, D]`` for all-layer Whisper features), rounded to the
            model's :attr:`~emovox.bundle.Bundle.feature_dtype` and returned as float32.
        """
        module = self._torch_module()
        if module is None:
            return [self.model.as_trained(self.frontend(s)) for s in signals]
        import torch

        from .features import condition_signal, gate_frames

        out = []
        for signal in signals:
            signal = condition_signal(self.frontend, signal)
            wave = torch.from_numpy(np.asarray(signal, dtype=np.float32))[None]
            with torch.inference_mode():
                feats, mask = module(wave, torch.tensor([wave.shape[1]]))
            frames = feats[0, ..., : int(mask[0].sum()), :].numpy()
            out.append(self.model.as_trained(gate_frames(self.frontend, signal, frames)))
        return out

    def classify(
        self, features: Sequence[np.ndarray], stats: Sequence[Stats | None] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Class probabilities (and embeddings) for clean features: the model's classify path.

        Args:
            features: Feature matrices as :meth:`encode` returns them.
            stats: Per matrix, the ``(mean, std)`` to standardise with, or ``None`` for the
                training statistics (ignored by models trained without group statistics).

        Returns:
            ``(probabilities [N, C], embeddings [N, E] or None)``; ``None`` for models without
            an embedding (the logistic regressions).
        """
        out = self.assess(features, stats)
        return out.probabilities, out.embeddings

    def assess(self, features: Sequence[np.ndarray],
               stats: Sequence[Stats | None] | None = None) -> Classified:
        """Everything the model says about clean features (:class:`~emovox.bundle.Classified`).

        Probabilities, embeddings and, for a model with a VAD head, valence / arousal /
        dominance.
        """
        if self.fusion_vectors:
            return self.model.classify(features, stats, batch_size=self.batch_size,
                                       rounded=True, vectors=True)
        return self.model.classify(features, stats, batch_size=self.batch_size, rounded=True)

    def windows(self, recording: Recording) -> Windows:
        """The analysis windows of a recording and which hold speech (one chunked read)."""
        source = self._source(recording)
        levels = np.concatenate([self.vad.levels(chunk, self.sample_rate)
                                 for _, chunk in source.chunks(self.chunk_samples)] or [
            np.zeros(0, dtype=np.float32)])
        w, h = self.window_samples, self.hop_samples
        samples = source.samples
        count = 1 if samples <= w else int(math.ceil((samples - w) / h)) + 1
        spans = tuple((k * h, min(k * h + w, samples)) for k in range(count))
        threshold = self.vad.threshold(levels)
        block = self.vad.block_samples(self.sample_rate)
        speech = tuple(
            self.vad.is_speech(levels[a // block : max(a // block + 1, -(-b // block))],
                               threshold, (b - a) / self.sample_rate)
            for a, b in spans)
        return Windows(spans, speech, float(levels.max()) if levels.size else SILENCE_DB)

    def window_features(self, recording: Recording,
                        windows: Windows) -> Iterator[tuple[int, np.ndarray]]:
        """Features of each speech window of a recording, in order, read chunk by chunk."""
        spans = windows.spans
        pending = [k for k, s in enumerate(windows.speech) if s]  # windows still to emit
        if not pending:
            return
        frames: list[tuple[int, np.ndarray]] = []  # (first sample, features) pieces
        samples: list[tuple[int, np.ndarray]] = []  # (first sample, signal) pieces
        fs = self.frame_samples if self.slices_frames else 0
        chunks = self._source(recording).chunks(self.chunk_samples)
        finished = False
        while pending:
            try:
                offset, chunk = next(chunks)
            except StopIteration:
                finished = True
                offset, chunk = -1, np.zeros(0, dtype=np.float32)
            end = offset + len(chunk)
            # A tail shorter than min_seconds after earlier chunks is not worth (and for Whisper
            # not able to be) encoded on its own; the windows reaching into it use what exists.
            tiny = offset > 0 and len(chunk) < self.min_seconds * self.sample_rate
            if not finished and not tiny:
                if any(spans[k][0] < end and spans[k][1] > offset for k in pending):
                    if fs:
                        feats = self.encode([chunk])[0]
                        count = min(feats.shape[-2], -(-len(chunk) // fs))
                        frames.append((offset, feats[..., :count, :]))
                    else:
                        samples.append((offset, chunk))
            ready = [k for k in pending if finished or spans[k][1] <= end]
            if ready:
                if fs:
                    for k in ready:
                        yield k, _slice_frames(frames, spans[k], fs)
                else:
                    pieces = [_slice_samples(samples, spans[k]) for k in ready]
                    yield from zip(ready, self.encode(pieces), strict=True)
                pending = [k for k in pending if k not in set(ready)]
            if pending:  # forget what no remaining window needs
                first = spans[pending[0]][0]
                frames = [(o, f) for o, f in frames if o + f.shape[-2] * max(fs, 1) > first]
                samples = [(o, s) for o, s in samples if o + len(s) > first]
            if finished:
                break

    # --- from the steps to a record ---

    def _predict(self, items: Sequence[Recording | Prediction], opts: _Options,
                 stats: Stats | None, *, own_stats: bool = False,
                 features: Mapping[int, np.ndarray] | None = None) -> list[Prediction]:
        """Records for opened recordings (failures passed through as they are).

        Every recording is encoded and classified on its own; ``features`` holds whole
        recordings' features already computed (by index, by the first pass of ``group_by``).
        """
        features = features or {}
        out: list[Prediction | None] = [p if isinstance(p, Prediction) else None for p in items]
        whole: list[tuple[int, Recording]] = []
        for i, rec in enumerate(items):
            if not isinstance(rec, Recording):
                continue
            try:
                if rec.whole:
                    assert rec.signal is not None
                    speech, peak = self.speech(rec.signal)
                    if speech:
                        whole.append((i, rec))
                    else:
                        out[i] = self._record(rec, _Overall(None, None, peak, self._timeline(
                            rec, opts, stats)), opts)
                else:
                    out[i] = self._record(rec, self._windowed(rec, opts, stats, own_stats), opts)
            except Exception as exc:  # noqa: BLE001 - one record per failed recording
                out[i] = _failure(rec.name, exc)
        encoded = self._encode_each([(i, r) for i, r in whole if i not in features])
        for i, rec in whole:
            feats = features.get(i, encoded.get(i))
            if isinstance(feats, BaseException):
                out[i] = _failure(rec.name, feats)
                continue
            try:
                assert feats is not None
                own = Moments.of([feats]) if own_stats else stats
                said = self.assess([feats], [own])
                overall = _Overall(said.probabilities[0],
                                   None if said.embeddings is None else said.embeddings[0], 0.0,
                                   self._timeline(rec, opts, own),
                                   None if said.dimensions is None else said.dimensions[0])
                out[i] = self._record(rec, overall, opts)
            except Exception as exc:  # noqa: BLE001 - one record per failed recording
                out[i] = _failure(rec.name, exc)
        return [p if p is not None else Prediction.failed(None, "not processed") for p in out]

    def _encode_each(self, recordings: Sequence[tuple[int, Recording]]
                     ) -> dict[int, np.ndarray | BaseException]:
        """Encode whole recordings; a failure stays with its recording."""
        out: dict[int, np.ndarray | BaseException] = {}
        for i, rec in recordings:
            try:
                assert rec.signal is not None
                out[i] = self.encode([rec.signal])[0]
            except Exception as exc:  # noqa: BLE001 - one record per failed recording
                out[i] = exc
        return out

    def _windowed(self, rec: Recording, opts: _Options, stats: Stats | None,
                  own_stats: bool) -> _Overall:
        """A long recording: the mean over its speech windows, classified in bounded memory."""
        windows = self.windows(rec)
        if own_stats:
            stats = Moments.of([f for _, f in self.window_features(rec, windows)])
        probs, embs, dims = self._classify_windows(rec, windows, stats)
        voiced = [k for k, s in enumerate(windows.speech) if s]
        timeline = (self._segments(windows, probs, dims) if self._shows_timeline(rec, opts)
                    else None)
        if not voiced:
            return _Overall(None, None, windows.peak_db, timeline)
        return _Overall(probs[voiced].mean(axis=0),
                        None if embs is None else embs[voiced].mean(axis=0), windows.peak_db,
                        timeline, None if dims is None else dims[voiced].mean(axis=0))

    def _timeline(self, rec: Recording, opts: _Options,
                  stats: Stats | None) -> tuple[Segment, ...] | None:
        """The windows of a whole recording, when a timeline is shown (the overall stays)."""
        if not self._shows_timeline(rec, opts):
            return None
        windows = self.windows(rec)
        probs, _, dims = self._classify_windows(rec, windows, stats)
        return self._segments(windows, probs, dims)

    def _shows_timeline(self, rec: Recording, opts: _Options) -> bool:
        return bool(opts.timeline) or (opts.timeline is None and rec.seconds > self.timeline_after)

    def _classify_windows(self, rec: Recording, windows: Windows, stats: Stats | None,
                          ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Probabilities ``[K, C]`` (embeddings, VAD) of every window (zeros where silent)."""
        probs = np.zeros((len(windows.spans), len(self.labels)))
        embs: np.ndarray | None = None
        dims: np.ndarray | None = None
        pending: list[tuple[int, np.ndarray]] = []

        def flush() -> None:
            nonlocal embs, dims
            if not pending:
                return
            said = self.assess([f for _, f in pending], [stats] * len(pending))
            e, d = said.embeddings, said.dimensions
            index = [k for k, _ in pending]
            probs[index] = said.probabilities
            if e is not None:
                if embs is None:
                    embs = np.zeros((len(windows.spans), e.shape[1]), dtype=np.float32)
                embs[index] = e
            if d is not None:
                if dims is None:
                    dims = np.full((len(windows.spans), d.shape[1]), np.nan)
                dims[index] = d
            pending.clear()

        for k, feats in self.window_features(rec, windows):
            pending.append((k, feats))
            if len(pending) >= 4 * self.batch_size:
                flush()
        flush()
        return probs, embs, dims

    def _segments(self, windows: Windows, probs: np.ndarray,
                  dims: np.ndarray | None = None) -> tuple[Segment, ...]:
        sr = self.sample_rate
        return tuple(
            Segment(a / sr, b / sr,
                    self.labels[int(np.argmax(probs[k]))] if self.labels else "speech",
                    {n: float(v) for n, v in zip(self.labels, probs[k], strict=True)}, True,
                    _dimensions(None if dims is None else dims[k]))
            if windows.speech[k] else Segment(a / sr, b / sr, SILENCE, {}, False)
            for k, (a, b) in enumerate(windows.spans))

    def _record(self, rec: Recording, overall: _Overall, opts: _Options) -> Prediction:
        if overall.probabilities is None:
            return Prediction(label=SILENCE, probabilities={}, timeline=overall.timeline,
                              duration=rec.seconds, path=rec.name, speech=False,
                              note=_silence_note(overall.peak_db))
        probs = overall.probabilities
        # a classic model's vector is there for the joint text head only, not an embedding
        classic = getattr(getattr(self.model, "config", None), "method", "neural") != "neural"
        emb = overall.embedding if opts.embeddings and not (classic and self.fusion_vectors) \
            else None
        vector = None
        if self.fusion_vectors and overall.embedding is not None:
            vector = tuple(float(v) for v in overall.embedding)
        if not self.labels:  # a model of valence/arousal/dominance alone: no emotion label
            return Prediction(label=None, probabilities={}, timeline=overall.timeline,
                              embedding=None if emb is None else tuple(float(v) for v in emb),
                              duration=rec.seconds, path=rec.name, speech=True,
                              dimensions=_dimensions(overall.dimensions))
        best = float(np.max(probs))
        uncertain = best < self.min_confidence
        return Prediction(
            label=self.labels[int(np.argmax(probs))],
            uncertain=uncertain,
            note=(f"uncertain: p = {best:.2f} < min confidence {self.min_confidence:g}"
                  if uncertain else None),
            probabilities={name: float(p) for name, p in zip(self.labels, probs, strict=True)},
            top_k=_top(probs, self.labels, opts.top_k),
            timeline=overall.timeline,
            embedding=None if emb is None else tuple(float(v) for v in emb),
            duration=rec.seconds,
            path=rec.name,
            speech=True,
            fusion_vector=vector,
            dimensions=_dimensions(overall.dimensions),
        )

    # --- normalisation groups ---

    def _group_key(self, name: str, group_by: Any, speakers: Mapping[str, str] | None) -> str:
        if group_by == "folder":
            return os.path.dirname(os.path.abspath(name))
        if group_by == "speaker":
            assert speakers is not None
            speaker = speakers.get(os.path.abspath(name)) or speakers.get(os.path.realpath(name))
            if speaker is None:
                raise EmovoxError("no speaker for this file in the speaker table")
            return str(speaker)
        return str(group_by(name))

    def _group_statistics(self, names: Sequence[str]) -> tuple[
            Stats | None, dict[int, np.ndarray], dict[int, Prediction]]:
        """First pass over a group: statistics over the features its overall results use.

        Returns the statistics, the whole recordings' features kept for the second pass (up to
        ``cache_megabytes``) and the records of recordings that failed.
        """
        moments = Moments()
        kept: dict[int, np.ndarray] = {}
        failed: dict[int, Prediction] = {}
        size = 0
        block = 4 * self.batch_size
        for start in range(0, len(names), block):
            whole: list[tuple[int, Recording]] = []
            for i in range(start, min(start + block, len(names))):
                try:
                    rec = self.open(names[i])
                    if not rec.whole:
                        windows = self.windows(rec)
                        for _, frames in self.window_features(rec, windows):
                            moments.add(frames)
                    elif self.speech(rec.signal)[0]:  # type: ignore[arg-type]
                        whole.append((i, rec))
                except Exception as exc:  # noqa: BLE001 - one record per failed recording
                    failed[i] = _failure(names[i], exc)
            for i, feats in self._encode_each(whole).items():
                if isinstance(feats, BaseException):
                    failed[i] = _failure(names[i], feats)
                    continue
                moments.add(feats)
                if size + feats.nbytes <= self.cache_bytes:
                    kept[i] = feats
                    size += feats.nbytes
        return moments.result(), kept, failed

    # --- internals ---

    def _torch_module(self) -> Any:
        if self._module is None and hasattr(self.frontend, "torch_module"):
            module = self.frontend.torch_module()
            module.eval()
            if self.quantize:
                import warnings

                import torch

                with warnings.catch_warnings():  # torch.ao's notice that it moves to torchao
                    warnings.simplefilter("ignore")
                    module = torch.ao.quantization.quantize_dynamic(
                        module, {torch.nn.Linear}, dtype=torch.qint8)
            self._module = module
        return self._module

    def _source(self, rec: Recording) -> _Source:
        if rec.signal is not None:
            return _ArraySource(rec.signal)
        assert rec.name is not None and rec.info is not None
        return _FileSource(rec.name, self.sample_rate, rec.info)


def _slice_frames(pieces: list[tuple[int, np.ndarray]], span: tuple[int, int],
                  fs: int) -> np.ndarray:
    """The frames of a window, cut from the features of the chunks that cover it."""
    first, last = span[0] // fs, -(-span[1] // fs)
    parts = []
    for offset, feats in pieces:
        start = offset // fs
        lo, hi = max(first, start), min(last, start + feats.shape[-2])
        if lo < hi:
            parts.append(feats[..., lo - start : hi - start, :])
    if not parts:
        raise EmovoxError("no features for a window (recording shorter than its header says)")
    return np.concatenate(parts, axis=-2) if len(parts) > 1 else parts[0]


def _slice_samples(pieces: list[tuple[int, np.ndarray]], span: tuple[int, int]) -> np.ndarray:
    """The samples of a window, cut from the chunks that cover it."""
    parts = []
    for offset, signal in pieces:
        lo, hi = max(span[0], offset), min(span[1], offset + len(signal))
        if lo < hi:
            parts.append(signal[lo - offset : hi - offset])
    if not parts:
        raise EmovoxError("no audio for a window (recording shorter than its header says)")
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


# --- plotting ----------------------------------------------------------------------------------


#: Emotion colours of the timeline plots, the same as the web page's (``web/app.js``).
EMOTION_COLORS: dict[str, str] = {
    "angry": "#d62728", "happy": "#ff7f0e", "sad": "#1f77b4", "neutral": "#7f7f7f",
    "fearful": "#9467bd", "disgust": "#2ca02c", "surprised": "#e377c2", "calm": "#17becf",
    "frustrated": "#8c564b", "excited": "#bcbd22",
}
#: Colours for other labels, in order (as on the web page).
OTHER_COLORS = ("#8c564b", "#17becf", "#bcbd22", "#393b79", "#637939", "#843c39", "#7b4173")
#: Timelines with at most this many windows also get one probability line per emotion.
LINES_UP_TO = 40


def emotion_color(label: str, labels: Sequence[str]) -> str:
    """The colour of an emotion: its usual one, else the next of :data:`OTHER_COLORS`."""
    if label in EMOTION_COLORS:
        return EMOTION_COLORS[label]
    others = [name for name in labels if name not in EMOTION_COLORS]
    index = others.index(label) if label in others else 0
    return OTHER_COLORS[index % len(OTHER_COLORS)]


def plot_timelines(predictions: Sequence[Prediction], path: str | os.PathLike[str],
                   limit: int = 20) -> int:
    """Draw the timeline of each prediction that has one into one PNG file (atomically).

    One panel per recording, readable at any length: a band of the most probable emotion of
    each window (its colour, more opaque the surer the model; grey where there is no speech),
    and, for timelines of 2 to :data:`LINES_UP_TO` windows, every emotion's probability as a
    line above it. Colours are the web page's (:data:`EMOTION_COLORS`).

    Args:
        predictions: Predictions; those without a timeline are skipped.
        path: The PNG file to write.
        limit: Draw at most this many panels.

    Returns:
        The number of panels drawn.

    Raises:
        EmovoxError: If no prediction has a timeline, or the file cannot be written.
        MissingExtraError: Without matplotlib (extra ``plot``).
    """
    from .errors import require
    from .files import save_png

    require("matplotlib", "plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    shown = [p for p in predictions if p.timeline][:limit]
    if not shown:
        raise EmovoxError("nothing to plot: no recording has a timeline")
    labels: list[str] = []
    for pred in shown:
        for seg in pred.timeline or ():
            labels.extend(k for k in seg.probabilities if k not in labels)
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 0.8 + 2.0 * len(shown)), squeeze=False)
    for ax, pred in zip(axes[:, 0], shown, strict=True):
        segments = list(pred.timeline or ())
        lines = 1 < len(segments) <= LINES_UP_TO
        band = 0.18 if lines else 1.0  # the band's height: all of the panel when alone
        centres = np.array([(s.start + s.end) / 2 for s in segments])
        # Each window owns the stretch between the midpoints to its neighbours' centres.
        edges = (np.concatenate([[segments[0].start], (centres[1:] + centres[:-1]) / 2,
                                 [segments[-1].end]]) if len(segments) > 1
                 else np.array([segments[0].start, segments[0].end]))
        for k, seg in enumerate(segments):
            if seg.speech and seg.probabilities:
                sure = float(seg.probabilities.get(seg.label, 0.0))
                ax.axvspan(edges[k], edges[k + 1], ymin=0.0, ymax=band, linewidth=0,
                           color=emotion_color(seg.label, labels), alpha=0.25 + 0.75 * sure)
            else:
                ax.axvspan(edges[k], edges[k + 1], ymin=0.0, ymax=band, color="0.85",
                           linewidth=0)
        if lines:
            for name in labels:
                values = np.array([s.probabilities.get(name, np.nan) if s.speech else np.nan
                                   for s in segments], dtype=float)
                ax.plot(centres, band + 0.02 + (0.98 - band) * values, linewidth=1.3,
                        color=emotion_color(name, labels))
            ax.set_yticks([band + 0.02, 1.0], ["p = 0", "1"])
        else:
            ax.set_yticks([])
        ax.set_ylim(0, 1)
        ax.set_xlim(0, max(pred.duration or 0.0, float(segments[-1].end)))
        title = Path(pred.path).name if pred.path else "signal"
        ax.set_title(f"{title}: {pred.label}" + (" (uncertain)" if pred.uncertain else ""),
                     fontsize=10, loc="left")
    axes[-1, 0].set_xlabel("time (s). Band: each window's most probable emotion, fainter when "
                           "less sure, grey without speech")
    handles = [Patch(color=emotion_color(name, labels), label=name) for name in labels]
    axes[0, 0].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                      fontsize=8, frameon=False)
    fig.tight_layout()
    save_png(fig, path)
    return len(shown)
