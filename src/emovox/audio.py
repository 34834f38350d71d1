"""Audio input: any file or array -> float32 mono at the rate a model wants, with clear errors.

Every stage of emovox that touches audio goes through this module: :func:`load` for files (any
format libsndfile reads: WAV, FLAC, OGG/Vorbis, MP3, AIFF, ...), :func:`prepare` for arrays that
are already in memory (live audio, HTTP uploads), :func:`resample` for the rate change alone and
:func:`info` to look at a file without decoding it.

Output signals are always 1-D ``float32`` arrays in ``[-1, 1]`` (channels averaged), at
``sample_rate`` samples per second (16 kHz by default). Every failure is an
:class:`~emovox.errors.AudioError` whose message is one line: the path (or ``signal``), a colon
and the reason, e.g. ``take3.wav: truncated or corrupt audio (header declares 48000 frames, file
holds 20311)``.

Example:
    >>> import numpy as np
    >>> stereo = np.zeros((8000, 2), dtype=np.int16)  # 1 s at 8 kHz, [frames, channels]
    >>> prepare(stereo, 8000).shape  # 1 s at 16 kHz, mono
    (16000,)
"""

from __future__ import annotations

import math
import os
import stat
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import soundfile as sf
import soxr
from numpy.typing import NDArray

from emovox.errors import AudioError

__all__ = [
    "DEFAULT_MAX_SECONDS",
    "DEFAULT_SAMPLE_RATE",
    "AudioInfo",
    "info",
    "is_silent",
    "load",
    "prepare",
    "resample",
]

DEFAULT_SAMPLE_RATE = 16000
"""Sample rate (Hz) of every signal emovox returns unless told otherwise."""

DEFAULT_MAX_SECONDS = 3600.0
"""Longest stretch of audio (seconds) read in one call; guards memory against huge files."""

_MAX_RATE = 768_000  # highest rate in practical use; larger requested rates are typos
_RESAMPLE_QUALITY = "HQ"
# MP3 frame counts are estimated from the stream header when there is no Xing/Info tag, so a
# short read of up to 1 % plus two MPEG frames (2 x 1152 samples) is not treated as truncation.
_MP3_SLACK_FRACTION = 0.01
_MP3_SLACK_FRAMES = 2 * 1152
# libsndfile's log line for an Ogg stream cut before its last page; its frame count then reads
# 0, which would otherwise be reported as "no audio samples".
_EARLY_END_LOG_MARKER = "ended unexpectedly"
# libsndfile's public error codes (sndfile.h); larger codes are format-specific decoder errors.
_SF_ERR_UNRECOGNISED_FORMAT = 1
_SF_ERR_UNSUPPORTED_ENCODING = 4

