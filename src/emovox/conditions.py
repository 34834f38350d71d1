"""Recording conditions a model did not train on, at graded strength, for robustness tests.

Every function here is a pure, seeded numpy/scipy transformation of a mono float waveform: it
takes the signal (1-D, non-empty, finite float samples), its sample rate where that matters and,
where randomness is involved, an explicit :class:`numpy.random.Generator`; it returns a new
float32 array of the *same length* as the input. Nothing reads or changes global random state.

- Noise: :func:`white_noise`, :func:`pink_noise` and :func:`babble_noise` make noise signals;
  :func:`add_at_snr` mixes one in at a given SNR.
- Room: :func:`room_impulse_response` builds a stochastic room impulse response and
  :func:`reverberate` convolves a signal with one.
- Channel: :func:`telephone` (8 kHz, 300-3400 Hz band, G.711 mu-law) and :func:`codec` (an
  in-memory MP3, Ogg Vorbis or Opus round trip; :func:`available_codecs` says which ones this
  machine's libsndfile can encode).
- Level: :func:`gain` and :func:`clip`.

:data:`CONDITIONS` names a graded set of these (``"babble_10db"``, ``"reverb_0.6s"``,
``"telephone"``, ``"mp3_low"``, ``"gain_-20db"``, ``"clip_0.1"``, ...) and
:func:`conditions_named` selects from it by name, family or kind.

Seeding: a robustness harness should give every (utterance, condition) pair its own generator,
derived from one base seed with :func:`condition_rng`, so a result never depends on the order in
which utterances or conditions are processed, nor on which other conditions are run.

Example:
    >>> import numpy as np
    >>> x = np.sin(2 * np.pi * 220 * np.arange(16000) / 16000).astype(np.float32)
    >>> noisy = CONDITIONS["pink_10db"].apply(x, 16000, condition_rng(0, "utt1", "pink_10db"))
    >>> noisy.shape, noisy.dtype
    ((16000,), dtype('float32'))
    >>> [c.name for c in conditions_named("reverb")]
    ['reverb_0.3s', 'reverb_0.6s', 'reverb_0.9s']
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import soundfile as sf
from scipy import signal as sps

from emovox.audio import resample
from emovox.errors import AudioError, ConfigError

__all__ = [
    "CODECS",
    "CONDITIONS",
    "LOW_QUALITY",
    "Condition",
    "add_at_snr",
    "available_codecs",
    "babble_noise",
    "clip",
    "random_condition",
    "training_copy",
    "TRAINING_RANGES",
    "codec",
    "condition_rng",
    "conditions_named",
    "gain",
    "pink_noise",
    "reverberate",
    "room_impulse_response",
    "telephone",
    "white_noise",
]

_EPS_POWER = 1e-20  # mean square below which a signal counts as silent

# --- room impulse response
_PREDELAY_S = (0.003, 0.010)  # range of the gap between direct path and late tail, in seconds
_EARLY_REFLECTIONS = 4  # number of discrete early reflections
_EARLY_WINDOW_S = 0.030  # early reflections arrive within this time after the pre-delay
# Each reflection carries the energy of this many seconds of the tail at its arrival time, times
# a factor drawn in [0.25, 1]: comparable to the diffuse energy around it, at any sample rate.
_EARLY_ENERGY_S = 0.005
_EARLY_ENERGY_FACTOR = (0.25, 1.0)
_TAIL_DECAY_DB = 80.0  # the RIR is cut where the late tail has decayed this far

# --- telephone channel
_PHONE_RATE = 8000
_PHONE_BAND_HZ = (300.0, 3400.0)
_PHONE_FILTER_ORDER = 4  # Butterworth order of the band-pass (applied forwards and backwards)
_MU = 255.0  # G.711 mu-law constant
_MU_LEVELS = 127  # code steps per polarity: 8-bit codes, 255 distinct values with an exact zero


@dataclass(frozen=True)
class _Codec:
    format: str
    subtype: str
    rates: tuple[int, ...] | None  # sample rates the encoder accepts; None for any


#: Lossy codecs :func:`codec` knows, by name, with the libsndfile format and subtype each uses.
CODECS: dict[str, _Codec] = {
    "mp3": _Codec(
        "MP3",
        "MPEG_LAYER_III",
        (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
    ),
    "ogg-vorbis": _Codec("OGG", "VORBIS", None),
    "opus": _Codec("OGG", "OPUS", (8000, 12000, 16000, 24000, 48000)),
}

LOW_QUALITY = 0.9
"""libsndfile ``compression_level`` of the registry's "low" codec conditions (0 best, 1 worst).

