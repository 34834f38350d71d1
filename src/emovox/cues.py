"""Expert acoustic cues of emotional speech, measured inside chosen time spans of a recording.

:func:`measure` gives the cues of :data:`CUES` (F0 level, range and slope, intensity, jitter,
shimmer, HNR, spectral balance, speech rate, pauses) for the parts of a signal inside some
spans; :func:`z_scores` expresses them against the neutral speech of the bundled reference
(:func:`load_reference`, made by ``benchmarks/cue_reference.py``), and :func:`expected` says
which direction the literature expects for an emotion (``data/cue_expectations.toml``).

Cues meant to be compared with the reference are measured on :func:`prepare`'d signals (the
active speech level set to :data:`LEVEL_DBFS`, as the recognizer's conditioning does), so the
intensity cues describe loudness relative to the recording's own speech level, not its gain;
and inside regions of the kind ``emovox explain`` picks (a fifth of the recording, at least
0.8 s, often in pieces): the reference describes random regions of that size in neutral
speech, as range, slope, rate and perturbation cues depend on how much speech they see.

Pitch, intensity, the glottal point process, jitter, shimmer and HNR are Praat's algorithms
through ``praat-parselmouth`` (the optional extra ``explain``); the spectral cues and the
syllable nuclei (after de Jong & Wempe 2009) are computed with numpy from those contours.
Contours are computed once on the whole signal, so every span is measured in its context.

Example:
    >>> expected("sad", "speech_rate"), expected("angry", "f0_mean"), expected("calm", "hnr")
    ('-', '+', None)
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from emovox.errors import EmovoxError, require

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "CUES",
    "LEVEL_DBFS",
    "REGISTER_BOUNDARY_HZ",
    "Cue",
    "expectations",
    "expected",
    "load_reference",
    "measure",
    "measure_each",
    "measure_inside_outside",
    "prepare",
    "register_of",
    "z_scores",
]


@dataclass(frozen=True)
class Cue:
    """One acoustic cue: its name (a key of :func:`measure`'s dict), unit and definition."""

    name: str
    unit: str
    description: str


#: The cues :func:`measure` returns, in order.
CUES: tuple[Cue, ...] = (
    Cue("f0_mean", "st re 100 Hz", "mean F0 of the voiced frames, semitones above 100 Hz"),
    Cue("f0_range", "st", "F0 span between the 5th and 95th percentiles of the voiced frames"),
    Cue("f0_slope", "st/s", "slope of a least-squares line through the voiced frames' F0"),
    Cue("intensity_mean", "dB", "energy mean of the intensity of the sounding frames (less "
        "than 25 dB below the 0.99 quantile); Praat's dB (re 20 uPa at 1.0 = 1 Pa): follows "
        "the gain, so measure prepare()'d signals (speech level -26 dBFS, about 68 dB here)"),
    Cue("intensity_range", "dB", "intensity span between the 5th and 95th percentiles of the "
        "sounding frames"),
    Cue("jitter", "%", "local jitter: mean absolute difference of consecutive glottal periods "
        "over the mean period (Praat)"),
    Cue("shimmer", "%", "local shimmer: mean absolute difference of consecutive period peak "
        "amplitudes over the mean amplitude (Praat)"),
    Cue("hnr", "dB", "mean harmonics-to-noise ratio of the voiced frames (Praat, cc method)"),
    Cue("spectral_slope", "dB/kHz", "slope of a least-squares line through the voiced frames' "
        "average spectrum (dB) from 50 Hz to 5 kHz"),
    Cue("alpha_ratio", "dB", "voiced energy in 1-5 kHz over 50-1000 Hz (eGeMAPS; usually "
        "negative, rises with vocal effort)"),
    Cue("hammarberg", "dB", "strongest voiced spectral peak in 0-2 kHz minus that in 2-5 kHz"),
    Cue("speech_rate", "nuclei/s", "syllable nuclei (voiced intensity peaks standing 2 dB "
        "above the dip to the next peak, de Jong & Wempe 2009) per second of speech time"),
    Cue("pause_ratio", "%", "share of the speech time in silent pauses of 0.3 s or more"),
)

_NAMES = tuple(cue.name for cue in CUES)

#: Active speech level (dBFS) :func:`prepare` sets: the default recipe's conditioning
#: ``level_db`` (``recipes/default.toml``), so the cues hear what the recognizer hears.
LEVEL_DBFS = -26.0

#: F0 (Hz) between the "low" and "high" voice registers of the reference (see register_of).
REGISTER_BOUNDARY_HZ = 160.0

PITCH_FLOOR_HZ = 75.0  # Praat's defaults for speech
PITCH_CEILING_HZ = 600.0
HOP_SECONDS = 0.01
SILENCE_DB = -25.0  # de Jong & Wempe 2009: silence is 25 dB below the 0.99 quantile
MIN_DIP_DB = 2.0  # ... and a nucleus stands 2 dB above the dip to the next peak
MIN_PAUSE_SECONDS = 0.3  # ... and a pause lasts at least 0.3 s
MIN_FRAMES = 5  # fewer voiced (or sounding) frames than this in the spans: the cue is None
SPECTRUM_SECONDS = 0.04
_JITTER_ARGS = (0.0001, 0.02, 1.3)  # Praat's voice report: shortest, longest period, factor
_SHIMMER_ARGS = (*_JITTER_ARGS, 1.6)  # ... and maximum amplitude factor

Values = dict[str, float | None]
Spans = Sequence[tuple[float, float]]


def prepare(signal: NDArray[Any], sample_rate: int) -> NDArray[np.float32]:
    """The signal with its active speech level set to :data:`LEVEL_DBFS`, nothing else changed.

    Level only, with the recognizer's own :func:`emovox.vad.normalize_level` (full band): no
    trimming, so times stay those of the file. Measure cues that are to be z-scored against the
    reference (:func:`z_scores`) on prepared signals, as the reference was: the intensity cues
    then say how loud a part is relative to the recording's own speech level, whatever the
    recording gain; the other cues do not depend on the gain. The result may exceed full scale
    (a float signal for analysis, not for a file); a silent signal comes back unchanged.

    Raises:
        EmovoxError: If the signal is not 1-D or the rate not positive.
    """
    from emovox.vad import normalize_level

    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1 or not sample_rate > 0:
        raise EmovoxError(f"cues need a 1-D signal and a positive rate (got shape {x.shape}, "
                          f"rate {sample_rate})")
    x = np.nan_to_num(x, posinf=1.0, neginf=-1.0)
    if x.size == 0:
        return x.astype(np.float32)
    return normalize_level(x, int(sample_rate), LEVEL_DBFS)


def measure(signal: NDArray[Any], sample_rate: int, spans: Spans | None = None) -> Values:
    """Measure every cue of :data:`CUES` on the parts of ``signal`` inside ``spans``.

    Args:
        signal: Mono audio, shape ``[samples]``, floats in ``[-1, 1]``.
        sample_rate: Samples per second of ``signal``.
        spans: ``(start, end)`` pairs in seconds (overlaps are merged, the ends clipped to the
            signal); ``None`` measures the whole signal.

    Returns:
        Cue name -> value in the unit of :data:`CUES`, or ``None`` where the spans hold too
        little to measure it (no voiced frames, a silent signal, no speech time).

    Raises:
        EmovoxError: If the signal is not 1-D, the rate not positive, a span not a pair of
            finite numbers with end >= start, or praat-parselmouth is not installed.
    """
    contours, duration = _analyse(signal, sample_rate)
    merged = _merge([(0.0, duration)] if spans is None else spans, duration)
    return _measure(contours, merged)


def measure_each(signal: NDArray[Any], sample_rate: int,
                 span_sets: Sequence[Spans | None]) -> list[Values]:
    """:func:`measure` for several sets of spans of one signal, analysed once.

    Returns:
        One dict per set, in order, as :func:`measure` returns it.
    """
    contours, duration = _analyse(signal, sample_rate)
    return [_measure(contours, _merge([(0.0, duration)] if spans is None else spans, duration))
            for spans in span_sets]


def measure_inside_outside(signal: NDArray[Any], sample_rate: int,
                           spans: Spans) -> tuple[Values, Values]:
    """Measure the cues inside ``spans`` and in the rest of the signal (one analysis).

    Args:
        signal: Mono audio, shape ``[samples]``.
        sample_rate: Samples per second of ``signal``.
        spans: ``(start, end)`` pairs in seconds.

    Returns:
        ``(inside, outside)``, each as :func:`measure` returns it.
    """
    contours, duration = _analyse(signal, sample_rate)
    inside = _merge(spans, duration)
    outside, last = [], 0.0
    for start, end in inside:
        if start > last:
            outside.append((last, start))
        last = end
    if last < duration:
        outside.append((last, duration))
    return _measure(contours, inside), _measure(contours, outside)


@dataclass(frozen=True)
class _Contours:
    """What one analysis of a whole signal gives; the cues of any spans are read from it."""

    sound: Any  # parselmouth.Sound
    points: Any  # parselmouth PointProcess (glottal closures)
    pitch_times: NDArray[np.float64]
    semitones: NDArray[np.float64]  # NaN where unvoiced
    intensity_times: NDArray[np.float64]
    intensity_db: NDArray[np.float64]
    sounding: NDArray[np.bool_]  # intensity above the silence threshold
    hnr_times: NDArray[np.float64]
    hnr_db: NDArray[np.float64]  # NaN where Praat has no value (-200 dB)
    spectra: NDArray[np.float64] | None  # power spectrum per pitch frame, [frames, bins]
    frequencies: NDArray[np.float64]
    nuclei: NDArray[np.float64]  # times of syllable nuclei
    speech: tuple[float, float] | None  # first to last sounding frame
    pauses: list[tuple[float, float]]


def _analyse(signal: NDArray[Any], sample_rate: int) -> tuple[_Contours | None, float]:
    """The contours of the whole signal (``None`` if empty, silent or too short), its seconds."""
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1 or not sample_rate > 0:
        raise EmovoxError(f"cues need a 1-D signal and a positive rate (got shape {x.shape}, "
                          f"rate {sample_rate})")
    parselmouth = require("parselmouth", "explain")
    x = np.nan_to_num(x, posinf=1.0, neginf=-1.0)
    duration = x.size / sample_rate
    if x.size == 0 or not np.any(x):
        return None, duration
    sound = parselmouth.Sound(x, sampling_frequency=float(sample_rate))
    try:
        pitch = sound.to_pitch_ac(time_step=HOP_SECONDS, pitch_floor=PITCH_FLOOR_HZ,
                                  pitch_ceiling=PITCH_CEILING_HZ)
        # one contour for every intensity cue: de Jong & Wempe's smoother one (50 Hz)
        intensity = sound.to_intensity(minimum_pitch=50.0, time_step=HOP_SECONDS)
    except parselmouth.PraatError:  # too short for one analysis window
        return None, duration
    pitch_times = np.asarray(pitch.xs(), dtype=np.float64)
    hz = np.asarray(pitch.selected_array["frequency"], dtype=np.float64)
    semitones = np.full_like(hz, np.nan)
    semitones[hz > 0] = 12.0 * np.log2(hz[hz > 0] / 100.0)
    intensity_times = np.asarray(intensity.xs(), dtype=np.float64)
    intensity_db = np.asarray(intensity.values[0], dtype=np.float64)
    if intensity_db.size == 0:
        return None, duration
    threshold = max(float(np.quantile(intensity_db, 0.99)) + SILENCE_DB, intensity_db.min())
    sounding = intensity_db > threshold
    voiced = ~np.isnan(semitones)
    try:
        points = parselmouth.praat.call([sound, pitch], "To PointProcess (cc)")
        harmonicity = sound.to_harmonicity_cc(time_step=HOP_SECONDS,
                                              minimum_pitch=PITCH_FLOOR_HZ)
        hnr_times = np.asarray(harmonicity.xs(), dtype=np.float64)
        hnr_db = np.asarray(harmonicity.values[0], dtype=np.float64)
    except parselmouth.PraatError:
        points, hnr_times, hnr_db = None, np.zeros(0), np.zeros(0)
    # Praat's -200 dB marks frames it skipped; only voiced frames count, as for F0
    hnr_voiced = (voiced[_nearest(pitch_times, hnr_times)] if voiced.any() and hnr_times.size
                  else np.zeros(hnr_db.shape, dtype=bool))
    hnr_db = np.where((hnr_db <= -199.0) | ~hnr_voiced, np.nan, hnr_db)
    spectra, frequencies = _spectra(x, sample_rate, pitch_times, voiced)
    speech = None  # no voiced frame anywhere: no speech to time
    if sounding.any() and voiced.any():
        on = np.flatnonzero(sounding)
        speech = (float(intensity_times[on[0]]), float(intensity_times[on[-1]]))
    return _Contours(
        sound=sound, points=points, pitch_times=pitch_times,
        semitones=semitones, intensity_times=intensity_times, intensity_db=intensity_db,
        sounding=sounding, hnr_times=hnr_times, hnr_db=hnr_db, spectra=spectra,
        frequencies=frequencies,
        nuclei=_nuclei(intensity_times, intensity_db, threshold, pitch_times, voiced),
        speech=speech, pauses=_pauses(intensity_times, sounding, speech),
    ), duration


def _spectra(x: NDArray[np.float64], sample_rate: int, times: NDArray[np.float64],
             voiced: NDArray[np.bool_]) -> tuple[NDArray[np.float64] | None, NDArray[np.float64]]:
    """Hann-windowed power spectra of the voiced pitch frames (rows of unvoiced ones are 0)."""
    length = int(round(SPECTRUM_SECONDS * sample_rate))
    n_fft = 1 << max(8, (length - 1).bit_length())
    frequencies = np.fft.rfftfreq(n_fft, 1.0 / sample_rate).astype(np.float64)
    if sample_rate < 10000 or not voiced.any() or x.size < length:
        return None, frequencies  # 5 kHz, the top of the spectral cues, is above Nyquist
    starts = np.clip(np.round(times * sample_rate).astype(int) - length // 2, 0, x.size - length)
    spectra = np.zeros((times.size, frequencies.size))
    frames = x[starts[voiced, None] + np.arange(length)] * np.hanning(length)
    spectra[voiced] = np.abs(np.fft.rfft(frames, n_fft)) ** 2
    return spectra, frequencies


def _nuclei(times: NDArray[np.float64], db: NDArray[np.float64], threshold: float,
            pitch_times: NDArray[np.float64], voiced: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Syllable nuclei after de Jong & Wempe (2009), as times in seconds.

    Voiced intensity peaks above the silence threshold that stand ``MIN_DIP_DB`` above the
    lowest point before the next peak (the last peak: before the end).
    """
    if db.size < 3 or pitch_times.size == 0:
        return np.zeros(0)
    peaks = np.flatnonzero((db[1:-1] > db[:-2]) & (db[1:-1] >= db[2:])) + 1
    peaks = peaks[db[peaks] > threshold]
    kept = []
    for i, peak in enumerate(peaks):
        following = peaks[i + 1] if i + 1 < len(peaks) else db.size  # the last: to the end
        if db[peak] - db[peak:following].min() > MIN_DIP_DB:
            kept.append(peak)
    if not kept:
        return np.zeros(0)
    peak_times = np.asarray(times[kept], dtype=np.float64)
    return peak_times[voiced[_nearest(pitch_times, peak_times)]]


def _nearest(grid: NDArray[np.float64], times: NDArray[np.float64]) -> NDArray[np.intp]:
    """Index of the frame of ``grid`` (sorted, non-empty) nearest to each of ``times``."""
    after = np.clip(np.searchsorted(grid, times), 0, grid.size - 1)
    before = np.clip(after - 1, 0, None)
    return np.where(np.abs(grid[before] - times) < np.abs(grid[after] - times), before, after)


def _pauses(times: NDArray[np.float64], sounding: NDArray[np.bool_],
            speech: tuple[float, float] | None) -> list[tuple[float, float]]:
    """Silent stretches of at least ``MIN_PAUSE_SECONDS`` between the first and last sound."""
    if speech is None:
        return []
    pauses, start = [], None
    for t, loud in zip(times, sounding, strict=True):
        if not loud and start is None and speech[0] < t < speech[1]:
            start = t - HOP_SECONDS / 2
        elif loud and start is not None:
            if t - HOP_SECONDS / 2 - start >= MIN_PAUSE_SECONDS:
                pauses.append((float(start), float(t - HOP_SECONDS / 2)))
            start = None
    return pauses


def _merge(spans: Spans, duration: float) -> list[tuple[float, float]]:
    """Sort, clip to ``[0, duration]`` and merge spans; empty ones are dropped."""
    pairs = []
    for span in spans:
        try:
            start, end = (float(v) for v in span)
        except (TypeError, ValueError):
            raise EmovoxError(f"span {span!r}: expected (start, end) in seconds") from None
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise EmovoxError(f"span {span!r}: expected finite (start, end) with end >= start")
        start, end = max(start, 0.0), min(end, duration)
        if end > start:
            pairs.append((start, end))
    merged: list[tuple[float, float]] = []
    for start, end in sorted(pairs):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _inside(times: NDArray[np.float64], spans: list[tuple[float, float]]) -> NDArray[np.bool_]:
    """Which ``times`` fall inside one of the (merged, sorted) spans, ends excluded."""
    if not spans or times.size == 0:
        return np.zeros(times.shape, dtype=bool)
    starts = np.array([s for s, _ in spans])
    ends = np.array([e for _, e in spans])
    i = np.searchsorted(starts, times, side="right") - 1
    return (i >= 0) & (times < ends[np.clip(i, 0, None)])


def _overlap(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    """Total seconds shared by two lists of spans."""
    return sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in a for s2, e2 in b)


def _measure(c: _Contours | None, spans: list[tuple[float, float]]) -> Values:
    values: Values = dict.fromkeys(_NAMES)
    if c is None or not spans:
        return values
    voiced = _inside(c.pitch_times, spans) & ~np.isnan(c.semitones)
    if voiced.sum() >= MIN_FRAMES:
        st, t = c.semitones[voiced], c.pitch_times[voiced]
        low, high = np.percentile(st, [5, 95])
        values["f0_mean"] = float(st.mean())
        values["f0_range"] = float(high - low)
        values["f0_slope"] = float(np.polyfit(t, st, 1)[0]) if np.ptp(t) > 0 else None
    loud = _inside(c.intensity_times, spans) & c.sounding
    if loud.sum() >= MIN_FRAMES:
        db = c.intensity_db[loud]
        low, high = np.percentile(db, [5, 95])
        values["intensity_mean"] = float(10.0 * np.log10(np.mean(10.0 ** (db / 10.0))))
        values["intensity_range"] = float(high - low)
    hnr = c.hnr_db[_inside(c.hnr_times, spans)]
    hnr = hnr[~np.isnan(hnr)]
    if hnr.size >= MIN_FRAMES:
        values["hnr"] = float(hnr.mean())
    values["jitter"], values["shimmer"] = _perturbation(c, spans)
    if c.spectra is not None and voiced.sum() >= MIN_FRAMES:
        values.update(_spectral(c.spectra[voiced].mean(axis=0), c.frequencies))
    if c.speech is not None:
        speech_time = _overlap(spans, [c.speech])
        if speech_time >= HOP_SECONDS * MIN_FRAMES:
            nuclei = int(_inside(c.nuclei, spans).sum())
            values["speech_rate"] = nuclei / speech_time
            values["pause_ratio"] = 100.0 * _overlap(spans, c.pauses) / speech_time
    return values


def _perturbation(c: _Contours, spans: list[tuple[float, float]]) -> tuple[float | None,
                                                                         float | None]:
    """Praat's local jitter and shimmer (%) over the spans, weighted by their periods."""
    if c.points is None:
        return None, None
    from parselmouth import PraatError
    from parselmouth.praat import call

    jitter = shimmer = weight = 0.0
    for start, end in spans:
        try:
            n = call(c.points, "Get number of periods", start, end, *_JITTER_ARGS)
            j = call(c.points, "Get jitter (local)", start, end, *_JITTER_ARGS)
            s = call([c.sound, c.points], "Get shimmer (local)", start, end, *_SHIMMER_ARGS)
        except PraatError:
            continue
        if n >= MIN_FRAMES and math.isfinite(j) and math.isfinite(s):
            jitter, shimmer, weight = jitter + n * j, shimmer + n * s, weight + n
    if weight == 0:
        return None, None
    return 100.0 * jitter / weight, 100.0 * shimmer / weight


def _spectral(power: NDArray[np.float64], frequencies: NDArray[np.float64]) -> Values:
    """Spectral slope, alpha ratio and Hammarberg index of an average power spectrum."""
    tiny = 1e-20  # a numerical floor: silence has no spectrum to take the log of
    band = (frequencies >= 50) & (frequencies <= 5000)
    level = 10.0 * np.log10(power + tiny)
    low = power[(frequencies >= 50) & (frequencies < 1000)].sum()
    high = power[(frequencies >= 1000) & (frequencies <= 5000)].sum()
    peak_low = level[frequencies <= 2000].max()
    peak_high = level[(frequencies > 2000) & (frequencies <= 5000)].max()
    return {
        "spectral_slope": float(np.polyfit(frequencies[band] / 1000.0, level[band], 1)[0]),
        "alpha_ratio": float(10.0 * np.log10((high + tiny) / (low + tiny))),
        "hammarberg": float(peak_low - peak_high),
    }


# --- what the literature expects, and the neutral reference ---------------------------------

_DIRECTIONS = ("+", "-", "0")


@cache
def _table() -> dict[str, dict[str, str]]:
    text = (resources.files("emovox") / "data" / "cue_expectations.toml").read_text("utf-8")
    table: dict[str, dict[str, str]] = {}
    for emotion, entries in tomllib.loads(text).items():
        if emotion == "sources":
            continue
        table[emotion] = {}
        for cue, entry in entries.items():
            if cue not in _NAMES or entry.get("direction") not in _DIRECTIONS:
                raise EmovoxError(f"cue_expectations.toml: bad entry [{emotion}] {cue}")
            table[emotion][cue] = entry["direction"]
    return table


def expectations() -> dict[str, dict[str, str]]:
    """The literature's expected direction of each cue per emotion, relative to neutral speech.

    Returns:
        Emotion -> cue -> ``"+"`` (higher than neutral), ``"-"`` (lower) or ``"0"`` (no clear
        difference); a cue the reviews say nothing reliable about is absent. Sources are in
        ``emovox/data/cue_expectations.toml``.
    """
    return {emotion: dict(cues) for emotion, cues in _table().items()}


def expected(emotion: str, cue: str) -> str | None:
    """The direction the literature expects for ``cue`` in ``emotion`` (``None``: unknown)."""
    return _table().get(emotion, {}).get(cue)


def load_reference(path: str | Path | None = None) -> dict[str, Any]:
    """Load cue statistics of neutral speech (default: the bundled ``cue_reference.json``).

    Returns:
        The JSON document: ``registers`` maps ``"all"``, ``"low"`` and ``"high"`` to
        cue -> ``{"mean", "std", "n"}`` (units of :data:`CUES`) over random regions of
        :func:`prepare`'d neutral recordings, ``regions`` says how those were drawn, beside how
        it was made.

    Raises:
        EmovoxError: If the file cannot be read or is not such a document.
    """
    try:
        if path is None:
            text = (resources.files("emovox") / "pretrained" / "cue_reference.json").read_text(
                "utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        reference = json.loads(text)
        reference["registers"]["all"]  # noqa: B018 - the one key every use needs
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EmovoxError(f"cue reference {path or 'cue_reference.json'}: unusable ({exc})"
                          ) from None
    return dict(reference)


def register_of(values: Mapping[str, float | None]) -> str:
    """Voice register of a recording from its measured cues: ``"low"``, ``"high"`` or ``"all"``.

    Pass the whole recording's cues (not a span's): the split is at
    :data:`REGISTER_BOUNDARY_HZ` of ``f0_mean``; without F0 the answer is ``"all"``.
    """
    f0 = values.get("f0_mean")
    if f0 is None:
        return "all"
    return "high" if 100.0 * 2.0 ** (f0 / 12.0) >= REGISTER_BOUNDARY_HZ else "low"


def z_scores(values: Mapping[str, float | None], reference: Mapping[str, Any],
             register: str = "all") -> dict[str, float | None]:
    """Each cue as a z-score against the reference's neutral speech of one register.

    The reference describes random regions of neutral speech of the size ``emovox explain``
    takes (see its ``regions`` record), measured on :func:`prepare`'d signals: measure
    ``values`` the same way (a prepared signal, inside such regions), and the z-score says how
    unusual they are against random regions of that size in neutral speech.

    Args:
        values: Cue name -> value, as :func:`measure` returns them.
        reference: A document from :func:`load_reference`.
        register: ``"all"``, ``"low"`` or ``"high"`` (see :func:`register_of`).

    Returns:
        Cue name -> ``(value - mean) / std`` (``None`` where the value or statistics are
        missing).
    """
    stats = reference["registers"].get(register)
    if stats is None:
        raise EmovoxError(f"cue reference has no register '{register}' "
                          f"(has: {', '.join(reference['registers'])})")
    out: dict[str, float | None] = {}
    for name, value in values.items():
        entry = stats.get(name)
        if value is None or not entry or not entry.get("std"):
            out[name] = None
        else:
            out[name] = (float(value) - entry["mean"]) / entry["std"]
    return out