Signal = NDArray[np.float32]
_REAL = (int, float, np.integer, np.floating)


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file's header says about it (no samples are decoded).

    Attributes:
        sample_rate: Samples per second per channel, in Hz.
        channels: Number of channels.
        frames: Number of samples per channel.
        seconds: Length in seconds (``frames / sample_rate``).
        format: libsndfile container name, e.g. ``"WAV"``, ``"FLAC"``, ``"OGG"``, ``"MP3"``.
        subtype: libsndfile sample encoding, e.g. ``"PCM_16"``, ``"FLOAT"``, ``"VORBIS"``.
    """

    sample_rate: int
    channels: int
    frames: int
    seconds: float
    format: str
    subtype: str


# --------------------------------------------------------------------------- public functions


def load(
    path: str | os.PathLike[str],
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    *,
    start: float = 0.0,
    duration: float | None = None,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
) -> Signal:
    """Read an audio file as float32 mono at ``sample_rate``.

    Any file libsndfile can decode is accepted, at any rate, bit depth and channel count.
    Channels are averaged; the rate is converted with soxr ("HQ"). Only the requested stretch is
    decoded, and its length is checked against ``max_seconds`` from the header before any
    sample is read.

    Args:
        path: Audio file. Symbolic links are followed.
        sample_rate: Rate of the returned signal, in Hz.
        start: Offset into the file where reading begins, in seconds.
        duration: Length to read, in seconds, or ``None`` for "to the end of the file". A
            stretch running past the end of the file is cut at the end.
        max_seconds: Longest stretch accepted, in seconds (``None``: no limit).

    Returns:
        Array of shape ``[samples]``, dtype float32, values in ``[-1, 1]`` for integer files.

    Raises:
        AudioError: If the file is missing, unreadable, empty, not audio, truncated or corrupt,
            holds no samples or non-finite samples, or is longer than ``max_seconds``; or if an
            argument is invalid. The message is one line starting with the path.
    """
    name = _display(path)
    target_rate = _check_rate(name, sample_rate, "sample rate")
    _check_stretch(name, start, duration)
    _check_max_seconds(name, max_seconds)
    with _open(path, name) as snd:
        file_rate = int(snd.samplerate)
        total = int(snd.frames)
        if total <= 0:
            raise _error(name, "no audio samples")
        first = int(round(start * file_rate))
        if first >= total:
            raise _error(
                name,
                f"start {start:g} s is at or past the end of the audio ({total / file_rate:g} s)",
            )
        stop = total if duration is None else min(total, first + int(round(duration * file_rate)))
        if stop <= first:
            raise _error(name, f"no audio samples in the requested stretch ({duration:g} s)")
        _check_length(name, stop - first, file_rate, max_seconds, whole=stop - first == total)
        frames = _read(name, snd, first, stop - first)
    mono = _downmix(frames)
    if not np.isfinite(mono).all():
        raise _error(name, "contains NaN or infinite samples")
    out = _resample(mono, file_rate, target_rate)
    if out.size == 0:
        raise _error(name, f"too short to resample to {target_rate} Hz ({mono.size} samples)")
    return out


def info(path: str | os.PathLike[str]) -> AudioInfo:
    """Describe an audio file from its header without decoding the samples.

    Args:
        path: Audio file. Symbolic links are followed.

    Returns:
        The file's :class:`AudioInfo`. A well-formed file with no samples gives ``frames=0``.

    Raises:
        AudioError: If the file is missing, unreadable, empty, not audio, or its header is
            truncated or corrupt. The message is one line starting with the path.
    """
    name = _display(path)
    with _open(path, name) as snd:
        rate = int(snd.samplerate)
        frames = int(snd.frames)
        return AudioInfo(
            sample_rate=rate,
            channels=int(snd.channels),
            frames=frames,
            seconds=frames / rate,
            format=str(snd.format),
            subtype=str(snd.subtype),
        )


def prepare(
    signal: Any,
    sample_rate: int,
    target_rate: int = DEFAULT_SAMPLE_RATE,
    *,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
) -> Signal:
    """Validate an in-memory signal and convert it to float32 mono at ``target_rate``.

    Integer samples are scaled to ``[-1, 1]`` by their dtype (``int16`` by 32768, ``uint8``
    centred on 128, ...); float samples are taken as they are. A 2-D array may be
    ``[frames, channels]`` or ``[channels, frames]``: the smaller axis is taken as channels
    (a square array is read as ``[frames, channels]``). Channels are averaged. The input is
    never modified and never returned as is.

    Args:
        signal: Array-like of shape ``[frames]``, ``[frames, channels]`` or
            ``[channels, frames]``; any real integer or float dtype.
        sample_rate: Rate of ``signal``, in Hz.
        target_rate: Rate of the returned signal, in Hz.
        max_seconds: Longest signal accepted, in seconds (``None``: no limit).

    Returns:
        Array of shape ``[samples]``, dtype float32.

    Raises:
        AudioError: If the signal is empty, not 1-D/2-D, of a non-numeric or complex dtype,
            holds NaN or infinite values, is longer than ``max_seconds``, or a rate is invalid.
            The message is one line starting with ``signal:``.
    """
    name = "signal"
    rate = _check_rate(name, sample_rate, "sample rate")
    target = _check_rate(name, target_rate, "target rate")
    _check_max_seconds(name, max_seconds)
    array = np.asarray(signal)
    if array.ndim not in (1, 2):
        raise _error(
            name,
            f"expected shape [frames] or [frames, channels], got {array.ndim}-D {array.shape}",
        )
    if array.size == 0:
        raise _error(name, "no audio samples")
    if array.ndim == 2 and array.shape[1] > array.shape[0]:
        array = array.T  # [channels, frames] -> [frames, channels]
    _check_length(name, array.shape[0], rate, max_seconds, whole=True)
    mono = _downmix(_to_float32(name, array))
    if not np.isfinite(mono).all():
        raise _error(name, "contains NaN or infinite samples")
    out = _resample(mono, rate, target)
    if out.size == 0:
        raise _error(name, f"too short to resample to {target} Hz ({mono.size} samples)")
    return out


def resample(signal: Any, from_rate: int, to_rate: int) -> NDArray[np.floating[Any]]:
    """Change the sample rate of a float signal with soxr ("HQ" quality).

    Args:
        signal: Float array of shape ``[frames]`` or ``[frames, channels]``.
        from_rate: Rate of ``signal``, in Hz.
        to_rate: Rate of the result, in Hz.

    Returns:
        Array of ``round(frames * to_rate / from_rate)`` frames, same channel layout; float64 if
        ``signal`` is float64, else float32. Always a new array.

    Raises:
        AudioError: If a rate is invalid, the array is not 1-D/2-D, or its dtype is not float
            (use :func:`prepare` to scale integer samples).
    """
    name = "signal"
    rate_in = _check_rate(name, from_rate, "sample rate")
    rate_out = _check_rate(name, to_rate, "target rate")
    array = np.asarray(signal)
    if array.ndim not in (1, 2):
        raise _error(
            name,
            f"expected shape [frames] or [frames, channels], got {array.ndim}-D {array.shape}",
        )
    if array.dtype.kind != "f":
        raise _error(
            name, f"resample expects float samples, got {array.dtype} (use prepare() for ints)"
        )
    if array.dtype != np.float64:
        array = array.astype(np.float32, copy=False)
    if rate_in == rate_out or array.shape[0] == 0:
        return array.copy()
    return np.asarray(soxr.resample(array, rate_in, rate_out, _RESAMPLE_QUALITY))


def is_silent(signal: Any, threshold_db: float = -60.0) -> bool:
    """Tell whether a signal's RMS level is below ``threshold_db``.

    The level is ``20 * log10(rms)`` in dB relative to full scale (1.0 for float samples; integer
    samples are scaled by their dtype first). An empty or all-zero signal is silent.

    Args:
        signal: Array of any shape, float or integer samples.
        threshold_db: Level in dBFS below which the signal counts as silent.

    Returns:
        ``True`` if the RMS level is below ``threshold_db``.

    Raises:
        AudioError: If the signal holds NaN or infinite values or has a non-numeric dtype.
    """
    array = _to_float32("signal", np.asarray(signal))
    if array.size == 0:
        return True
    samples = array.astype(np.float64, copy=False).ravel()
    if not np.isfinite(samples).all():
        raise _error("signal", "contains NaN or infinite samples")
    rms = math.sqrt(float(np.dot(samples, samples)) / samples.size)
    if rms == 0.0:
        return True
    return 20.0 * math.log10(rms) < threshold_db


# --------------------------------------------------------------------------- validation helpers


def _error(name: str, reason: str) -> AudioError:
    return AudioError(f"{name}: {reason}")


def _display(path: Any) -> str:
    """The path as the user gave it, on one line (control characters escaped)."""
    try:
        text = os.fsdecode(path)
    except TypeError:
        text = str(path)
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _check_rate(name: str, rate: Any, what: str) -> int:
    ok = isinstance(rate, (int, np.integer)) and not isinstance(rate, (bool, np.bool_))
    if not ok and isinstance(rate, (float, np.floating)) and float(rate).is_integer():
        ok = True
    if not ok or not 0 < rate <= _MAX_RATE:
        raise _error(name, f"invalid {what} {rate!r} (must be a whole number of Hz, 1-{_MAX_RATE})")
    return int(rate)


def _check_stretch(name: str, start: Any, duration: Any) -> None:
    if not isinstance(start, _REAL) or not math.isfinite(start) or start < 0:
        raise _error(name, f"invalid start {start!r} (must be seconds >= 0)")
    if duration is not None and (
        not isinstance(duration, _REAL) or not math.isfinite(duration) or duration <= 0
    ):
        raise _error(name, f"invalid duration {duration!r} (must be seconds > 0, or None)")


def _check_max_seconds(name: str, max_seconds: Any) -> None:
    if max_seconds is None:
        return
    if not isinstance(max_seconds, _REAL) or not max_seconds > 0:
        raise _error(name, f"invalid max_seconds {max_seconds!r} (must be > 0, or None)")


def _check_length(
    name: str, frames: int, rate: int, max_seconds: float | None, *, whole: bool
) -> None:
    seconds = frames / rate
    if max_seconds is not None and seconds > max_seconds:
        what = "" if whole else "requested stretch is "
        raise _error(
            name,
            f"{what}{seconds:.1f} s long, over the {max_seconds:g} s limit (raise max_seconds)",
        )


def _to_float32(name: str, array: NDArray[Any]) -> NDArray[np.float32]:
    """Samples as float32; integers scaled to [-1, 1] by their dtype's range."""
    kind = array.dtype.kind
    if kind == "f":
        return array.astype(np.float32, copy=True)
    if kind in "iu":
        half_range = float(2 ** (array.dtype.itemsize * 8 - 1))
        out = array.astype(np.float32)
        if kind == "u":
            out -= np.float32(half_range)  # unsigned PCM is centred on half its range
        out *= np.float32(1.0 / half_range)
        return out
    raise _error(name, f"unsupported sample dtype {array.dtype} (expected real int or float)")