At 16 kHz this gives about 30 kbit/s MP3, 55 kbit/s Vorbis and 40 kbit/s Opus. (MP3 rejects
1.0 on libsndfile 1.2.)
"""


# --------------------------------------------------------------------------- validation


def _as_mono(signal: Any, name: str = "signal") -> np.ndarray:
    """The samples of a mono float waveform as float64, or a one-line :class:`AudioError`."""
    array = np.asarray(signal)
    if array.ndim != 1 or array.size == 0:
        raise AudioError(f"{name}: expected a non-empty 1-D mono waveform, got shape {array.shape}")
    if array.dtype.kind != "f":
        raise AudioError(f"{name}: expected float samples, got {array.dtype}")
    if not np.isfinite(array).all():
        raise AudioError(f"{name}: contains NaN or infinite samples")
    return array.astype(np.float64)


def _check_rate(sample_rate: Any) -> int:
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, (int, np.integer))
        or sample_rate <= 0
    ):
        raise AudioError(
            f"signal: sample rate must be a positive integer (Hz), got {sample_rate!r}"
        )
    return int(sample_rate)


def _check_length(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"noise length must be a positive integer (samples), got {n!r}")
    return int(n)


def _finite(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{what} must be finite, got {value!r}")
    return number


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def _unit_rms(x: np.ndarray) -> np.ndarray:
    return x / np.sqrt(_power(x))


def _fit(x: np.ndarray, length: int) -> np.ndarray:
    """Trim, or zero-pad at the end, to exactly ``length`` samples."""
    if x.shape[0] >= length:
        return x[:length]
    return np.pad(x, (0, length - x.shape[0]))


# --------------------------------------------------------------------------- noise


def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian white noise scaled to an RMS of exactly 1.

    Args:
        n: Length in samples (>= 1).
        rng: Random generator; the only source of randomness.

    Returns:
        Noise, shape ``[n]``, float32.

    Raises:
        ConfigError: If ``n`` is not a positive integer.
    """
    length = _check_length(n)
    noise = rng.standard_normal(length)
    return _unit_rms(noise).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f) noise: power falls 10 dB per decade (3 dB per octave), RMS exactly 1.

    Gaussian white noise is shaped in the frequency domain: its real FFT is multiplied by
    ``1 / sqrt(f)`` (so power goes as ``1 / f``), the DC bin is set to zero, and the inverse FFT
    is scaled to unit RMS. The spectrum is exactly 1/f down to the lowest FFT bin, ``1 / n`` of
    the sample rate. A single sample (no non-DC bin) is returned as white noise.

    Args:
        n: Length in samples (>= 1).
        rng: Random generator; the only source of randomness.

    Returns:
        Noise, shape ``[n]``, float32.

    Raises:
        ConfigError: If ``n`` is not a positive integer.
    """
    length = _check_length(n)
    white = rng.standard_normal(length)
    if length < 2:
        return _unit_rms(white).astype(np.float32)
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(length)
    shape = np.zeros_like(freqs)
    shape[1:] = 1.0 / np.sqrt(freqs[1:])
    pink = np.fft.irfft(spectrum * shape, n=length)
    if _power(pink) < _EPS_POWER:  # pragma: no cover - only for pathological draws
        return _unit_rms(white).astype(np.float32)
    return _unit_rms(pink).astype(np.float32)


def babble_noise(
    n: int,
    speech: Sequence[np.ndarray],
    rng: np.random.Generator,
    talkers: int = 6,
) -> np.ndarray:
    """Babble: the sum of several talkers speaking at once, scaled to an RMS of exactly 1.

    Each of the ``talkers`` voices is a signal drawn (with replacement) from ``speech``, scaled
    to unit RMS, tiled if shorter than ``n`` and read from a random circular offset, so the
    same recording drawn twice is heard at different moments. Silent signals in ``speech`` are
    left out of the draw. The speech must be at the sample rate of the signal the babble will be
    added to; ideally from speakers (and a corpus) the model was not tested on.

    Args:
        n: Length in samples (>= 1).
        speech: Speech waveforms, each 1-D float (any lengths).
        rng: Random generator; the only source of randomness.
        talkers: Number of simultaneous voices (>= 1).

    Returns:
        Babble, shape ``[n]``, float32.

    Raises:
        ConfigError: If ``n`` or ``talkers`` is not a positive integer.
        AudioError: If ``speech`` is empty, a signal in it is not a 1-D finite float array, or
            every signal in it is silent.
    """
    length = _check_length(n)
    if isinstance(talkers, bool) or not isinstance(talkers, (int, np.integer)) or talkers < 1:
        raise ConfigError(f"babble talkers must be a positive integer, got {talkers!r}")
    if isinstance(speech, np.ndarray) and speech.ndim == 1:
        raise AudioError("babble speech: expected a list of waveforms, got one waveform")
    if len(speech) == 0:
        raise AudioError("babble speech: needs at least one speech signal, got none")
    voices = [_as_mono(s, f"babble speech[{i}]") for i, s in enumerate(speech)]
    voices = [_unit_rms(v) for v in voices if _power(v) >= _EPS_POWER]
    if not voices:
        raise AudioError(f"babble speech: all {len(speech)} signals are silent")
    total = np.zeros(length)
    for _ in range(int(talkers)):
        voice = voices[int(rng.integers(0, len(voices)))]
        offset = int(rng.integers(0, voice.shape[0]))
        reps = int(np.ceil((offset + length) / voice.shape[0]))
        total += np.tile(voice, reps)[offset : offset + length]
    if _power(total) < _EPS_POWER:  # the drawn voices cancel out (or are silent over n)
        raise AudioError(
            f"babble speech: {talkers} talkers add up to silence over {length} samples"
        )
    return _unit_rms(total).astype(np.float32)


def add_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Add noise to a signal at a given signal-to-noise ratio over the whole signal.

    The noise is scaled so that ``10 log10(mean(signal ** 2) / mean(scaled_noise ** 2))`` is
    ``snr_db``; :func:`emovox.augment.add_noise` (training) mixes its noise with it too. A
    silent signal or noise (mean square below 1e-12) leaves the signal unchanged.

    Args:
        signal: Mono waveform, shape ``[L]``, float.
        noise: Noise, shape ``[L]``, float (any level).
        snr_db: Target SNR in dB (finite).

    Returns:
        The noisy waveform, shape ``[L]``, float32.

    Raises:
        AudioError: If a waveform is not a non-empty, finite 1-D float array, or their lengths
            differ.
        ConfigError: If ``snr_db`` is not finite.
    """
    snr = _finite(snr_db, "SNR snr_db")
    x = _as_mono(signal)
    added = _as_mono(noise, "noise")
    if added.shape != x.shape:
        raise AudioError(f"noise: has {added.shape[0]} samples, the signal {x.shape[0]}")
    power_x, power_n = _power(x), _power(added)
    if power_x < 1e-12 or power_n < 1e-12:
        return x.astype(np.float32)
    scale = np.sqrt(power_x / (10.0 ** (snr / 10.0) * power_n))
    return (x + scale * added).astype(np.float32)


