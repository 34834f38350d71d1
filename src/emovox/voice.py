"""Voice conversion that changes who speaks but keeps how they feel (CO-VADA, issue #18).

:func:`convert` moves a recording's F0 and formants, the two traits that most tell speakers
(and sexes) apart, and keeps what carries the emotion: the F0 contour's shape (it is multiplied,
so its range in semitones stays), the timing (same duration, sample for sample), the intensity
envelope and the level. :func:`speaker_shift` draws a plausible "other speaker" for a voice;
:func:`measure_shift` says what a conversion did (F0 and formant ratios, measured) and
whether the prosody survived (F0 contour and intensity envelope), the check CO-VADA's
augmented data needs beside the model's own agreement.

The one method so far, ``"praat"``, is the algorithm of Praat's "Change gender" (Praat's
manual: "Sound: Change gender..."): the sound is played ``formant_factor`` times faster
(every frequency moves), then pitch-synchronous overlap-add (PSOLA) restores the duration and
sets the new F0, through ``praat-parselmouth`` (the optional extra ``explain``). It is built
from Praat's Manipulation commands rather than the one "Change gender" call, because that call
was measured to misplace the F0 contour in time whenever the formants move (on three RAVDESS
clips only 33-82 % of the voiced frames kept their F0 within a semitone of the intended one,
against 83-99 % here, the same clips and factors; pitch-only shifts were alike). Another tool
(a WORLD vocoder) would be a further ``method`` of :func:`convert`, behind the same call.

Example:
    >>> speaker_shift(np.random.default_rng(0), 120.0)  # a low voice: up, towards a high one
    VoiceShift(pitch_factor=1.564, formant_factor=1.126)
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from emovox.cues import PITCH_CEILING_HZ, PITCH_FLOOR_HZ, REGISTER_BOUNDARY_HZ
from emovox.errors import AudioError, ConfigError, require

__all__ = [
    "FACTOR_RANGE",
    "METHODS",
    "TOWARDS_HIGH",
    "TOWARDS_LOW",
    "VoiceShift",
    "convert",
    "measure_shift",
    "median_f0",
    "speaker_shift",
]

#: The conversion methods :func:`convert` knows.
METHODS = ("praat",)

#: Smallest and largest pitch or formant factor :func:`convert` accepts (declared limits: an
#: octave either way, far beyond the differences between adult speakers).
FACTOR_RANGE = (0.5, 2.0)

#: (pitch factor range, formant factor range) :func:`speaker_shift` draws from for a voice
#: below :data:`~emovox.cues.REGISTER_BOUNDARY_HZ` (a low, typically male voice) ...
TOWARDS_HIGH = ((1.35, 1.70), (1.10, 1.20))
#: ... and for a voice at or above it (a high, typically female voice): the reciprocals,
#: rounded (1/1.7 = 0.59, 1/1.35 = 0.74; 1/1.2 = 0.83, 1/1.1 = 0.91).
TOWARDS_LOW = ((0.60, 0.75), (0.85, 0.90))
# Where the numbers come from, and what is chosen: the classic vowel studies give adult women's
# mean F0 about 1.7 times men's (Peterson & Barney 1952: 223 vs 132 Hz; Hillenbrand et al.
# 1995: 220 vs 131 Hz) and their formants about 1.1-1.2 times (the ratio varies by vowel and
# formant; Fant 1966's "non-uniform" sex factors average about 1.17). The upper pitch bound is
# that average ratio; the lower bound (1.35) and the formant interval are our declared choices,
# so that a converted voice lands anywhere from "a higher voice of the same sex" to "a typical
# voice of the other sex", not only on the average. They are not fitted to any corpus.

_MEASURE_FLOOR_HZ = 50.0  # measure_shift's first pass: wide enough for a voice lowered an
_MEASURE_CEILING_HZ = 900.0  # octave or a high voice raised by half
_HOP_SECONDS = 0.01
_RESAMPLE_PRECISION = 50  # Praat's default (sinc interpolation depth, samples)
_PRAAT_SEED = 18  # any fixed number: the result must not depend on the call's history
_N_FFT = 1024
_MIN_FRAMES = 5  # fewer voiced frames than this: a measure is None


class VoiceShift(NamedTuple):
    """How to change a voice: the factors :func:`convert` takes (``convert(x, sr, **shift)``)."""

    pitch_factor: float
    formant_factor: float


def convert(signal: NDArray[Any], sample_rate: int, *, pitch_factor: float = 1.0,
            formant_factor: float = 1.0, method: str = "praat") -> NDArray[np.float32]:
    """Change the speaker traits of a voice (F0 and formants) and keep its prosody.

    F0 is multiplied by ``pitch_factor`` everywhere (its median moves by that factor and its
    contour keeps its shape in semitones) and the formants by ``formant_factor``; duration,
    timing and the intensity envelope stay, and the RMS level is set back to the input's.
    Factors of 1 and 1 still resynthesise the signal (the PSOLA control: the processing
    without the shift). A signal without a voiced frame (silence, noise, whisper) comes back
    unchanged: measure the result (:func:`measure_shift`) to know what was done. The result
    depends on the input and the factors only (Praat's generator is seeded for the call).

    ``"praat"``: Praat's "Override sampling frequency" to ``formant_factor`` x the rate and
    "Resample" back (formants and F0 x ``formant_factor``, duration / ``formant_factor``);
    "To Manipulation" (10 ms, pitch 75-600 Hz x ``formant_factor``, Praat's speech defaults
    moved with the voice); its pitch tier multiplied by ``pitch_factor / formant_factor``
    (the contour is scaled, so its shape in semitones stays: Change gender's pitch range
    factor 1) and a duration tier of ``formant_factor``; "Get resynthesis (overlap-add)".

    Args:
        signal: Mono audio, shape ``[samples]``, floats (NaN and infinities are zeroed/clipped).
        sample_rate: Samples per second, e.g. 16000.
        pitch_factor: F0 multiplier, in :data:`FACTOR_RANGE`.
        formant_factor: Formant frequency multiplier, in :data:`FACTOR_RANGE`.
        method: One of :data:`METHODS`.

    Returns:
        The converted signal, float32, exactly as many samples as the input. It may exceed
        full scale where the input came close to it.

    Raises:
        ConfigError: If a factor or the method is out of range or unknown.
        AudioError: If the signal is not 1-D or the rate is not positive.
        MissingExtraError: If praat-parselmouth is not installed.
    """
    x = _as_mono(signal, sample_rate)
    for name, value in (("pitch_factor", pitch_factor), ("formant_factor", formant_factor)):
        low, high = FACTOR_RANGE
        if not (isinstance(value, (int, float)) and low <= value <= high):
            raise ConfigError(f"voice conversion: {name} must be in [{low}, {high}], got {value!r}")
    if method not in METHODS:
        raise ConfigError(f"voice conversion: unknown method '{method}' "
                          f"(known: {', '.join(METHODS)})")
    parselmouth = require("parselmouth", "explain")
    if not np.any(x):
        return x.astype(np.float32)
    call = parselmouth.praat.call
    sound = parselmouth.Sound(x, sampling_frequency=float(sample_rate))
    ratio = float(formant_factor)
    # Praat's overlap-add places the pulses of unvoiced stretches at random, from its own
    # global generator: seed it for a deterministic result, then give it back its usual
    # (unpredictable) state; a seed the caller gave Praat itself is not kept
    parselmouth.praat.run(f"random_initializeWithSeedUnsafelyButPredictably ({_PRAAT_SEED})")
    try:
        if ratio != 1:  # played `ratio` times faster: every frequency (F0 too) x ratio
            call(sound, "Override sampling frequency", sample_rate * ratio)
            sound = call(sound, "Resample", float(sample_rate), _RESAMPLE_PRECISION)
        manipulation = call(sound, "To Manipulation", _HOP_SECONDS, PITCH_FLOOR_HZ * ratio,
                            PITCH_CEILING_HZ * ratio)
        tier = call(manipulation, "Extract pitch tier")
        if call(tier, "Get number of points") == 0:
            return x.astype(np.float32)  # no voiced frame: no pitch to move, nothing to convert
        call(tier, "Multiply frequencies", sound.xmin, sound.xmax, float(pitch_factor) / ratio)
        call([tier, manipulation], "Replace pitch tier")
        if ratio != 1:  # ... and back to the original duration
            durations = call("Create DurationTier", "durations", sound.xmin, sound.xmax)
            call(durations, "Add point", sound.xmin, ratio)
            call([manipulation, durations], "Replace duration tier")
        converted = call(manipulation, "Get resynthesis (overlap-add)")
    except parselmouth.PraatError:  # too short for one analysis window, too few pulses
        return x.astype(np.float32)
    finally:
        parselmouth.praat.run("random_initializeSafelyAndUnpredictably ()")
    y = np.asarray(converted.values[0], dtype=np.float64)
    # resampling and overlap-add can end a sample or so off: keep the input's length
    y = np.pad(y[:x.size], (0, max(0, x.size - y.size)))
    rms_in, rms_out = _rms(x), _rms(y)
    if rms_out > 0:
        y *= rms_in / rms_out
    return y.astype(np.float32)


def median_f0(signal: NDArray[Any], sample_rate: int) -> float | None:
    """Median F0 (Hz) of a voice's voiced frames (Praat, 75-600 Hz), ``None`` if none is voiced.

    The value :func:`speaker_shift` takes (pass a speaker's, see there).
    """
    parselmouth = require("parselmouth", "explain")
    x = _as_mono(signal, sample_rate)
    if not np.any(x):
        return None
    try:
        pitch = parselmouth.Sound(x, sampling_frequency=float(sample_rate)).to_pitch(
            pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ)
    except parselmouth.PraatError:  # shorter than one analysis window
        return None
    median = parselmouth.praat.call(pitch, "Get quantile", 0.0, 0.0, 0.5, "Hertz")
    return float(median) if math.isfinite(median) and median > 0 else None


def speaker_shift(rng: np.random.Generator, median_f0_hz: float | None) -> VoiceShift:
    """Draw the factors that turn a voice into a plausible voice of the other sex.

    A voice with median F0 below :data:`~emovox.cues.REGISTER_BOUNDARY_HZ` (160 Hz) goes up
    (:data:`TOWARDS_HIGH`: pitch x1.35-1.7, formants x1.1-1.2), a voice at or above it goes
    down (:data:`TOWARDS_LOW`: pitch x0.6-0.75, formants x0.85-0.9); each factor is drawn
    log-uniformly from its interval and rounded to 3 decimals. The intervals are declared
    choices around the literature's average female/male ratios (see the module source).

    Pass the *speaker's* median F0 (say, the median of :func:`median_f0` over their
    utterances), not the utterance's: emotion moves an utterance's F0 (angry, fearful and
    surprised speech is higher; RAVDESS men's reach 150-220 Hz), so deciding per utterance would
    send a man's aroused utterances down and his calm ones up, tying the direction to the
    emotion.

    Args:
        rng: The generator to draw from (the only source of randomness).
        median_f0_hz: The speaker's median F0 (Hz); ``None`` (no voiced frame) gives no
            shift, (1, 1).

    Returns:
        The :class:`VoiceShift` to pass to :func:`convert`.
    """
    if median_f0_hz is None or not math.isfinite(median_f0_hz) or median_f0_hz <= 0:
        return VoiceShift(1.0, 1.0)
    pitch_range, formant_range = (TOWARDS_HIGH if median_f0_hz < REGISTER_BOUNDARY_HZ
                                  else TOWARDS_LOW)
    pitch, formant = (round(math.exp(rng.uniform(math.log(low), math.log(high))), 3)
                      for low, high in (pitch_range, formant_range))
    return VoiceShift(pitch, formant)


def measure_shift(original: NDArray[Any], converted: NDArray[Any],
                  sample_rate: int) -> dict[str, float | None]:
    """Measure what a conversion did to the speaker traits, and what it kept of the prosody.

    Both signals are analysed alike. F0: Praat's autocorrelation pitch in two passes (50-900 Hz,
    then 0.75 x the first quartile to 1.5 x the third, De Looze & Hirst 2008, which keeps octave
    errors out of each voice's own range). Formants: the average LPC envelope (dB) of the voiced
    frames of each signal, and the frequency-axis stretch that best maps the original's onto
    the converted one (300-3800 Hz); tracking single formants (Praat's Burg tracker) was tried
    and dropped: formants swap numbers between the two signals, so per-formant ratios of real
    speech came out on the wrong side of 1.

    Args:
        original: The input of :func:`convert`, shape ``[samples]``.
        converted: Its output, same rate.
        sample_rate: Samples per second of both.

    Returns:
        ``f0_ratio``: median F0 converted / original; ``formant_ratio``: the envelope stretch
        (in :data:`FACTOR_RANGE`, 0.35 % steps); ``envelope_match``: the correlation of the two
        envelopes at that stretch (near 1: the one stretch explains the change);
        ``f0_contour_match``: the share of the frames voiced in both whose F0 ratio lies within
        a semitone of the median ratio (1: the contour kept its shape and timing; pitch-tracking
        octave errors lower it a little); ``intensity_correlation``: Pearson correlation of the
        intensity contours (dB); ``level_db``: RMS level converted - original. A value is
        ``None`` where it cannot be measured (fewer than 5 voiced frames, silence).

    Raises:
        AudioError: If a signal is not 1-D or the rate is not positive.
        MissingExtraError: If praat-parselmouth is not installed.
    """
    x, y = _as_mono(original, sample_rate), _as_mono(converted, sample_rate)
    a, b = _analyse(x, sample_rate), _analyse(y, sample_rate)
    out: dict[str, float | None] = {"f0_ratio": None, "formant_ratio": None,
                                    "envelope_match": None, "f0_contour_match": None}
    fa, fb = a["f0"][np.isfinite(a["f0"])], b["f0"][np.isfinite(b["f0"])]
    if fa.size >= _MIN_FRAMES and fb.size >= _MIN_FRAMES:
        out["f0_ratio"] = float(np.median(fb) / np.median(fa))
        out["formant_ratio"], out["envelope_match"] = _stretch(
            _envelope(x, sample_rate, a["times"][np.isfinite(a["f0"])]),
            _envelope(y, sample_rate, b["times"][np.isfinite(b["f0"])]), sample_rate)
    n = min(a["f0"].size, b["f0"].size)
    steps = 12.0 * np.log2(b["f0"][:n] / a["f0"][:n])
    steps = steps[np.isfinite(steps)]
    if steps.size >= _MIN_FRAMES:
        out["f0_contour_match"] = float(np.mean(np.abs(steps - np.median(steps)) <= 1.0))
    out["intensity_correlation"] = _correlation(a["intensity"], b["intensity"])
    ra, rb = _rms(x), _rms(y)
    out["level_db"] = 20.0 * math.log10(rb / ra) if ra > 0 and rb > 0 else None
    return out


def _as_mono(signal: NDArray[Any], sample_rate: int) -> NDArray[np.float64]:
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1 or not sample_rate > 0:
        raise AudioError(f"voice conversion needs a 1-D signal and a positive rate (got shape "
                         f"{x.shape}, rate {sample_rate})")
    return np.nan_to_num(x, posinf=1.0, neginf=-1.0)


def _rms(x: NDArray[np.float64]) -> float:
    return float(np.sqrt(np.mean(x ** 2))) if x.size else 0.0


def _analyse(x: NDArray[np.float64], sample_rate: int) -> dict[str, NDArray[np.float64]]:
    """F0 (Hz, NaN where unvoiced) and intensity (dB) on a 10 ms grid (``times``, seconds)."""
    parselmouth = require("parselmouth", "explain")
    times = np.arange(0.005, x.size / sample_rate, _HOP_SECONDS)
    none = np.full(times.shape, np.nan)
    if not np.any(x):
        return {"times": times, "f0": none, "intensity": none}
    sound = parselmouth.Sound(x, sampling_frequency=float(sample_rate))
    try:
        f0 = _pitch(sound, times, _MEASURE_FLOOR_HZ, _MEASURE_CEILING_HZ)
        if np.sum(np.isfinite(f0)) >= _MIN_FRAMES:  # second pass: this voice's own range
            q1, q3 = np.nanpercentile(f0, [25, 75])
            f0 = _pitch(sound, times, 0.75 * q1, 1.5 * q3)
        intensity = sound.to_intensity(minimum_pitch=_MEASURE_FLOOR_HZ, time_step=_HOP_SECONDS)
    except parselmouth.PraatError:  # shorter than one analysis window
        return {"times": times, "f0": none, "intensity": none}
    db = np.array([intensity.get_value(t) for t in times], dtype=np.float64)
    return {"times": times, "f0": f0, "intensity": db}


def _pitch(sound: Any, times: NDArray[np.float64], floor: float,
           ceiling: float) -> NDArray[np.float64]:
    pitch = sound.to_pitch(time_step=_HOP_SECONDS, pitch_floor=floor, pitch_ceiling=ceiling)
    f0 = np.array([pitch.get_value_at_time(t) for t in times], dtype=np.float64)
    f0[~(f0 > 0)] = np.nan
    return f0


def _envelope(x: NDArray[np.float64], sample_rate: int,
              times: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mean LPC envelope (dB, ``_N_FFT // 2 + 1`` bins) of 25 ms frames centred on ``times``.

    Pre-emphasised (0.97), Hann window, autocorrelation method (Levinson-Durbin, all frames at
    once) of order 2 + the rate in kHz, the usual rule for formant analysis.
    """
    order = int(2 + sample_rate // 1000)
    length = int(0.025 * sample_rate)
    x = np.append(x[:1], x[1:] - 0.97 * x[:-1])
    if x.size < length:
        x = np.pad(x, (0, length - x.size))
    starts = np.clip(np.round(times * sample_rate).astype(int) - length // 2, 0, x.size - length)
    frames = x[starts[:, None] + np.arange(length)] * np.hanning(length)
    r = np.fft.irfft(np.abs(np.fft.rfft(frames, _N_FFT)) ** 2, _N_FFT)[:, :order + 1]
    r[:, 0] = r[:, 0] * (1 + 1e-9) + 1e-12  # a numerical floor: white-noise correction
    a = np.zeros((frames.shape[0], order + 1))
    a[:, 0] = 1.0
    error = r[:, 0].copy()
    for i in range(1, order + 1):
        k = -(r[:, i] + np.sum(a[:, 1:i] * r[:, i - 1:0:-1], axis=1)) / error
        a[:, 1:i] = a[:, 1:i] + k[:, None] * a[:, i - 1:0:-1]
        a[:, i] = k
        error = error * (1.0 - k ** 2)
    gain = np.abs(np.fft.rfft(a, _N_FFT)) ** 2
    return np.asarray(np.mean(10.0 * np.log10(error[:, None] / gain + 1e-30), axis=0))


def _stretch(original: NDArray[np.float64], converted: NDArray[np.float64],
             sample_rate: int) -> tuple[float, float]:
    """The factor ``s`` for which ``converted(f)`` best matches ``original(f / s)``.

    Matched by Pearson correlation over 300-3800 Hz (less where the rate is low, so that
    ``f / s`` stays below Nyquist for every ``s`` tried); returns ``(s, correlation)``.
    """
    frequencies = np.fft.rfftfreq(_N_FFT, 1.0 / sample_rate)
    low, high = FACTOR_RANGE
    band = np.linspace(300.0, min(3800.0, 0.95 * low * sample_rate / 2), 400)
    target = np.interp(band, frequencies, converted)
    target = target - target.mean()
    factors = np.exp(np.linspace(math.log(low), math.log(high), 401))
    sources = np.stack([np.interp(band / s, frequencies, original) for s in factors])
    sources = sources - sources.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(sources, axis=1) * np.linalg.norm(target)
    scores = sources @ target / np.where(norms > 0, norms, np.inf)
    best = int(np.argmax(scores))
    return float(factors[best]), float(scores[best])


def _correlation(a: NDArray[np.float64], b: NDArray[np.float64]) -> float | None:
    """Pearson correlation over the frames where both are finite, ``None`` if too few."""
    n = min(a.size, b.size)
    both = np.isfinite(a[:n]) & np.isfinite(b[:n])
    if both.sum() < _MIN_FRAMES:
        return None
    x, y = a[:n][both], b[:n][both]
    if np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])