def _downmix(frames: NDArray[np.float32]) -> Signal:
    """[frames] or [frames, channels] float32 -> contiguous [frames] (channel mean)."""
    if frames.ndim == 1:
        return np.ascontiguousarray(frames)
    if frames.shape[1] == 1:
        return np.ascontiguousarray(frames[:, 0])
    return np.ascontiguousarray(frames.mean(axis=1, dtype=np.float32))


def _resample(mono: Signal, from_rate: int, to_rate: int) -> Signal:
    if from_rate == to_rate:
        return mono
    out = soxr.resample(mono, from_rate, to_rate, _RESAMPLE_QUALITY)
    return np.ascontiguousarray(out, dtype=np.float32)


# --------------------------------------------------------------------------- file access


@contextmanager
def _open(path: str | os.PathLike[str], name: str) -> Iterator[sf.SoundFile]:
    """Open ``path`` for decoding, turning every failure into a one-line AudioError."""
    fs_path = os.fspath(path)
    try:
        st = os.stat(fs_path)
    except (FileNotFoundError, NotADirectoryError):
        if os.path.islink(fs_path):
            raise _error(name, "file not found (broken symbolic link)") from None
        raise _error(name, "file not found") from None
    except PermissionError:
        raise _error(name, "permission denied") from None
    except (OSError, ValueError) as exc:  # ELOOP, ENAMETOOLONG, embedded NUL, ...
        raise _error(name, f"cannot open ({_os_reason(exc)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise _error(name, "is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        raise _error(name, "not a regular file (device, pipe or socket)")
    if st.st_size == 0:
        raise _error(name, "empty file (0 bytes)")
    try:
        handle = open(fs_path, "rb")  # closed by the with-block below
    except PermissionError:
        raise _error(name, "permission denied") from None
    except OSError as exc:
        raise _error(name, f"cannot open ({_os_reason(exc)})") from None
    with handle:
        head = handle.read(12)
        declared = _declared_frames(handle, st.st_size)
        handle.seek(0)
        try:
            snd = sf.SoundFile(handle)
        except (sf.SoundFileError, RuntimeError) as exc:
            raise _open_error(name, exc, head) from None
        with snd:
            _check_complete(name, snd, declared)
            yield snd


def _os_reason(exc: BaseException) -> str:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(reason).split())