_NOISES: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "white": white_noise,
    "pink": pink_noise,
}


# --------------------------------------------------------------------------- reverberation


def _check_rt60(rt60: Any) -> float:
    value = _finite(rt60, "reverberation time rt60")
    if not 0.0 < value <= 10.0:
        raise ConfigError(f"reverberation time rt60 must be in (0, 10] seconds, got {rt60!r}")
    return value


def room_impulse_response(
    sample_rate: int,
    rt60: float,
    rng: np.random.Generator,
    drr_db: float = 0.0,
) -> np.ndarray:
    """A synthetic room impulse response from the stochastic late-reverberation model.

    The standard statistical model of a diffuse reverberant tail (Schroeder; Polack, 1988):
    Gaussian noise under an exponential envelope whose *energy* decays by 60 dB in ``rt60``
    seconds, i.e. amplitude ``10 ** (-3 t / rt60)``. The response is:

    - the direct path: a unit impulse at sample 0 (the output is not delayed);
    - after a pre-delay drawn uniformly in [3, 10] ms, the late tail: Gaussian noise under the
      decay envelope (counted from sample 0), cut where it has decayed by 80 dB (``4/3 * rt60``
      after the pre-delay);
    - a few (4) discrete early reflections at random times within 30 ms after the pre-delay,
      each with a random sign and the energy of 1.25-5 ms of the tail at its arrival time;
    - the reflections and tail together (everything but the direct path) scaled so that the
      direct-to-reverberant energy ratio is exactly ``drr_db``.

    A larger ``rt60`` therefore means a longer, slower-decaying tail at the same
    direct-to-reverberant balance. The response is a deterministic function of the generator
    state.

    Args:
        sample_rate: Sample rate, in Hz.
        rt60: Reverberation time in seconds (the time the late energy takes to fall by 60 dB),
            in (0, 10].
        rng: Random generator; the only source of randomness.
        drr_db: Direct-to-reverberant ratio: the direct path's energy over that of everything
            else (reflections and tail), in dB (0 = equal).

    Returns:
        The impulse response, shape ``[ceil((predelay + 4/3 * rt60) * sample_rate)]`` (at least
        2 samples), float64.

    Raises:
        AudioError: If ``sample_rate`` is not a positive integer.
        ConfigError: If ``rt60`` is out of range or ``drr_db`` is not finite.
    """
    rate = _check_rate(sample_rate)
    decay_time = _check_rt60(rt60)
    drr = _finite(drr_db, "direct-to-reverberant ratio drr_db")
    predelay_s = float(rng.uniform(*_PREDELAY_S))
    start = max(1, int(round(predelay_s * rate)))
    tail_s = decay_time * _TAIL_DECAY_DB / 60.0
    length = max(start + 1, int(np.ceil(predelay_s * rate + tail_s * rate)))

    def envelope(samples: np.ndarray) -> np.ndarray:
        return np.asarray(10.0 ** (-3.0 * samples / (rate * decay_time)))

    rir = np.zeros(length)
    rir[0] = 1.0

    reverb = np.zeros(length)
    reverb[start:] = rng.standard_normal(length - start) * envelope(np.arange(start, length))

    early_end = min(length - 1, start + int(round(_EARLY_WINDOW_S * rate)))
    times = rng.integers(start, early_end + 1, size=_EARLY_REFLECTIONS)
    energies = rng.uniform(*_EARLY_ENERGY_FACTOR, size=_EARLY_REFLECTIONS) * _EARLY_ENERGY_S
    signs = rng.choice(np.array([-1.0, 1.0]), size=_EARLY_REFLECTIONS)
    amplitudes = np.sqrt(energies * rate) * envelope(times.astype(np.float64))
    np.add.at(reverb, times, signs * amplitudes)

    energy = float(np.sum(np.square(reverb)))
    reverb *= np.sqrt(10.0 ** (-drr / 10.0) / max(energy, _EPS_POWER))
    reverb[0] = 1.0
    return reverb


