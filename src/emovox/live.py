"""Live emotion recognition: rolling predictions from a stream of audio, with bounded latency.

Every ``hop`` seconds the latest ``window`` seconds of audio are analysed and one
:class:`~emovox.types.Segment` is produced (``"silence"`` when the window holds no speech, as
decided by the energy detector of :mod:`emovox.vad` with a running noise estimate).

Latency is bounded: audio is kept in a ring buffer holding little more than one window, and only
the newest window is analysed. When the analysis falls behind (a slow machine, audio arriving in
bursts), the windows in between are skipped, the skipped audio is dropped and a line on stderr
says so. Pass ``drop=False`` (``emovox listen --no-drop``) to analyse every hop of a stream
instead, e.g. a recording piped in faster than real time.

Raw PCM on standard input (``emovox listen --stdin``): headerless, interleaved samples, either
``s16le`` (16-bit signed integers, little-endian) or ``f32le`` (32-bit floats, little-endian,
full scale 1.0), at ``--rate`` Hz with ``--channels`` channels (averaged to mono; the rate is
converted to the model's). For example::

    arecord -q -t raw -f S16_LE -r 16000 -c 1 | emovox listen --stdin
    sox talk.wav -t raw -e signed -b 16 -r 16000 -c 1 - | emovox listen --stdin
    ffmpeg -i talk.mp3 -f s16le -ac 1 -ar 16000 - | emovox listen --stdin

The microphone (``emovox listen`` without ``--stdin``) needs the ``sounddevice`` package:
``pip install 'emovox[live]'``.

Normalisation: models trained with per-speaker statistics expect the speaker's own statistics,
which a live stream does not have in advance. ``normalization="running"`` (the default for such
models) starts from the training statistics and follows the speaker with exponential moving
statistics of the speech heard so far (time constant ``norm_seconds``).

Example:
    >>> from emovox import Recognizer, audio, example_path
    >>> live = LiveRecognizer(Recognizer.default())
    >>> window = audio.load(example_path())[:48000]  # the first 3 s
    >>> segment = live.analyse(window, start=0.0, end=3.0, new_seconds=1.0)
    >>> segment.speech, segment.label in live.recognizer.labels
    (True, True)
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import IO, Any, Literal

import numpy as np

from .errors import AudioError, ConfigError, EmovoxError, require
from .types import Segment
from .vad import RunningNoise

__all__ = [
    "PCM_FORMATS",
    "AudioBuffer",
    "LiveRecognizer",
    "RunningStats",
    "format_segment",
    "listen",
    "is_live_source",
    "read_pcm",
]

#: Raw PCM sample formats accepted on standard input: name -> (numpy dtype, scale to [-1, 1]).
PCM_FORMATS: dict[str, tuple[str, float]] = {
    "s16le": ("<i2", 1.0 / 32768.0),
    "f32le": ("<f4", 1.0),
}

Stats = tuple[np.ndarray, np.ndarray]

#: Largest float sample accepted from raw f32le input (+24 dBFS): anything beyond is not float
#: audio (e.g. 16-bit samples read as floats).
_FLOAT_LIMIT = 16.0


class RunningStats:
    """Exponential moving mean and standard deviation of feature frames.

    Args:
        initial: ``(mean, std)`` to start from (the model's training statistics).
        seconds: Time constant: audio older than this weighs ``1/e`` as much as new audio.
    """

    def __init__(self, initial: Stats, seconds: float) -> None:
        if not seconds > 0:
            raise ConfigError(f"norm_seconds must be > 0 (got {seconds})")
        mean, std = initial
        self.seconds = float(seconds)
        self.mean = np.asarray(mean, dtype=np.float64).copy()
        self.square = np.square(np.asarray(std, dtype=np.float64)) + np.square(self.mean)

    def update(self, feats: np.ndarray, seconds: float) -> None:
        """Blend in the frames of ``seconds`` of new audio (``feats [..., T, D]``)."""
        if feats.shape[-2] == 0 or seconds <= 0:
            return
        alpha = 1.0 - float(np.exp(-seconds / self.seconds))
        f64 = np.asarray(feats, dtype=np.float64)
        self.mean += alpha * (f64.mean(axis=-2, keepdims=True) - self.mean)
        self.square += alpha * (np.square(f64).mean(axis=-2, keepdims=True) - self.square)

    def stats(self) -> Stats:
        """The current ``(mean, std)``."""
        var = np.maximum(self.square - np.square(self.mean), 0.0)
        return self.mean.astype(np.float32), np.sqrt(var + 1e-8).astype(np.float32)


class LiveRecognizer:
    """Analyse the windows of a live stream one at a time.

    Args:
        recognizer: A :class:`~emovox.inference.Recognizer`.
        window: Window length in seconds (default: the recognizer's).
        hop: Seconds between windows (default: the recognizer's).
        normalization: ``"running"`` (moving statistics), ``"global"`` (training statistics) or
            ``"auto"``: running for models trained with per-speaker statistics, else global.
        norm_seconds: Time constant of the running statistics, in seconds.

    Raises:
        ConfigError: On a bad option, or ``"running"`` with a model that normalises each
            utterance on its own (or not at all).
    """

    def __init__(
        self,
        recognizer: Any,
        *,
        window: float | None = None,
        hop: float | None = None,
        normalization: Literal["auto", "running", "global"] = "auto",
        norm_seconds: float = 30.0,
    ) -> None:
        self.recognizer = recognizer
        self.sample_rate = int(recognizer.sample_rate)
        self.window = float(window if window is not None else recognizer.window)
        self.hop = float(hop if hop is not None else recognizer.hop)
        if not self.window > 0 or not 0 < self.hop <= self.window:
            raise ConfigError(f"need window > 0 and 0 < hop <= window (got window "
                              f"{self.window:g} s, hop {self.hop:g} s)")
        if normalization not in ("auto", "running", "global"):
            raise ConfigError(f"normalization must be auto, running or global "
                              f"(got {normalization!r})")
        mode = recognizer.mode
        if normalization == "auto":
            normalization = "running" if mode == "speaker" else "global"
        if normalization == "running" and mode not in ("global", "speaker"):
            raise ConfigError(f"running normalisation needs a model trained with global or "
                              f"speaker statistics (this one uses {mode!r})")
        self.normalization = normalization
        self.running = (RunningStats(recognizer.model.normalizer.stats["*"], norm_seconds)
                        if normalization == "running" else None)
        self.window_samples = max(1, int(round(self.window * self.sample_rate)))
        self.hop_samples = max(1, int(round(self.hop * self.sample_rate)))
        self.noise = RunningNoise(recognizer.vad)

    def analyse(self, signal: np.ndarray, start: float, end: float,
                new_seconds: float) -> Segment:
        """Analyse one window.

        Args:
            signal: The window's samples (float32 mono at the recognizer's rate).
            start: Stream time of its first sample, in seconds.
            end: Stream time of its end, in seconds.
            new_seconds: How much of it (at the end) was not in the previous window.

        Returns:
            The window's :class:`~emovox.types.Segment`.
        """
        rec = self.recognizer
        vad = rec.vad
        levels = vad.levels(signal, self.sample_rate)
        new_blocks = int(np.ceil(new_seconds / vad.block_seconds))
        self.noise.update(levels[-new_blocks:] if new_blocks else levels[:0])
        speech = vad.is_speech(levels, self.noise.threshold(), len(signal) / self.sample_rate)
        if not speech or len(signal) < rec.min_seconds * self.sample_rate:
            return Segment(start, end, "silence", {}, False)
        feats = rec.encode([signal])[0]
        stats = None
        if self.running is not None:
            if rec.frame_samples:
                frames = int(np.ceil(new_seconds * self.sample_rate / rec.frame_samples))
                self.running.update(feats[..., -frames:, :], new_seconds)
            else:
                self.running.update(feats, new_seconds)
            stats = self.running.stats()
        probs, _ = rec.classify([feats], [stats])
        p = probs[0]
        labels = rec.labels
        return Segment(start, end, labels[int(np.argmax(p))],
                       {name: float(v) for name, v in zip(labels, p, strict=True)}, True)


class AudioBuffer:
    """A thread-safe ring of the most recent samples of a stream.

    Samples are numbered from 0 since the start of the stream. In dropping mode the writer
    never waits and the oldest samples are overwritten; otherwise the writer waits until the
    reader releases the samples it no longer needs (:meth:`release`).

    Args:
        capacity: Samples held.
        drop: Overwrite old samples instead of making the writer wait.
    """

    def __init__(self, capacity: int, drop: bool = True) -> None:
        self.capacity = int(capacity)
        self.drop = drop
        self._ring = np.zeros(self.capacity, dtype=np.float32)
        self._received = 0
        self._released = 0
        self._closed = False
        self._cond = threading.Condition()

    @property
    def received(self) -> int:
        """Samples written so far."""
        with self._cond:
            return self._received

    @property
    def closed(self) -> bool:
        """Whether the stream has ended."""
        with self._cond:
            return self._closed

    def write(self, samples: np.ndarray) -> None:
        """Append samples (blocks in non-dropping mode while the ring is full)."""
        data = np.asarray(samples, dtype=np.float32).ravel()
        while data.size:
            with self._cond:
                if self.drop:
                    room = data.size
                else:
                    while self._received - self._released >= self.capacity and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                    room = self.capacity - (self._received - self._released)
                part = data[: min(room, self.capacity)]
                data = data[part.size :]
                if part.size > self.capacity:  # pragma: no cover - part is capped above
                    part = part[-self.capacity :]
                index = (self._received + np.arange(part.size)) % self.capacity
                self._ring[index] = part
                self._received += part.size
                self._cond.notify_all()

    def close(self) -> None:
        """Mark the end of the stream (wakes up the reader)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def wait_for(self, total: int, timeout: float | None = None) -> bool:
        """Wait until ``total`` samples have arrived; False if the stream ended first."""
        with self._cond:
            self._cond.wait_for(lambda: self._received >= total or self._closed, timeout)
            return self._received >= total

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` that are still held (older ones are cut off)."""
        with self._cond:
            stop = min(stop, self._received)
            start = max(start, self._received - self.capacity, 0)
            if stop <= start:
                return np.zeros(0, dtype=np.float32)
            return self._ring[np.arange(start, stop) % self.capacity].copy()

    def release(self, before: int) -> None:
        """Tell the writer that samples before ``before`` are no longer needed."""
        with self._cond:
            self._released = max(self._released, min(before, self._received))
            self._cond.notify_all()


class _Decoder:
    """Raw PCM bytes -> float32 mono at the target rate, across arbitrary byte boundaries."""

    def __init__(self, fmt: str, channels: int, rate: int, target_rate: int) -> None:
        if fmt not in PCM_FORMATS:
            raise ConfigError(f"unknown PCM format {fmt!r} (known: {', '.join(PCM_FORMATS)})")
        if channels < 1:
            raise ConfigError(f"channels must be >= 1 (got {channels})")
        if rate < 1:
            raise ConfigError(f"rate must be >= 1 Hz (got {rate})")
        dtype, self.scale = PCM_FORMATS[fmt]
        self.fmt = fmt
        self.dtype = np.dtype(dtype)
        self.channels = channels
        self.frame_bytes = self.dtype.itemsize * channels
        self._pending = b""
        self._resampler = None
        if rate != target_rate:
            import soxr

            self._resampler = soxr.ResampleStream(rate, target_rate, 1, dtype="float32")

    def __call__(self, data: bytes, last: bool = False) -> np.ndarray:
        data = self._pending + data
        usable = len(data) - len(data) % self.frame_bytes
        self._pending = data[usable:]
        frames = np.frombuffer(data[:usable], dtype=self.dtype).astype(np.float32)
        if self.dtype.kind == "f" and frames.size:
            with np.errstate(invalid="ignore", over="ignore"):
                bad = ~np.isfinite(frames) | (np.abs(frames) > _FLOAT_LIMIT)
            if bad.any():
                raise AudioError(
                    f"standard input: these bytes are not {self.fmt} audio (a sample of "
                    f"{frames[bad][0]:.3g}; float audio stays within about -1..1): 16-bit "
                    "input needs --format s16le")
        if self.scale != 1.0:
            frames *= np.float32(self.scale)
        mono = frames.reshape(-1, self.channels).mean(axis=1, dtype=np.float32)
        mono = np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0)
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(mono, last=last)
        return np.asarray(mono, dtype=np.float32)


def read_pcm(stream: IO[bytes], buffer: AudioBuffer, fmt: str, channels: int, rate: int,
             target_rate: int, block_seconds: float = 0.05) -> None:
    """Read raw PCM from a binary stream into ``buffer`` until end of file, then close it."""
    decode = _Decoder(fmt, channels, rate, target_rate)
    size = max(decode.frame_bytes, int(block_seconds * rate) * decode.frame_bytes)
    read = getattr(stream, "read1", stream.read)
    try:
        while True:
            data = read(size)
            if not data:
                tail = decode(b"", last=True)
                if tail.size:
                    buffer.write(tail)
                break
            buffer.write(decode(data))
    finally:
        buffer.close()


def format_segment(segment: Segment, top: int = 3) -> str:
    """One human-readable line for a live result: end time, label, best probabilities."""
    head = f"{segment.end:8.1f} s  "
    if not segment.speech:
        return head + "silence"
    ranked = sorted(segment.probabilities.items(), key=lambda kv: -kv[1])[:top]
    best, p = ranked[0]
    rest = ", ".join(f"{name} {value:.2f}" for name, value in ranked[1:])
    return head + f"{best:<10} {p:.2f}" + (f"   ({rest})" if rest else "")


def listen(
    live: LiveRecognizer,
    buffer: AudioBuffer,
    emit: Callable[[Segment], None],
    warn: Callable[[str], None],
) -> int:
    """Produce one segment per hop from ``buffer`` until its stream ends.

    In dropping mode (``buffer.drop``), when more than one hop of audio is waiting the
    analysis jumps to the newest window and ``warn`` reports what was skipped.

    Returns:
        The number of segments produced.
    """
    sr = live.sample_rate
    hop, win = live.hop_samples, live.window_samples
    min_tail = max(hop // 4, int(live.recognizer.min_seconds * sr))
    next_end, last_end, count = hop, 0, 0
    while True:
        if not buffer.wait_for(next_end):
            end = buffer.received
            if end - last_end >= min_tail:
                start = max(0, end - win)
                emit(live.analyse(buffer.read(start, end), start / sr, end / sr,
                                  (end - last_end) / sr))
                count += 1
            return count
        if buffer.drop:
            behind = buffer.received - next_end
            if behind >= hop:
                skipped = behind // hop
                next_end += skipped * hop
                warn(f"processing is slower than real time: skipped {skipped} "
                     f"window{'s' if skipped > 1 else ''} ({skipped * hop / sr:.1f} s of audio)")
        start = max(0, next_end - win)
        signal = buffer.read(start, next_end)
        emit(live.analyse(signal, (next_end - len(signal)) / sr, next_end / sr,
                          min(next_end - last_end, win) / sr))
        count += 1
        buffer.release(next_end + hop - win)
        last_end, next_end = next_end, next_end + hop


def capacity_for(live: LiveRecognizer, drop: bool) -> int:
    """Ring size for a stream: one window and two hops (one more window's worth if dropping)."""
    return live.window_samples + 2 * live.hop_samples + (live.window_samples if drop else 0)


def listen_stdin(live: LiveRecognizer, emit: Callable[[Segment], None],
                 warn: Callable[[str], None], *, fmt: str = "s16le", channels: int = 1,
                 rate: int = 16000, drop: bool = True, stream: IO[bytes] | None = None) -> int:
    """Rolling predictions from raw PCM on standard input (or ``stream``) until end of file.

    Returns:
        The number of segments produced.
    """
    _Decoder(fmt, channels, rate, live.sample_rate)  # check the options before starting
    buffer = AudioBuffer(capacity_for(live, drop), drop=drop)
    source = stream if stream is not None else sys.stdin.buffer
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            read_pcm(source, buffer, fmt, channels, rate, live.sample_rate)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            buffer.close()

    thread = threading.Thread(target=reader, name="emovox-stdin", daemon=True)
    thread.start()
    count = listen(live, buffer, emit, warn)
    thread.join(timeout=1.0)
    if errors:
        exc = errors[0]
        if isinstance(exc, EmovoxError):
            raise exc
        raise EmovoxError(f"reading standard input failed: {type(exc).__name__}: {exc}")
    return count


def is_live_source(stream: IO[bytes]) -> bool:
    """Whether a byte stream may be live (a pipe, a terminal, a socket), not a plain file.

    A file redirected to standard input (``< recording.raw``) can be read faster than real
    time, so none of it needs to be skipped.
    """
    import stat

    try:
        return not stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):
        return True


def listen_microphone(live: LiveRecognizer, emit: Callable[[Segment], None],
                      warn: Callable[[str], None], *, rate: int = 16000, channels: int = 1,
                      device: str | int | None = None) -> int:
    """Rolling predictions from the default (or given) microphone until Ctrl-C.

    Raises:
        MissingExtraError: Without the ``sounddevice`` package (extra ``live``).
        EmovoxError: If the input device cannot be opened.
    """
    sd = require("sounddevice", "live")
    decode = _Decoder("f32le", channels, rate, live.sample_rate)
    buffer = AudioBuffer(capacity_for(live, True), drop=True)

    def callback(indata: Any, frames: int, time: Any, status: Any) -> None:
        del frames, time
        if status:
            warn(f"audio input: {status}")
        buffer.write(decode(np.ascontiguousarray(indata, dtype="<f4").tobytes()))

    try:
        stream = sd.InputStream(samplerate=rate, channels=channels, dtype="float32",
                                device=device, callback=callback)
    except Exception as exc:  # noqa: BLE001 - PortAudio errors have their own types
        raise EmovoxError(f"cannot open the microphone: {exc}") from None
    count = 0
    with stream:
        try:
            count = listen(live, buffer, emit, warn)
        except KeyboardInterrupt:
            buffer.close()
    return count