def _libsndfile_reason(exc: BaseException) -> str:
    reason = getattr(exc, "error_string", None) or str(exc)
    reason = " ".join(str(reason).split()).removeprefix("Error :").strip().rstrip(".")
    if "does not exist" in reason:
        # libsndfile's text for a decoder that gave up at open time; the file does exist.
        reason = "the decoder could not read it"
    return reason or "decoder error"


def _has_audio_magic(head: bytes) -> bool:
    """Whether the first bytes look like a container libsndfile knows (so damage, not junk)."""
    if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64"):
        return len(head) < 12 or head[8:12] == b"WAVE"
    if head[:4] == b"FORM":
        return len(head) < 12 or head[8:12] in (b"AIFF", b"AIFC")
    if head[:4] in (b"fLaC", b"OggS") or head[:3] == b"ID3":
        return True
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0  # MPEG frame sync


def _unreadable_container(head: bytes) -> str | None:
    """Name a common audio container libsndfile does not read, from its first bytes."""
    if head[4:8] == b"ftyp":
        return "an MP4 container (M4A/AAC/ALAC)"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "a WebM/Matroska container (WebM, MKA)"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "raw AAC (ADTS)"
    if head[:4] == b"#!AM":
        return "AMR speech"
    return None


def _open_error(name: str, exc: BaseException, head: bytes) -> AudioError:
    code = getattr(exc, "code", None)
    if code == _SF_ERR_UNSUPPORTED_ENCODING:  # e.g. a WAV holding a codec libsndfile lacks
        return _error(name, f"not an audio file or unsupported format ({_libsndfile_reason(exc)})")
    if code == _SF_ERR_UNRECOGNISED_FORMAT:
        container = _unreadable_container(head)
        if container:
            return _error(name, f"{container}, a format this installation cannot read; convert "
                                "it first, e.g. ffmpeg -i INPUT -ac 1 -ar 16000 OUTPUT.wav")
        if _has_audio_magic(head):  # a known container whose header is cut short
            return _error(name, "truncated or corrupt audio (header is incomplete or damaged)")
        return _error(name, "not an audio file or unsupported format")
    return _error(name, f"truncated or corrupt audio ({_libsndfile_reason(exc)})")