def reverberate(
    signal: np.ndarray,
    sample_rate: int,
    rt60: float,
    rng: np.random.Generator,
    drr_db: float = 0.0,
) -> np.ndarray:
    """Play a signal in a synthetic reverberant room.

    The signal is convolved (:func:`scipy.signal.fftconvolve`) with an impulse response from
    :func:`room_impulse_response` (the stochastic exponential-decay late-reverberation model
    with a direct path, early reflections and a pre-delay), the reverberant tail past the end
    of the input is cut, and the result is scaled to the input's RMS, so reverberation changes
    the sound, not the level. A silent input is returned unchanged.

    Args:
        signal: Mono waveform, shape ``[L]``, float.
        sample_rate: Its sample rate, in Hz.
        rt60: Reverberation time in seconds, in (0, 10].
        rng: Random generator (draws the impulse response).
        drr_db: Direct-to-reverberant energy ratio of the impulse response, in dB.

    Returns:
        The reverberant waveform, shape ``[L]``, float32.

    Raises:
        AudioError: If ``signal`` is not a non-empty, finite 1-D float array or the rate is
            invalid.
        ConfigError: If ``rt60`` or ``drr_db`` is invalid.
    """
    x = _as_mono(signal)
    rir = room_impulse_response(sample_rate, rt60, rng, drr_db)
    power_in = _power(x)
    if power_in < _EPS_POWER:
        return x.astype(np.float32)
    wet = sps.fftconvolve(x, rir)[: x.shape[0]]
    power_out = _power(wet)
    if power_out < _EPS_POWER:  # pragma: no cover - needs an adversarial signal
        return x.astype(np.float32)
    return (wet * np.sqrt(power_in / power_out)).astype(np.float32)


# --------------------------------------------------------------------------- channels


def _mu_law(x: np.ndarray) -> np.ndarray:
    """G.711-style 8-bit mu-law: compress, quantise to 255 levels, expand; input in [-1, 1]."""
    compressed = np.sign(x) * np.log1p(_MU * np.abs(x)) / np.log1p(_MU)
    codes = np.round(compressed * _MU_LEVELS) / _MU_LEVELS
    return np.asarray(np.sign(codes) * np.expm1(np.abs(codes) * np.log1p(_MU)) / _MU)


