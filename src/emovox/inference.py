"""The recognizer: point it at recordings, get emotions.

:class:`Recognizer` wraps a trained checkpoint (the bundled default model, or your own) behind
four verbs that all return :class:`~emovox.types.Prediction` records:

- :meth:`~Recognizer.predict_signal` for an array already in memory,
- :meth:`~Recognizer.predict_file` for one file,
- :meth:`~Recognizer.predict_files` for many files (batched; a failed file gives a record with
  ``error`` set and the batch goes on),
- :meth:`~Recognizer.predict_folder` for every audio file under a folder.

How a recording is processed:

1. It is read as float32 mono at the model's rate (any format libsndfile reads; channels
   averaged, rate converted; see :mod:`emovox.audio`).
2. Energy voice activity detection (:mod:`emovox.vad`) decides whether it holds speech. A
   recording without speech is reported as ``label == "silence"`` with ``speech == False``,
   empty probabilities and a ``note``: it is never forced into an emotion.
3. Short recordings (up to ``whole_seconds``, twice the window by default: 6 s) are encoded
   whole by the model's frontend, in batches of similar length, and classified in batches.
4. Longer recordings, or any recording when a timeline is asked for, are analysed in sliding
   windows (``window`` seconds every ``hop`` seconds), and recordings longer than
   ``timeline_after`` (20 s) show that timeline unless told not to. Why windows: emotion models
   are trained on short clips (acted corpora: 2-5 s), and a Whisper encoding of a longer
   recording is not what they saw. Measured with a development model (Whisper tiny, trained on
   RAVDESS clips) on recordings made of 2 or 3 RAVDESS clips of one emotion: 27 % and 22 %
   accuracy when encoded whole, 62 % and 72 % as the mean of 3 s windows (whole clips of
   3.6 s: 66 % whole, 56 % windowed). The audio is read in chunks of
   ``chunk_seconds`` (30 s), so memory stays bounded whatever the length. Windows without speech
   are marked ``"silence"`` and are neither encoded nor classified. Speech windows are encoded
   on their own, in batches (Whisper and other contextual encoders: a window cut out of a
   longer encoding looks nothing like the clips the model was trained on, see
   :data:`LOCAL_FRONTENDS`); for frontends whose frames are local (log-mel), features are
   computed once per chunk and sliced per window. The overall result is the mean of the speech
   windows' probabilities.

Normalisation groups (``group_by``): a model trained with ``data.normalization = "speaker"``
standardises each speaker's features with that speaker's own statistics. Give the recognizer the
same kind of group and it computes the statistics over the group's recordings before
classifying them: ``"folder"`` (the recordings in one folder), ``"speaker"`` (a ``speakers``
mapping from path to speaker), ``"file"`` (each recording's own statistics), or any callable
``path -> group name``. Without ``group_by`` (the default), the statistics of the training data
are used, so a single file needs nothing. Models trained with ``"global"`` normalisation use
group statistics too when asked (an adaptation to the recording conditions); models trained with
``"utterance"`` or ``"none"`` ignore ``group_by``.

Example:
    >>> from emovox.inference import Recognizer
    >>> recognizer = Recognizer.default()  # doctest: +SKIP
    >>> prediction = recognizer.predict_file("speech.wav")  # doctest: +SKIP
    >>> prediction.label, round(prediction.probabilities["angry"], 2)  # doctest: +SKIP
    ('angry', 0.81)
    >>> [p.to_dict() for p in recognizer.predict_folder("calls/")]  # doctest: +SKIP
    [{'path': 'calls/a.wav', 'label': 'neutral', ...}, {'path': 'calls/b.txt', 'error': ...}]
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from . import audio
from .errors import ConfigError, EmovoxError
from .types import Prediction, Segment
from .vad import SILENCE_DB, EnergyVAD

__all__ = [
    "AUDIO_EXTENSIONS",
    "SILENCE",
    "Moments",
    "Recognizer",
    "find_audio",
    "pad_features",
    "plot_timelines",
    "read_speakers",
]

#: The label of a recording or window without speech.
SILENCE = "silence"

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

#: Where the bundled default model lives inside the package.
DEFAULT_MODEL = "pretrained/default.pt"

GroupBy = Literal["speaker", "folder", "file"] | Callable[[str], str] | None
Stats = tuple[np.ndarray, np.ndarray]
Progress = Callable[[int, int], None]


# --- small pieces ------------------------------------------------------------------------------


class Moments:
    """Running per-feature mean and standard deviation over frames (axis ``-2``).

    The same statistics as the training code's normaliser (population variance, ``+1e-8``
    under the square root), accumulated piece by piece so long recordings never need to be in
    memory at once.

    Example:
        >>> import numpy as np
        >>> m = Moments()
        >>> m.add(np.array([[0.0, 1.0], [2.0, 3.0]]))
        >>> m.add(np.array([[4.0, 5.0]]))
        >>> mean, std = m.result()
        >>> mean.tolist()
        [[2.0, 3.0]]
    """

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self.total_sq: np.ndarray | None = None
        self.count = 0

    def add(self, feats: np.ndarray) -> None:
        """Add the frames of one feature matrix ``[..., T, D]``."""
        f64 = np.asarray(feats, dtype=np.float64)
        s = f64.sum(axis=-2, keepdims=True)
        sq = np.square(f64).sum(axis=-2, keepdims=True)
        self.total = s if self.total is None else self.total + s
        self.total_sq = sq if self.total_sq is None else self.total_sq + sq
        self.count += f64.shape[-2]

    def result(self) -> Stats | None:
        """``(mean, std)`` shaped like one frame with a time axis of 1, or ``None`` if empty."""
        if self.total is None or self.total_sq is None or self.count == 0:
            return None
        mean = self.total / self.count
        var = np.maximum(self.total_sq / self.count - mean**2, 0.0)
        return mean.astype(np.float32), np.sqrt(var + 1e-8).astype(np.float32)


def pad_features(feats: Sequence[np.ndarray]) -> tuple[Any, Any]:
    """Stack feature matrices of different lengths into one padded batch.

    Args:
        feats: ``N`` arrays ``[..., T_i, D]`` with the same leading and last axes.

    Returns:
        ``(x, mask)`` torch tensors: ``x [N, ..., max T, D]`` float32 (zeros past each end) and
        ``mask [N, max T]`` bool (True = valid frame).
    """
    import torch

    t_max = max(f.shape[-2] for f in feats)
    x = np.zeros((len(feats), *feats[0].shape[:-2], t_max, feats[0].shape[-1]), dtype=np.float32)
    mask = np.zeros((len(feats), t_max), dtype=bool)
    for i, f in enumerate(feats):
        x[i, ..., : f.shape[-2], :] = f
        mask[i, : f.shape[-2]] = True
    return torch.from_numpy(x), torch.from_numpy(mask)


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


# --- the recognizer ----------------------------------------------------------------------------


@dataclass
class _Options:
    timeline: bool | None = None
    top_k: int | None = None
    embeddings: bool = False
    group_by: Any = None
    speakers: Mapping[str, str] | None = None


@dataclass
class _Job:
    """One recording on its way through the recognizer."""

    index: int
    name: str | None  # the path as given, for records and messages; None for arrays
    signal: np.ndarray | None = None  # short recordings, while they are being processed
    info: audio.AudioInfo | None = None
    seconds: float = 0.0
    long: bool = False  # analysed in windows
    group: str | None = None
    speech: bool | None = None
    peak_db: float = SILENCE_DB
    features: np.ndarray | None = None
    result: Prediction | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Recognizer:
    """Speech emotion recognition with a trained emovox checkpoint.

    Build one with :meth:`default` (the bundled model) or :meth:`from_checkpoint`; it holds the
    model, its frontend and the analysis options, and is reused for any number of recordings.

    Args:
        model: A trained model (:func:`emovox.train.load_checkpoint`).
        batch_size: Recordings encoded together (similar lengths are batched together).
        window: Timeline window length, in seconds.
        hop: Time between timeline windows, in seconds (at most ``window``).
        timeline_after: Recordings longer than this (seconds) show their timeline unless
            ``timeline=False``.
        whole_seconds: Recordings up to this long (seconds) are encoded whole; longer ones are
            analysed in windows (default: twice ``window``).
        chunk_seconds: Audio read and encoded at a time for the timeline analysis (30 s is
            Whisper's own window, so chunking changes nothing for Whisper models).
        min_seconds: Shorter recordings are refused (nothing can be said about them).
        max_seconds: Longer recordings are refused (``None``: no limit; memory is bounded by
            the chunked timeline analysis either way).
        vad: The voice activity detector (default :class:`~emovox.vad.EnergyVAD()`).
        threads: Torch threads for this process (``None``: leave torch's default).
        cache_megabytes: Memory for features kept between the two passes of ``group_by``
            (features beyond it are recomputed).
        quantize: Run the frontend's linear layers with int8 weights (PyTorch dynamic
            quantisation): about 2.5x faster Whisper encoding on one CPU thread, at the cost of
            features that differ from the ones the model was trained on (a few % relative
            error), so predictions can change. Off by default.

    Attributes:
        labels: The model's emotions, in output order.
        sample_rate: The rate recordings are converted to, in Hz.
        model: The :class:`~emovox.train.TrainedModel`.
        frontend: The model's feature frontend.

    Raises:
        ConfigError: On a bad option.

    Example:
        >>> recognizer = Recognizer.from_checkpoint("model.pt", window=2.0)  # doctest: +SKIP
        >>> recognizer.labels  # doctest: +SKIP
        ('angry', 'disgust', 'fearful', 'happy', 'neutral', 'sad', 'surprised')
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
        min_seconds: float = 0.1,
        max_seconds: float | None = None,
        vad: EnergyVAD | None = None,
        threads: int | None = None,
        cache_megabytes: float = 1024.0,
        quantize: bool = False,
    ) -> None:
        from .features import build_frontend

        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1 (got {batch_size})")
        if not window > 0 or not 0 < hop <= window:
            raise ConfigError(f"need window > 0 and 0 < hop <= window (got window {window:g} s, "
                              f"hop {hop:g} s)")
        if not chunk_seconds >= window:
            raise ConfigError(f"chunk_seconds ({chunk_seconds:g}) must be >= window ({window:g})")
        if not timeline_after > 0 or not min_seconds > 0:
            raise ConfigError("timeline_after and min_seconds must be > 0")
        if whole_seconds is not None and not whole_seconds > 0:
            raise ConfigError("whole_seconds must be > 0 or None")
        if max_seconds is not None and not max_seconds > 0:
            raise ConfigError("max_seconds must be > 0 or None")
        if threads is not None:
            if threads < 1:
                raise ConfigError(f"threads must be >= 1 (got {threads})")
            import torch

            torch.set_num_threads(int(threads))
        self.model = model
        self.labels: tuple[str, ...] = tuple(model.labels)
        self.frontend = build_frontend(model.frontend_config)
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
        self.quantize = bool(quantize)
        self.mode = str(model.normalizer.mode)
        self.neural = model.config.method == "neural"
        # Samples per feature frame (0 for functionals).
        fs = float(getattr(self.frontend, "frame_seconds", 0.0) or 0.0)
        self.frame_samples = int(round(fs * self.sample_rate)) if fs > 0 else 0
        # Timeline windows are cut from the features of the whole chunk only when a frame
        # depends on nearby samples alone; contextual encoders re-encode every window.
        self.slices_frames = bool(self.frame_samples) and self.frontend.name in LOCAL_FRONTENDS
        unit = math.lcm(self.frame_samples or 1, self.vad.block_samples(self.sample_rate))
        self.chunk_samples = max(unit, int(round(chunk_seconds * self.sample_rate / unit)) * unit)
        self.window_samples = max(1, int(round(self.window * self.sample_rate)))
        self.hop_samples = max(1, int(round(self.hop * self.sample_rate)))
        self._module: Any = None

    # --- construction ---

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], **options: Any) -> Recognizer:
        """Load a checkpoint written by ``emovox train`` (or :func:`emovox.train.save_checkpoint`).

        Args:
            path: The checkpoint file.
            **options: Options of :class:`Recognizer`.

        Raises:
            EmovoxError: If the file is missing or not an emovox checkpoint, or its frontend
                cannot be built here (e.g. a missing extra).

        Example:
            >>> recognizer = Recognizer.from_checkpoint("runs/mll.pt")  # doctest: +SKIP
        """
        from .train import load_checkpoint

        return cls(load_checkpoint(Path(path)), **options)

    @classmethod
    def default(cls, **options: Any) -> Recognizer:
        """The bundled default model (7 emotions; see its model card beside it).

        Args:
            **options: Options of :class:`Recognizer`.

        Raises:
            EmovoxError: If the model file is missing from the installation.

        Example:
            >>> Recognizer.default().labels  # doctest: +SKIP
            ('angry', 'disgust', 'fearful', 'happy', 'neutral', 'sad', 'surprised')
        """
        resource = resources.files("emovox").joinpath(DEFAULT_MODEL)
        if not resource.is_file():
            raise EmovoxError("the bundled default model is missing from this installation "
                              "(reinstall emovox, or give a checkpoint with --model)")
        with resources.as_file(resource) as path:
            return cls.from_checkpoint(path, **options)

    def __repr__(self) -> str:
        return (f"Recognizer(labels={list(self.labels)}, frontend={self.frontend.name!r}, "
                f"normalization={self.mode!r}, window={self.window:g}, hop={self.hop:g})")

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
            timeline: ``True``: always analyse in windows and return the timeline; ``False``:
                never return one (long signals are still analysed in windows); ``None``: return
                it for signals longer than ``timeline_after``.
            top_k: Also return the ``k`` most probable emotions.
            embeddings: Also return the model's embedding.
            group_by: ``"file"`` standardises with the signal's own statistics (see the module
                docstring); ``None`` uses the training statistics.

        Returns:
            The :class:`~emovox.types.Prediction` (``path`` is ``None``).

        Raises:
            EmovoxError: If the signal is unusable (empty, NaN, too short, ...).

        Example:
            >>> import numpy as np
            >>> silence = np.zeros(16000, dtype=np.float32)
            >>> recognizer.predict_signal(silence, 16000).label  # doctest: +SKIP
            'silence'
        """
        if group_by not in (None, "file"):
            raise ConfigError("predict_signal: group_by must be None or 'file'")
        wave = audio.prepare(signal, sample_rate, self.sample_rate, max_seconds=self.max_seconds)
        job = _Job(0, None, signal=wave)
        opts = _Options(timeline, top_k, embeddings, group_by)
        self._run([job], opts, None)
        result = job.result
        assert result is not None
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
            >>> recognizer.predict_file("speech.wav", top_k=2).top_k  # doctest: +SKIP
            (('angry', 0.81), ('disgust', 0.07))
        """
        result = self.predict_files([path], **options)[0]
        if result.error is not None:
            raise EmovoxError(f"{_display(path)}: {result.error}")
        return result

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
        """Recognise the emotion in each of several files (batched internally).

        A file that cannot be used gives a record with ``error`` set (``to_dict()`` is
        ``{"path", "error"}``) and the others go on.

        Args:
            paths: Audio files.
            timeline: Timeline: ``True`` always, ``False`` never shown, ``None`` shown for
                recordings longer than ``timeline_after`` (see :meth:`predict_signal`).
            top_k: Also return the ``k`` most probable emotions of each recording.
            embeddings: Also return each recording's embedding.
            group_by: Normalisation groups: ``"folder"``, ``"speaker"`` (needs ``speakers``),
                ``"file"``, a callable ``path -> group``, or ``None`` (training statistics).
            speakers: Path -> speaker for ``group_by="speaker"`` (see :func:`read_speakers`);
                a file missing from it gets an error record.
            progress: Called as ``progress(done, total)`` after each recording.

        Returns:
            One :class:`~emovox.types.Prediction` per path, in order.

        Example:
            >>> results = recognizer.predict_files(["a.wav", "b.flac"])  # doctest: +SKIP
            >>> [r.label for r in results]  # doctest: +SKIP
            ['happy', 'neutral']
        """
        if group_by == "speaker" and speakers is None:
            raise ConfigError("group_by='speaker' needs a speakers mapping (path -> speaker)")
        if group_by not in (None, "speaker", "folder", "file") and not callable(group_by):
            raise ConfigError(f"unknown group_by {group_by!r} (speaker, folder, file or None)")
        jobs = [_Job(i, os.fspath(p)) for i, p in enumerate(paths)]
        self._run(jobs, _Options(timeline, top_k, embeddings, group_by, speakers), progress)
        return [job.result or Prediction.failed(job.name, "not processed") for job in jobs]

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

        Example:
            >>> recognizer.predict_folder("calls/", group_by="folder")  # doctest: +SKIP
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

    # --- features and classification (public building blocks) ---

    def encode(self, signals: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Frontend features of several signals, batched by similar length.

        Args:
            signals: Mono float32 signals at :attr:`sample_rate`.

        Returns:
            One feature matrix per signal, in order, shaped as the frontend returns it
            (``[T, D]``; ``[L + 1, T, D]`` for all-layer Whisper features).
        """
        module = self._torch_module()
        if module is None:
            return [np.asarray(self.frontend(s), dtype=np.float32) for s in signals]
        import torch

        out: list[np.ndarray | None] = [None] * len(signals)
        order = sorted(range(len(signals)), key=lambda i: len(signals[i]))
        budget = self.batch_size * 10 * self.sample_rate  # padded samples per batch
        start = 0
        while start < len(order):
            stop = start + 1
            while (stop < len(order) and stop - start < self.batch_size
                   and len(signals[order[stop]]) * (stop - start + 1) <= budget):
                stop += 1
            batch = order[start:stop]
            lengths = [len(signals[i]) for i in batch]
            wave = torch.zeros(len(batch), max(lengths))
            for row, i in enumerate(batch):
                wave[row, : lengths[row]] = torch.from_numpy(np.asarray(signals[i], np.float32))
            with torch.inference_mode():
                feats, mask = module(wave, torch.tensor(lengths, dtype=torch.long))
            counts = mask.sum(dim=1).tolist()
            array = feats.numpy()
            for row, i in enumerate(batch):
                out[i] = np.array(array[row, ..., : int(counts[row]), :], dtype=np.float32)
            start = stop
        return [f for f in out if f is not None]

    def classify(
        self, features: Sequence[np.ndarray], stats: Sequence[Stats | None] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Class probabilities (and embeddings) for clean feature matrices.

        Args:
            features: Feature matrices as :meth:`encode` returns them.
            stats: Per matrix, the ``(mean, std)`` to standardise with, or ``None`` for the
                training statistics (ignored by models trained without group statistics).

        Returns:
            ``(probabilities [N, C], embeddings [N, E] or None)``; ``None`` for models without
            an embedding (the scikit-learn baselines).
        """
        n = len(features)
        if n == 0:
            return np.zeros((0, len(self.labels))), None
        stats = list(stats) if stats is not None else [None] * n
        normed = [self._normalise(f, s) for f, s in zip(features, stats, strict=True)]
        if not self.neural:
            from .train import pool_stats

            x = np.stack([pool_stats(f, self.model.config.classic.layer) for f in normed])
            return np.asarray(self.model.network.predict_proba(x), dtype=np.float64), None
        import torch

        network = self.model.network
        network.eval()
        order = np.argsort([f.shape[-2] for f in normed], kind="stable")
        probs = np.zeros((n, len(self.labels)), dtype=np.float64)
        embeddings: np.ndarray | None = None
        with torch.inference_mode():
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                x, mask = pad_features([normed[i] for i in idx])
                out = network(x, mask)
                probs[idx] = torch.softmax(out.logits.float(), dim=-1).numpy()
                emb = out.embedding.float().numpy()
                if embeddings is None:
                    embeddings = np.zeros((n, emb.shape[1]), dtype=np.float32)
                embeddings[idx] = emb
        return probs, embeddings

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

    def _normalise(self, feats: np.ndarray, stats: Stats | None) -> np.ndarray:
        if self.mode == "none":
            return feats
        if self.mode == "utterance":
            moments = Moments()
            moments.add(feats)
            own = moments.result()
            assert own is not None
            mean, std = own
        else:
            mean, std = stats if stats is not None else self.model.normalizer.stats["*"]
        return ((feats - mean) / std).astype(np.float32, copy=False)

    def _uses_groups(self, opts: _Options) -> bool:
        return opts.group_by is not None and self.mode in ("global", "speaker")

    def _group_key(self, job: _Job, opts: _Options) -> str | None:
        name = job.name
        if not self._uses_groups(opts) or name is None or opts.group_by == "file":
            return None
        if opts.group_by == "folder":
            return os.path.dirname(os.path.abspath(name))
        if opts.group_by == "speaker":
            assert opts.speakers is not None
            key = os.path.abspath(name)
            speaker = opts.speakers.get(key) or opts.speakers.get(os.path.realpath(name))
            if speaker is None:
                raise EmovoxError("no speaker for this file in the speaker table")
            return str(speaker)
        return str(opts.group_by(name))

    def _run(self, jobs: list[_Job], opts: _Options, progress: Progress | None) -> None:
        """Fill ``job.result`` for every job."""
        done = 0
        total = len(jobs)

        def tick(count: int = 1) -> None:
            nonlocal done
            done += count
            if progress is not None and count:
                progress(done, total)

        block = 4 * self.batch_size
        if not self._uses_groups(opts) or opts.group_by == "file":
            for start in range(0, total, block):
                self._process(jobs[start : start + block], opts, lambda _job: None, tick)
            return
        groups: dict[str, list[_Job]] = {}
        for job in jobs:
            try:
                job.group = self._group_key(job, opts)
            except EmovoxError as exc:
                job.result = Prediction.failed(job.name, _reason(exc, job.name))
                tick()
                continue
            groups.setdefault(str(job.group), []).append(job)
        for members in groups.values():
            stats = self._group_stats(members, opts)

            def group_stats(_job: _Job, found: Stats | None = stats) -> Stats | None:
                return found

            for start in range(0, len(members), block):
                self._process(members[start : start + block], opts, group_stats, tick)

    def _group_stats(self, jobs: list[_Job], opts: _Options) -> Stats | None:
        """First pass of ``group_by``: statistics over the group's speech."""
        moments = Moments()
        kept = 0
        block = 4 * self.batch_size
        for start in range(0, len(jobs), block):
            part = jobs[start : start + block]
            ready = []
            for job in part:
                try:
                    self._prepare(job, opts)
                    if job.long:
                        for _, feats in self._window_features(job, opts):
                            moments.add(feats)
                    elif job.speech:
                        ready.append(job)
                    else:
                        job.signal = None  # silence: nothing more is needed from it
                except Exception as exc:  # noqa: BLE001 - one record per failed recording
                    job.result = _failure(job.name, exc)
            for job, feats in self._encode_jobs(ready):
                moments.add(feats)
                job.signal = None
                size = feats.size * 2
                if kept + size <= self.cache_bytes:
                    job.features = feats.astype(np.float16)
                    kept += size
        return moments.result()

    def _prepare(self, job: _Job, opts: _Options) -> None:
        """Read the header (or check the array), decide short/long, load short ones, run VAD."""
        if job.speech is not None or job.long:
            return
        if job.signal is not None:
            job.seconds = len(job.signal) / self.sample_rate
        else:
            assert job.name is not None
            job.info = audio.info(job.name)
            if job.info.frames <= 0:
                raise EmovoxError("no audio samples")
            job.seconds = job.info.frames / job.info.sample_rate
        if job.seconds < self.min_seconds:
            samples = "1 sample" if job.info is not None and job.info.frames == 1 else (
                f"{job.seconds:.3g} s")
            raise EmovoxError(f"too short for emotion recognition ({samples}; "
                              f"at least {self.min_seconds:g} s needed)")
        if self.max_seconds is not None and job.seconds > self.max_seconds:
            raise EmovoxError(f"{job.seconds:.1f} s long, over the {self.max_seconds:g} s limit")
        job.long = bool(opts.timeline) or job.seconds > self.whole_seconds
        if job.long:
            return
        if job.signal is None:
            assert job.name is not None
            job.signal = audio.load(job.name, self.sample_rate, max_seconds=None)
        levels = self.vad.levels(job.signal, self.sample_rate)
        job.peak_db = float(levels.max()) if levels.size else SILENCE_DB
        job.speech = self.vad.is_speech(levels, self.vad.threshold(levels), job.seconds)

    def _process(self, jobs: list[_Job], opts: _Options,
                 stats_for: Callable[[_Job], Stats | None], tick: Callable[[int], None]) -> None:
        """Second pass: classify short recordings together; long ones one by one."""
        batch: list[_Job] = []
        ticked = 0
        for job in jobs:
            if job.result is None:
                try:
                    self._prepare(job, opts)
                    if job.long:
                        job.result = self._predict_long(job, opts, stats_for(job))
                    elif not job.speech:
                        job.result = self._silence(job, None)
                    else:
                        batch.append(job)
                except Exception as exc:  # noqa: BLE001 - one record per failed recording
                    job.result = _failure(job.name, exc)
            if job.result is not None:
                job.signal = None
                tick(1)
                ticked += 1
        if not batch:
            return
        todo: list[_Job] = []
        for job in batch:
            if job.features is not None:
                continue
            if job.signal is None:  # dropped after the group pass (cache full): read again
                assert job.name is not None
                try:
                    job.signal = audio.load(job.name, self.sample_rate, max_seconds=None)
                except Exception as exc:  # noqa: BLE001 - one record per failed recording
                    job.result = _failure(job.name, exc)
                    continue
            todo.append(job)
        for job, feats in self._encode_jobs(todo):
            job.features = feats
        batch = [j for j in batch if j.result is None]
        feats_list = [np.asarray(j.features, dtype=np.float32) for j in batch]
        stats: list[Stats | None] = []
        for job, feats in zip(batch, feats_list, strict=True):
            if opts.group_by == "file" and self._uses_groups(opts):
                own = Moments()
                own.add(feats)
                stats.append(own.result())
            else:
                stats.append(stats_for(job))
        probs, embs = self.classify(feats_list, stats)
        for row, job in enumerate(batch):
            emb = embs[row] if (embs is not None and opts.embeddings) else None
            job.result = self._prediction(job, probs[row], emb, opts, None)
            job.features = None
        tick(sum(1 for j in jobs if j.result is not None) - ticked)

    def _encode_jobs(self, jobs: list[_Job]) -> list[tuple[_Job, np.ndarray]]:
        """Encode the jobs' signals in batches; if a batch fails, find the culprit alone."""
        jobs = [j for j in jobs if j.signal is not None]
        try:
            feats = self.encode([j.signal for j in jobs if j.signal is not None])
            pairs = list(zip(jobs, feats, strict=True))
        except Exception:  # noqa: BLE001 - retried one by one below
            pairs = []
            for job in jobs:
                try:
                    assert job.signal is not None
                    pairs.append((job, self.encode([job.signal])[0]))
                except Exception as exc:  # noqa: BLE001 - one record per failed recording
                    job.result = _failure(job.name, exc)
        for job in jobs:
            job.signal = None
        return pairs

    def _prediction(self, job: _Job, probs: np.ndarray, embedding: np.ndarray | None,
                    opts: _Options, timeline: Sequence[Segment] | None) -> Prediction:
        best = int(np.argmax(probs))
        return Prediction(
            label=self.labels[best],
            probabilities={name: float(p) for name, p in zip(self.labels, probs, strict=True)},
            top_k=_top(probs, self.labels, opts.top_k),
            timeline=None if timeline is None else tuple(timeline),
            embedding=None if embedding is None else tuple(float(v) for v in embedding),
            duration=job.seconds,
            path=job.name,
            speech=True,
        )

    def _silence(self, job: _Job, timeline: Sequence[Segment] | None) -> Prediction:
        return Prediction(label=SILENCE, probabilities={},
                          timeline=None if timeline is None else tuple(timeline),
                          duration=job.seconds, path=job.name, speech=False,
                          note=_silence_note(job.peak_db))

    # --- the timeline analysis ---

    def _source(self, job: _Job) -> _Source:
        if job.signal is not None:
            return _ArraySource(job.signal)
        assert job.name is not None and job.info is not None
        return _FileSource(job.name, self.sample_rate, job.info)

    def _spans(self, samples: int) -> list[tuple[int, int]]:
        """Window ``k`` covers samples ``[k * hop, min(k * hop + window, samples))``."""
        w, h = self.window_samples, self.hop_samples
        count = 1 if samples <= w else int(math.ceil((samples - w) / h)) + 1
        return [(k * h, min(k * h + w, samples)) for k in range(count)]

    def _scan(self, job: _Job) -> None:
        """First read of a long recording: block levels -> which windows hold speech."""
        if "speech" in job.extra:
            return
        source = self._source(job)
        levels = np.concatenate([self.vad.levels(chunk, self.sample_rate)
                                 for _, chunk in source.chunks(self.chunk_samples)] or [
            np.zeros(0, dtype=np.float32)])
        samples = source.samples
        spans = self._spans(samples)
        threshold = self.vad.threshold(levels)
        block = self.vad.block_samples(self.sample_rate)
        speech = []
        for a, b in spans:
            part = levels[a // block : max(a // block + 1, -(-b // block))]
            speech.append(self.vad.is_speech(part, threshold, (b - a) / self.sample_rate))
        job.peak_db = float(levels.max()) if levels.size else SILENCE_DB
        job.extra.update(spans=spans, speech=speech)

    def _window_features(self, job: _Job, opts: _Options) -> Iterator[tuple[int, np.ndarray]]:
        """Features of each speech window of a long recording, in order, chunk by chunk."""
        self._scan(job)
        spans: list[tuple[int, int]] = job.extra["spans"]
        wanted = [k for k, s in enumerate(job.extra["speech"]) if s]
        if not wanted:
            return
        source = self._source(job)
        pending = list(wanted)  # window indices still to emit, in order
        frames: list[tuple[int, np.ndarray]] = []  # (first sample, features) pieces
        samples: list[tuple[int, np.ndarray]] = []  # (first sample, signal) pieces
        fs = self.frame_samples if self.slices_frames else 0
        chunks = source.chunks(self.chunk_samples)
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
                overlaps = any(spans[k][0] < end and spans[k][1] > offset for k in pending)
                if overlaps:
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
                        yield k, self._slice_frames(frames, spans[k])
                else:
                    pieces = [self._slice_samples(samples, spans[k]) for k in ready]
                    yield from zip(ready, self.encode(pieces), strict=True)
                pending = [k for k in pending if k not in set(ready)]
            if pending:  # forget what no remaining window needs
                first = spans[pending[0]][0]
                frames = [(o, f) for o, f in frames if o + f.shape[-2] * max(fs, 1) > first]
                samples = [(o, s) for o, s in samples if o + len(s) > first]
            if finished:
                break

    def _slice_frames(self, pieces: list[tuple[int, np.ndarray]],
                      span: tuple[int, int]) -> np.ndarray:
        fs = self.frame_samples
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

    @staticmethod
    def _slice_samples(pieces: list[tuple[int, np.ndarray]], span: tuple[int, int]) -> np.ndarray:
        parts = []
        for offset, signal in pieces:
            lo, hi = max(span[0], offset), min(span[1], offset + len(signal))
            if lo < hi:
                parts.append(signal[lo - offset : hi - offset])
        if not parts:
            raise EmovoxError("no audio for a window (recording shorter than its header says)")
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _predict_long(self, job: _Job, opts: _Options, stats: Stats | None) -> Prediction:
        """Timeline analysis of one recording, in bounded memory."""
        self._scan(job)
        if opts.group_by == "file" and self._uses_groups(opts):
            moments = Moments()
            for _, feats in self._window_features(job, opts):
                moments.add(feats)
            stats = moments.result()
        spans: list[tuple[int, int]] = job.extra["spans"]
        speech: list[bool] = job.extra["speech"]
        probs = np.zeros((len(spans), len(self.labels)))
        embs: np.ndarray | None = None
        pending: list[tuple[int, np.ndarray]] = []

        def flush() -> None:
            nonlocal embs
            if not pending:
                return
            p, e = self.classify([f for _, f in pending], [stats] * len(pending))
            index = [k for k, _ in pending]
            probs[index] = p
            if e is not None:
                if embs is None:
                    embs = np.zeros((len(spans), e.shape[1]), dtype=np.float32)
                embs[index] = e
            pending.clear()

        for k, feats in self._window_features(job, opts):
            pending.append((k, feats))
            if len(pending) >= 4 * self.batch_size:
                flush()
        flush()
        show = opts.timeline or (opts.timeline is None and job.seconds > self.timeline_after)
        sr = self.sample_rate
        timeline = [
            Segment(a / sr, b / sr, self.labels[int(np.argmax(probs[k]))],
                    {n: float(v) for n, v in zip(self.labels, probs[k], strict=True)}, True)
            if speech[k] else Segment(a / sr, b / sr, SILENCE, {}, False)
            for k, (a, b) in enumerate(spans)
        ] if show else None
        voiced = [k for k, s in enumerate(speech) if s]
        if not voiced:
            return self._silence(job, timeline)
        mean = probs[voiced].mean(axis=0)
        emb = embs[voiced].mean(axis=0) if (embs is not None and opts.embeddings) else None
        return self._prediction(job, mean, emb, opts, timeline)


# --- plotting ----------------------------------------------------------------------------------


def plot_timelines(predictions: Sequence[Prediction], path: str | os.PathLike[str],
                   limit: int = 20) -> int:
    """Draw the timeline of each prediction that has one into one PNG file (atomically).

    One panel per recording: the probability of each emotion over time (at each window's
    centre), windows without speech shaded grey.

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
    from .files import atomic_open

    require("matplotlib", "plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [p for p in predictions if p.timeline][:limit]
    if not shown:
        raise EmovoxError("nothing to plot: no recording has a timeline")
    labels: list[str] = []
    for pred in shown:
        for seg in pred.timeline or ():
            labels.extend(k for k in seg.probabilities if k not in labels)
    colors = plt.get_cmap("tab10")
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 0.6 + 2.4 * len(shown)), squeeze=False)
    for ax, pred in zip(axes[:, 0], shown, strict=True):
        segments = list(pred.timeline or ())
        centres = np.array([(s.start + s.end) / 2 for s in segments])
        step = float(np.median(np.diff([s.start for s in segments]))) if len(segments) > 1 else (
            segments[0].end - segments[0].start)
        for i, name in enumerate(labels):
            values = [s.probabilities.get(name, np.nan) if s.speech else np.nan for s in segments]
            ax.plot(centres, values, label=name, color=colors(i % 10), linewidth=1.4)
        for s, c in zip(segments, centres, strict=True):
            if not s.speech:
                ax.axvspan(c - step / 2, c + step / 2, color="0.88", linewidth=0)
        ax.set_ylim(0, 1)
        ax.set_xlim(0, max(pred.duration or 0.0, float(segments[-1].end)))
        ax.set_ylabel("probability")
        title = Path(pred.path).name if pred.path else "signal"
        ax.set_title(f"{title}: {pred.label}", fontsize=10, loc="left")
    axes[-1, 0].set_xlabel("time (s); grey = no speech")
    axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    try:
        with atomic_open(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=100)
    finally:
        plt.close(fig)
    return len(shown)