def _check_complete(name: str, snd: sf.SoundFile, declared: int | None) -> None:
    """Raise if the header promises more frames than the file holds.

    libsndfile quietly shortens a WAV or AIFF whose data chunk was cut off (its ``frames`` is
    what is present, not what the header declares), so the declared count comes from our own
    header parse. An Ogg stream cut before its last page shows up as 0 frames plus a log line.
    Other formats are checked by the frame count actually decoded in :func:`_read`.
    """
    if declared is not None and snd.frames < declared:
        raise _error(
            name,
            f"truncated or corrupt audio (header declares {declared} frames, "
            f"file holds {snd.frames})",
        )
    if snd.frames == 0:
        try:
            log = str(snd.extra_info)
        except (sf.SoundFileError, RuntimeError):
            return
        if _EARLY_END_LOG_MARKER in log:
            raise _error(name, "truncated or corrupt audio (stream ends without its final page)")


def _read(name: str, snd: sf.SoundFile, first: int, count: int) -> NDArray[np.float32]:
    """Decode ``count`` frames from frame ``first`` as float32 ``[frames, channels]``."""
    try:
        if first:
            snd.seek(first)
        frames = snd.read(count, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as exc:
        raise _error(name, f"truncated or corrupt audio ({_libsndfile_reason(exc)})") from None
    slack = 0
    if snd.format == "MP3":
        slack = _MP3_SLACK_FRAMES + int(_MP3_SLACK_FRACTION * snd.frames)
    if len(frames) < count - slack:
        raise _error(
            name,
            f"truncated or corrupt audio (header declares {snd.frames} frames, "
            f"only {first + len(frames)} decoded)",
        )
    return np.asarray(frames, dtype=np.float32)


# --------------------------------------------------------------------------- header parsing


def _declared_frames(handle: IO[bytes], file_size: int) -> int | None:
    """Frames a WAV/RF64/AIFF header declares, or ``None`` when unknown or not such a file.

    Only reads chunk headers. Any oddity (unknown container, streaming size markers, damaged
    chunk list) gives ``None`` so that libsndfile, which knows more quirks, has the last word.
    """
    try:
        handle.seek(0)
        head = handle.read(12)
        if len(head) < 12:
            return None
        if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and head[8:12] == b"WAVE":
            return _riff_frames(handle, file_size, ">" if head[:4] == b"RIFX" else "<")
        if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            return _aiff_frames(handle, file_size)
    except (OSError, struct.error):
        return None
    return None


def _chunks(handle: IO[bytes], file_size: int, endian: str) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(chunk id, size, payload offset)`` for the chunks after a 12-byte form header."""
    position = 12
    for _ in range(10_000):  # guard against loops in a damaged chunk list
        if position + 8 > file_size:
            return
        handle.seek(position)
        header = handle.read(8)
        if len(header) < 8 or not header[:4].isascii():
            return
        size = struct.unpack(endian + "I", header[4:])[0]
        yield header[:4], size, position + 8
        position += 8 + size + (size & 1)  # chunks are padded to an even length


def _riff_frames(handle: IO[bytes], file_size: int, endian: str) -> int | None:
    block_align = 0
    ds64_data_size: int | None = None
    for chunk_id, size, offset in _chunks(handle, file_size, endian):
        if chunk_id == b"ds64" and size >= 16:  # RF64: 64-bit sizes live here
            handle.seek(offset)
            ds64_data_size = struct.unpack("<Q", handle.read(16)[8:16])[0]
        elif chunk_id == b"fmt " and size >= 14:
            handle.seek(offset)
            block_align = struct.unpack(endian + "H", handle.read(14)[12:14])[0]
        elif chunk_id == b"data":
            if size == 0xFFFFFFFF and ds64_data_size is not None:
                size = ds64_data_size
            elif size in (0, 0xFFFFFFFF):  # written by a streaming recorder: size unknown
                return None
            return size // block_align if block_align else None
    return None


def _aiff_frames(handle: IO[bytes], file_size: int) -> int | None:
    for chunk_id, size, offset in _chunks(handle, file_size, ">"):
        if chunk_id == b"COMM" and size >= 6:
            handle.seek(offset)
            return int(struct.unpack(">hI", handle.read(6))[1])
    return None