def telephone(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """Pass a signal through a narrow-band telephone channel.

    Steps: resample to 8 kHz (soxr, via :func:`emovox.audio.resample`); band-pass 300-3400 Hz
    (4th-order Butterworth applied forwards and backwards, so zero phase); clip to [-1, 1] (the
    codec's full scale); G.711-style mu-law companding to 8 bits (mu = 255: compress, quantise to
    255 levels, expand); resample back to ``sample_rate``, trimming or zero-padding the last
    sample or two so the length is kept. Deterministic.

    Args:
        signal: Mono waveform, shape ``[L]``, float, full scale 1.0.
        sample_rate: Its sample rate, in Hz.

    Returns:
        The telephone-quality waveform at ``sample_rate``, shape ``[L]``, float32.

    Raises:
        AudioError: If ``signal`` is not a non-empty, finite 1-D float array, the rate is
            invalid, or the signal is too short to filter (about 30 samples at 8 kHz).
    """
    x = _as_mono(signal)
    rate = _check_rate(sample_rate)
    narrow = resample(x, rate, _PHONE_RATE)
    sos = sps.butter(
        _PHONE_FILTER_ORDER, _PHONE_BAND_HZ, btype="bandpass", fs=_PHONE_RATE, output="sos"
    )
    pad = 3 * (2 * sos.shape[0] + 1)  # sosfiltfilt's default padding
    if narrow.shape[0] <= pad:
        raise AudioError(
            f"signal: too short for the telephone channel ({x.shape[0]} samples at {rate} Hz)"
        )
    band = sps.sosfiltfilt(sos, narrow)
    coded = _mu_law(np.clip(band, -1.0, 1.0))
    wide = resample(coded, _PHONE_RATE, rate)
    return _fit(np.asarray(wide, dtype=np.float64), x.shape[0]).astype(np.float32)


def _codec_rate(spec: _Codec, rate: int) -> int:
    """The rate to encode at: ``rate`` if the codec takes it, else the next higher it takes."""
    if spec.rates is None or rate in spec.rates:
        return rate
    higher = [r for r in spec.rates if r > rate]
    return min(higher) if higher else max(spec.rates)


def codec(
    signal: np.ndarray,
    sample_rate: int,
    fmt: str,
    compression_level: float = LOW_QUALITY,
) -> np.ndarray:
    """Round-trip a signal through a lossy codec, in memory, with libsndfile.

    ``fmt`` is ``"mp3"`` (MPEG-1/2 Layer III), ``"ogg-vorbis"`` or ``"opus"`` (in Ogg). If the
    codec does not take ``sample_rate`` (MP3 and Opus have fixed sets of rates), the signal is
    resampled (soxr) to the next higher rate it takes, encoded, decoded and resampled back. The
    decoded signal is trimmed, or zero-padded at the end, to the input's length. Samples beyond
    [-1, 1] are clipped by the encoder.

    Args:
        signal: Mono waveform, shape ``[L]``, float, full scale 1.0.
        sample_rate: Its sample rate, in Hz.
        fmt: Codec name, a key of :data:`CODECS`.
        compression_level: libsndfile's compression level, 0 (best quality, highest bit rate)
            to 1 (worst); the registry's "low" conditions use :data:`LOW_QUALITY`.

    Returns:
        The decoded waveform, shape ``[L]``, float32.

    Raises:
        AudioError: If ``signal`` is not a non-empty, finite 1-D float array or the rate is
            invalid.
        ConfigError: If ``fmt`` is unknown, ``compression_level`` is outside [0, 1], or this
            machine's libsndfile cannot encode ``fmt`` at that level.
    """
    if fmt not in CODECS:
        raise ConfigError(f"unknown codec {fmt!r}; choose one of {', '.join(CODECS)}")
    level = _finite(compression_level, "codec compression_level")
    if not 0.0 <= level <= 1.0:
        raise ConfigError(f"codec compression_level must be in [0, 1], got {compression_level!r}")
    x = _as_mono(signal)
    rate = _check_rate(sample_rate)
    spec = CODECS[fmt]
    coded_rate = _codec_rate(spec, rate)
    data = np.asarray(resample(x, rate, coded_rate), dtype=np.float64)
    buffer = io.BytesIO()
    try:
        sf.write(
            buffer,
            data,
            coded_rate,
            format=spec.format,
            subtype=spec.subtype,
            compression_level=level,
        )
        buffer.seek(0)
        decoded, _ = sf.read(buffer, dtype="float64", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(
            f"this machine's libsndfile cannot round-trip codec {fmt!r} "
            f"(compression_level {level}): {reason}"
        ) from None
    decoded = np.asarray(decoded, dtype=np.float64)
    if decoded.ndim == 2:
        decoded = decoded.mean(axis=1)
    back = np.asarray(resample(decoded, coded_rate, rate), dtype=np.float64)
    return _fit(back, x.shape[0]).astype(np.float32)


@lru_cache(maxsize=1)
def _working_codecs() -> tuple[str, ...]:
    probe = (0.3 * np.sin(2 * np.pi * 440 * np.arange(1600) / 16000)).astype(np.float32)
    working = []
    for name in CODECS:
        try:
            codec(probe, 16000, name)
        except ConfigError:
            continue
        working.append(name)
    return tuple(working)


def available_codecs() -> list[str]:
    """The codecs of :data:`CODECS` this machine's libsndfile can encode and decode.

    Each is tried once (0.1 s of a tone at 16 kHz, at :data:`LOW_QUALITY`) on the first call;
    the answer is cached for the process.

    Returns:
        Codec names, in the order of :data:`CODECS`.
    """
    return list(_working_codecs())


# --------------------------------------------------------------------------- level


def gain(signal: np.ndarray, db: float) -> np.ndarray:
    """Scale a signal by ``db`` decibels: multiply by ``10 ** (db / 20)``, without clipping.

    A positive gain can push samples beyond [-1, 1]; they are kept (combine with :func:`clip`
    to model a saturating input stage).

    Args:
        signal: Mono waveform, shape ``[L]``, float.
        db: Gain in dB (finite; negative attenuates).

    Returns:
        The scaled waveform, shape ``[L]``, float32.

    Raises:
        AudioError: If ``signal`` is not a non-empty, finite 1-D float array.
        ConfigError: If ``db`` is not finite.
    """
    factor = 10.0 ** (_finite(db, "gain db") / 20.0)
    return (_as_mono(signal) * factor).astype(np.float32)


def clip(signal: np.ndarray, level: float) -> np.ndarray:
    """Hard-clip a signal at a fraction of its own peak.

    Samples are limited to ``[-t, t]`` with ``t = level * max(abs(signal))``: ``level=0.1``
    clips at 10 % of the peak (heavy distortion), ``level=1`` changes nothing. The level is
    relative so the distortion does not depend on the recording's gain. The output is not
    rescaled (its peak is ``t``). A silent signal is returned unchanged.

    Args:
        signal: Mono waveform, shape ``[L]``, float.
        level: Clipping threshold as a fraction of the peak, in (0, 1].

    Returns:
        The clipped waveform, shape ``[L]``, float32.

    Raises:
        AudioError: If ``signal`` is not a non-empty, finite 1-D float array.
        ConfigError: If ``level`` is not in (0, 1].
    """
    fraction = _finite(level, "clip level")
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"clip level must be in (0, 1] (a fraction of the peak), got {level!r}")
    x = _as_mono(signal)
    threshold = fraction * float(np.max(np.abs(x)))
    return np.clip(x, -threshold, threshold).astype(np.float32)


# --------------------------------------------------------------------------- registry

_KINDS = ("noise", "reverb", "telephone", "codec", "gain", "clip")
_NOISE_KINDS = ("white", "pink", "babble")


@dataclass(frozen=True)
class Condition:
    """One recording condition at one strength, applicable to any test signal.

    Attributes:
        name: Unique name, e.g. ``"babble_10db"``, ``"reverb_0.6s"``, ``"telephone"``,
            ``"mp3_low"``, ``"gain_-20db"``, ``"clip_0.1"``. The part before the first ``_`` is
            its *family* (``"babble"``, ``"reverb"``, ``"mp3"``, ...).
        kind: ``"noise"``, ``"reverb"``, ``"telephone"``, ``"codec"``, ``"gain"`` or ``"clip"``.
        strength: SNR in dB (noise), RT60 in seconds (reverb), gain in dB, or clip level as a
            fraction of the peak; ``None`` for telephone and codecs.
        params: Further settings: ``{"noise": "white" | "pink" | "babble"}`` for noise
            (babble also takes ``"talkers"``, default 6), ``{"format": ..., "compression_level":
            ...}`` for codecs, optionally ``{"drr_db": ...}`` for reverb.
    """

    name: str
    kind: str
    strength: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ConfigError(
                f"condition {self.name!r}: unknown kind {self.kind!r}; "
                f"choose one of {', '.join(_KINDS)}"
            )
        needs_strength = self.kind in ("noise", "reverb", "gain", "clip")
        if needs_strength and self.strength is None:
            raise ConfigError(f"condition {self.name!r}: kind {self.kind!r} needs a strength")
        if not needs_strength and self.strength is not None:
            raise ConfigError(f"condition {self.name!r}: kind {self.kind!r} takes no strength")
        if self.kind == "noise":
            _finite(self.strength, f"condition {self.name!r} SNR")
            if self.params.get("noise") not in _NOISE_KINDS:
                raise ConfigError(
                    f"condition {self.name!r}: params['noise'] must be one of "
                    f"{', '.join(_NOISE_KINDS)}, got {self.params.get('noise')!r}"
                )
        elif self.kind == "reverb":
            _check_rt60(self.strength)
        elif self.kind == "gain":
            _finite(self.strength, f"condition {self.name!r} gain")
        elif self.kind == "clip":
            level = _finite(self.strength, f"condition {self.name!r} clip level")
            if not 0.0 < level <= 1.0:
                raise ConfigError(
                    f"condition {self.name!r}: clip level must be in (0, 1], got {level}"
                )
        elif self.kind == "codec" and self.params.get("format") not in CODECS:
            raise ConfigError(
                f"condition {self.name!r}: params['format'] must be one of "
                f"{', '.join(CODECS)}, got {self.params.get('format')!r}"
            )

    @property
    def family(self) -> str:
        """The name's part before the first ``_`` (``"babble"`` for ``"babble_10db"``)."""
        return self.name.split("_", 1)[0]

    def apply(
        self,
        signal: np.ndarray,
        sample_rate: int,
        rng: np.random.Generator,
        babble: Sequence[np.ndarray] | None = None,
    ) -> np.ndarray:
        """Apply the condition to one signal.

        The result is a deterministic function of the signal and the generator state. Give
        each (utterance, condition) pair its own generator from :func:`condition_rng`, so a
        result does not depend on the processing order. Noise is added with
        :func:`add_at_snr` at ``strength`` dB SNR over the whole signal (a silent signal stays
        silent). Telephone, codec, gain and clip do not use ``rng``.

        Args:
            signal: Mono waveform, shape ``[L]``, float, full scale 1.0.
            sample_rate: Its sample rate, in Hz.
            rng: Random generator; the only source of randomness.
            babble: Speech waveforms at ``sample_rate`` to build babble from (needed, and
                used, only by babble-noise conditions).

        Returns:
            The transformed waveform, shape ``[L]``, float32.

        Raises:
            AudioError: If ``signal`` (or a babble signal) is not a usable waveform, or the
                rate is invalid.
            ConfigError: If a babble condition gets no ``babble`` speech, or a codec cannot be
                encoded on this machine.
        """
        x = _as_mono(signal)
        rate = _check_rate(sample_rate)
        params = self.params
        if self.kind == "noise":
            assert self.strength is not None
            kind = params["noise"]
            if kind == "babble":
                if babble is None:
                    raise ConfigError(
                        f"condition {self.name!r} needs speech to build babble from "
                        "(pass babble=[waveform, ...])"
                    )
                noise = babble_noise(x.shape[0], babble, rng, int(params.get("talkers", 6)))
            else:
                noise = _NOISES[kind](x.shape[0], rng)
            return add_at_snr(x, noise, self.strength)
        if self.kind == "reverb":
            assert self.strength is not None
            return reverberate(x, rate, self.strength, rng, float(params.get("drr_db", 0.0)))
        if self.kind == "telephone":
            return telephone(x, rate)
        if self.kind == "codec":
            level = float(params.get("compression_level", LOW_QUALITY))
            return codec(x, rate, str(params["format"]), level)
        if self.kind == "gain":
            assert self.strength is not None
            return gain(x, self.strength)
        assert self.strength is not None
        return clip(x, self.strength)


def _registry() -> dict[str, Condition]:
    conditions: list[Condition] = []
    for noise in _NOISE_KINDS:
        for snr in (20, 10, 5, 0):
            conditions.append(Condition(f"{noise}_{snr}db", "noise", float(snr), {"noise": noise}))
    for rt60 in (0.3, 0.6, 0.9):
        conditions.append(Condition(f"reverb_{rt60:g}s", "reverb", rt60))
    conditions.append(Condition("telephone", "telephone"))
    for fmt in CODECS:
        conditions.append(
            Condition(
                f"{fmt}_low", "codec", None, {"format": fmt, "compression_level": LOW_QUALITY}
            )
        )
    for db in (-20, -10, 10, 20):
        conditions.append(Condition(f"gain_{db:+d}db", "gain", float(db)))
    for level in (0.5, 0.25, 0.1):
        conditions.append(Condition(f"clip_{level:g}", "clip", level))
    return {c.name: c for c in conditions}


#: The graded conditions by name: white/pink/babble noise at 20, 10, 5 and 0 dB SNR; reverb at
#: RT60 0.3, 0.6 and 0.9 s; telephone; each codec of :data:`CODECS` at low quality (whether it
#: works here is checked when applied, see :func:`available_codecs`); gain -20, -10, +10 and
#: +20 dB; clipping at 0.5, 0.25 and 0.1 of the peak.
CONDITIONS: dict[str, Condition] = _registry()


def conditions_named(names: str | Iterable[str]) -> list[Condition]:
    """Select conditions from :data:`CONDITIONS` by name, family, kind or ``"all"``.

    Each name may be an exact condition name (``"babble_10db"``), a family (``"babble"``: all
    its strengths; ``"gain"``, ``"reverb"``, ``"mp3"``, ...), a kind (``"noise"``: every noise
    condition; ``"codec"``: every codec) or ``"all"``. A string is split on commas, so
    ``"babble,reverb_0.6s"`` works as a command-line value.

    Args:
        names: A name, a comma-separated string of names, or an iterable of names.

    Returns:
        The matching conditions, in the order requested (each family or kind in registry
        order), each at most once.

    Raises:
        ConfigError: If a name matches nothing; the message lists the known names.
    """
    requested = names.split(",") if isinstance(names, str) else list(names)
    chosen: dict[str, Condition] = {}
    for raw in requested:
        name = str(raw).strip()
        if name == "all":
            matches = list(CONDITIONS.values())
        elif name in CONDITIONS:
            matches = [CONDITIONS[name]]
        else:
            matches = [c for c in CONDITIONS.values() if name in (c.family, c.kind)]
        if not matches:
            families = sorted({c.family for c in CONDITIONS.values()} | set(_KINDS))
            raise ConfigError(
                f"unknown condition {name!r}; known: all, families {', '.join(families)}, "
                f"names {', '.join(CONDITIONS)}"
            )
        for condition in matches:
            chosen.setdefault(condition.name, condition)
    return list(chosen.values())


def condition_rng(seed: int, utt_id: str, condition_name: str) -> np.random.Generator:
    """The generator for one (utterance, condition) pair, derived from a base seed.

    ``np.random.default_rng([seed, crc32(utt_id), crc32(condition_name)])`` (``zlib.crc32`` of
    the UTF-8 bytes): the same three values always give the same stream, in any process and
    whatever else was drawn before, so a robustness run's noisy signals do not depend on the
    order utterances or conditions are processed in, nor on which conditions are selected.

    Args:
        seed: Base seed of the run (a non-negative integer).
        utt_id: Utterance identifier (e.g. its path relative to the corpus root).
        condition_name: The condition's name, e.g. ``"babble_10db"``.

    Returns:
        A fresh generator.

    Raises:
        ConfigError: If ``seed`` is not a non-negative integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng(
        [int(seed), zlib.crc32(str(utt_id).encode()), zlib.crc32(str(condition_name).encode())]
    )


# --------------------------------------------------------------------------- training draws

#: Strength ranges of :func:`random_condition` (uniform draws): noise SNR in dB, RT60 in s,
#: gain in dB, clip level as a fraction of the peak. They cover the harness's grades (SNR 0-20,
#: RT60 0.3-0.9, gain +-20, clip 0.1-0.5) with continuous values and other random streams.
TRAINING_RANGES: dict[str, tuple[float, float]] = {
    "snr_db": (0.0, 25.0), "rt60": (0.2, 1.0), "gain_db": (-20.0, 20.0), "clip": (0.1, 0.6),
}


def random_condition(families: Sequence[str], rng: np.random.Generator) -> Condition:
    """A condition drawn for training: one family of ``families``, a random strength.

    Families: ``white``, ``pink``, ``babble`` (noise at an SNR drawn from
    :data:`TRAINING_RANGES`), ``reverb``, ``telephone``, ``codec`` (one of the codecs this
    machine encodes, at :data:`LOW_QUALITY`), ``gain``, ``clip``. The condition's name says
    what was drawn (``"train_babble_7.3db"``).

    Raises:
        ConfigError: If ``families`` is empty or names an unknown family, or ``codec`` is the
            only family and no codec works here.
    """
    known = ("white", "pink", "babble", "reverb", "telephone", "codec", "gain", "clip")
    families = list(families)
    if not families or any(f not in known for f in families):
        raise ConfigError(f"training conditions must be among {', '.join(known)}, "
                          f"got {families!r}")
    codecs = available_codecs() if "codec" in families else []
    usable = [f for f in families if f != "codec" or codecs]
    if not usable:
        raise ConfigError("no codec can be encoded on this machine (libsndfile)")
    family = usable[int(rng.integers(0, len(usable)))]
    if family in _NOISE_KINDS:
        snr = round(float(rng.uniform(*TRAINING_RANGES["snr_db"])), 1)
        return Condition(f"train_{family}_{snr:g}db", "noise", snr, {"noise": family})
    if family == "reverb":
        rt60 = round(float(rng.uniform(*TRAINING_RANGES["rt60"])), 2)
        return Condition(f"train_reverb_{rt60:g}s", "reverb", rt60)
    if family == "telephone":
        return Condition("train_telephone", "telephone")
    if family == "codec":
        fmt = codecs[int(rng.integers(0, len(codecs)))]
        return Condition(f"train_{fmt}_low", "codec", None,
                         {"format": fmt, "compression_level": LOW_QUALITY})
    if family == "gain":
        db = round(float(rng.uniform(*TRAINING_RANGES["gain_db"])), 1)
        return Condition(f"train_gain_{db:+g}db", "gain", db)
    level = round(float(rng.uniform(*TRAINING_RANGES["clip"])), 2)
    return Condition(f"train_clip_{level:g}", "clip", level)


def training_copy(signal: np.ndarray, sample_rate: int, families: Sequence[str], seed: int,
                  utt_id: str, copy: int, voices: Sequence[np.ndarray] = ()) -> np.ndarray:
    """Corrupted copy number ``copy`` of a training utterance (multi-condition training).

    The draw depends on ``seed``, the utterance id and ``copy`` only. Babble is built from
    ``voices`` (speech the caller may use without leaking test speakers: emovox passes the
    same speaker's other recordings), each talker played at its own random speed (0.8-1.25x,
    so one voice becomes several); with no ``voices`` the utterance itself is used.

    Example:
        >>> x = np.sin(2 * np.pi * 220 * np.arange(16000) / 16000).astype(np.float32)
        >>> a = training_copy(x, 16000, ["white", "reverb"], 1, "utt1", 0)
        >>> b = training_copy(x, 16000, ["white", "reverb"], 1, "utt1", 0)
        >>> bool(np.array_equal(a, b)), a.shape
        (True, (16000,))
    """
    rng = np.random.default_rng([int(seed), zlib.crc32(str(utt_id).encode()), int(copy)])
    condition = random_condition(families, rng)
    babble = None
    if condition.params.get("noise") == "babble":
        pool = list(voices) or [np.asarray(signal, dtype=np.float32)]
        # Played at another speed (resampled, read at the same rate): pitch and formants move.
        babble = [resample(np.asarray(pool[int(rng.integers(0, len(pool)))], np.float32),
                           sample_rate, int(round(sample_rate / float(rng.uniform(0.8, 1.25)))))
                  for _ in range(6)]
    return condition.apply(signal, sample_rate, rng, babble=babble)
