"""Waveform augmentations for training: energy-adaptive mixup (EAM) and its baselines.

Every function here is pure: it takes float waveforms (1-D, any length, any sample rate) and
label-distribution vectors (1-D, one probability per class, summing to 1), plus an explicit
:class:`numpy.random.Generator`, and returns new arrays. Nothing reads or changes global random
state, so a run is reproduced exactly by reseeding its generator.

The mixers share one shape of call and answer::

    x_mix, y_mix, info = mixer(x_i, y_i, x_j, y_j, rng, ...)

where ``x_i`` is the training utterance (its length is kept, except by length-adaptive mixup),
``x_j`` the partner, and ``info`` a small dict saying what was done (for logging and tests).
:func:`apply_batch_mixing` pairs every utterance of a batch with a random partner.

References:
    EAM: Wang et al., "Multi-Loss Learning for Speech Emotion Recognition with Energy-Adaptive
    Mixup and Frame-Level Attention", arXiv 2512.04551 (see ``METHOD.md`` section 1).
    Mixup: Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from emovox.conditions import add_at_snr
from emovox.config import EAMConfig, LengthMixConfig, MixupConfig
from emovox.errors import AudioError, ConfigError

MixMethod = Literal["eam", "mixup", "length", "none"]

__all__ = [
    "EAMConfig",
    "LengthMixConfig",
    "MIXERS",
    "MixupConfig",
    "add_noise",
    "apply_batch_mixing",
    "energy_adaptive_mixup",
    "length_adaptive_mixup",
    "mixup",
    "random_gain",
]

def _as_wave(x: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(x)
    if array.ndim != 1 or array.size == 0:
        raise AudioError(f"{name} must be a non-empty 1-D waveform, got shape {array.shape}")
    return array.astype(np.float32, copy=False)


def _as_labels(y_i: np.ndarray, y_j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_i, dtype=np.float32)
    b = np.asarray(y_j, dtype=np.float32)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"label vectors must be 1-D and of the same length, got {a.shape} and {b.shape}"
        )
    return a, b


def _mix_labels(y_i: np.ndarray, y_j: np.ndarray, lam: float) -> np.ndarray:
    # Computed in float64 so the weights sum to 1 to float32 precision.
    mixed = (1.0 - lam) * y_i.astype(np.float64) + lam * y_j.astype(np.float64)
    return mixed.astype(np.float32)


def _power(segment: np.ndarray) -> float:
    """Mean square of a segment, in float64 (squared sample units)."""
    return float(np.mean(np.square(segment, dtype=np.float64)))


def energy_adaptive_mixup(
    x_i: np.ndarray,
    y_i: np.ndarray,
    x_j: np.ndarray,
    y_j: np.ndarray,
    rng: np.random.Generator,
    config: EAMConfig | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Paste an SNR-scaled segment of a partner into an utterance (EAM, METHOD.md section 1).

    Steps (``L_i``, ``L_j`` the two lengths in samples):

    1. Draw the mix length ``l`` uniformly among the integers in
       ``[max(1, ceil(min_fraction * L_i)), min(floor(max_fraction * L_i), L_j)]`` and the
       offsets ``s_i`` in ``[0, L_i - l]``, ``s_j`` in ``[0, L_j - l]``; cut
       ``x'_i = x_i[s_i : s_i + l]`` and ``x'_j = x_j[s_j : s_j + l]``.
    2. Segment powers ``P'_i = mean(x'_i ** 2)``, ``P'_j = mean(x'_j ** 2)``.
    3. Draw the SNR ``r`` uniformly in ``[snr_db_min, snr_db_max]`` dB and
       ``scale = sqrt(P'_i / (10 ** (r / 10) * P'_j))``, so ``10 log10(P'_i / P''_j) = r``.
    4. ``x_mix = x_i`` except ``x_mix[s_i : s_i + l] = x'_i + scale * x'_j``.
    5. ``lambda = (l / L_i) / (1 + 10 ** (r / 10))`` (for ``label_rule="energy"``) and
       ``y_mix = (1 - lambda) * y_i + lambda * y_j``.

    Silence guard: if either segment's power is below ``config.eps`` nothing is added, ``x_mix``
    equals ``x_i``, ``lambda = 0`` and ``info["applied"]`` is False. A silent partner segment has
    no emotion to contribute; a silent training segment would set the partner's level to
    ``r`` dB below silence, i.e. inaudible, so in both cases the label must not move either. All
    random numbers are drawn before the guard, so the generator advances the same way whether
    or not it fires.

    The mix is computed in float64 and returned as float32. Samples outside
    ``[s_i, s_i + l)`` are bit-identical to ``x_i``.

    Args:
        x_i: Training waveform, shape ``[L_i]``, float.
        y_i: Its label distribution, shape ``[C]``.
        x_j: Partner waveform, shape ``[L_j]``, float; may be shorter or longer than ``x_i``.
        y_j: Partner label distribution, shape ``[C]``.
        rng: Random generator; the only source of randomness.
        config: EAM settings; defaults to :class:`EAMConfig()`.

    Returns:
        ``(x_mix, y_mix, info)``: the mixed waveform, shape ``[L_i]``, float32; the mixed label,
        shape ``[C]``, float32 (sums to 1 when the inputs do); and a dict with ``l`` (samples),
        ``s_i``, ``s_j`` (samples), ``snr_db`` (dB), ``lam`` (the partner's label weight) and
        ``applied`` (bool). When ``x_i`` is too short to mix (``L_i < 2``, or the fraction range
        holds no whole sample) the input is returned unchanged with ``applied=False`` and ``l=0``.

    Raises:
        AudioError: If a waveform is not a non-empty 1-D array.
        ValueError: If the label vectors differ in shape.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x_i, x_j = rng.standard_normal(16000), rng.standard_normal(8000)
        >>> y_i, y_j = np.array([1.0, 0.0]), np.array([0.0, 1.0])
        >>> x, y, info = energy_adaptive_mixup(x_i, y_i, x_j, y_j, rng)
        >>> x.shape, bool(np.isclose(y.sum(), 1.0)), info["applied"]
        ((16000,), True, True)
    """
    config = config or EAMConfig()
    a = _as_wave(x_i, "x_i")
    b = _as_wave(x_j, "x_j")
    ya, yb = _as_labels(y_i, y_j)
    length_i, length_j = a.shape[0], b.shape[0]

    l_max = min(int(np.floor(config.max_fraction * length_i)), length_j)
    l_min = min(max(1, int(np.ceil(config.min_fraction * length_i))), l_max)
    if l_max < 1:
        info = {"l": 0, "s_i": 0, "s_j": 0, "snr_db": float("nan"), "lam": 0.0, "applied": False}
        return a.copy(), ya.copy(), info

    length = int(rng.integers(l_min, l_max + 1))
    s_i = int(rng.integers(0, length_i - length + 1))
    s_j = int(rng.integers(0, length_j - length + 1))
    snr_db = float(rng.uniform(config.snr_db_min, config.snr_db_max))

    seg_i = a[s_i : s_i + length].astype(np.float64)
    seg_j = b[s_j : s_j + length].astype(np.float64)
    power_i, power_j = _power(seg_i), _power(seg_j)
    info = {"l": length, "s_i": s_i, "s_j": s_j, "snr_db": snr_db, "lam": 0.0, "applied": False}
    if power_i < config.eps or power_j < config.eps:
        return a.copy(), ya.copy(), info

    ratio = 10.0 ** (snr_db / 10.0)
    scale = np.sqrt(power_i / (ratio * power_j))
    out = a.copy()
    out[s_i : s_i + length] = (seg_i + scale * seg_j).astype(np.float32)

    if config.label_rule == "energy":
        lam = (length / length_i) / (1.0 + ratio)
    elif config.label_rule == "length":
        lam = length / length_i
    else:
        lam = 0.0
    info.update(lam=float(lam), applied=True)
    return out, _mix_labels(ya, yb, lam), info


def _fit_length(
    x: np.ndarray, length: int, rng: np.random.Generator | None
) -> tuple[np.ndarray, int]:
    """Crop (at a random offset when ``rng`` is given) or zero-pad ``x`` at the end to ``length``.

    Returns the fitted waveform and the crop offset (0 when padded).
    """
    if x.shape[0] >= length:
        offset = 0 if rng is None else int(rng.integers(0, x.shape[0] - length + 1))
        return x[offset : offset + length], offset
    return np.pad(x, (0, length - x.shape[0])), 0


def mixup(
    x_i: np.ndarray,
    y_i: np.ndarray,
    x_j: np.ndarray,
    y_j: np.ndarray,
    rng: np.random.Generator,
    alpha: float = 0.2,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Plain waveform mixup: a convex combination of two whole waveforms and their labels.

    The partner is cropped at a random offset (if longer) or zero-padded at the end (if
    shorter) to ``L_i``; ``w ~ Beta(alpha, alpha)`` is the weight of the training utterance:
    ``x = w * x_i + (1 - w) * x_j``, ``y = w * y_i + (1 - w) * y_j``.

    Args:
        x_i: Training waveform, shape ``[L_i]``, float.
        y_i: Its label distribution, shape ``[C]``.
        x_j: Partner waveform, shape ``[L_j]``, float.
        y_j: Partner label distribution, shape ``[C]``.
        rng: Random generator; the only source of randomness.
        alpha: Beta-distribution parameter (> 0).

    Returns:
        ``(x_mix, y_mix, info)``: waveform ``[L_i]`` float32, label ``[C]`` float32, and a dict
        with ``lam`` (the partner's weight ``1 - w``), ``s_j`` (crop offset in the partner,
        samples) and ``applied`` (True).

    Raises:
        AudioError: If a waveform is not a non-empty 1-D array.
        ConfigError: If ``alpha`` is not positive.
    """
    if not alpha > 0.0:
        raise ConfigError(f"mixup alpha must be > 0, got {alpha}")
    a = _as_wave(x_i, "x_i").astype(np.float64)
    b = _as_wave(x_j, "x_j").astype(np.float64)
    ya, yb = _as_labels(y_i, y_j)
    w = float(rng.beta(alpha, alpha))
    partner, offset = _fit_length(b, a.shape[0], rng)
    out = (w * a + (1.0 - w) * partner).astype(np.float32)
    lam = 1.0 - w
    return out, _mix_labels(ya, yb, lam), {"lam": lam, "s_j": offset, "applied": True}


def length_adaptive_mixup(
    x_i: np.ndarray,
    y_i: np.ndarray,
    x_j: np.ndarray,
    y_j: np.ndarray,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Length-adaptive mixup: average two whole waveforms, weight labels by their lengths.

    The shorter waveform is zero-padded to the longer one's length (at the end), then
    ``x = 0.5 * x_i + 0.5 * x_j`` and ``y = (L_i * y_i + L_j * y_j) / (L_i + L_j)``: each
    label counts in proportion to how long its speech is heard. The output takes the longer
    length, so it can be longer than ``x_i``. The function is deterministic; ``rng`` is accepted
    only so every mixer has the same call shape, and is not used.

    Args:
        x_i: Training waveform, shape ``[L_i]``, float.
        y_i: Its label distribution, shape ``[C]``.
        x_j: Partner waveform, shape ``[L_j]``, float.
        y_j: Partner label distribution, shape ``[C]``.
        rng: Unused.

    Returns:
        ``(x_mix, y_mix, info)``: waveform ``[max(L_i, L_j)]`` float32, label ``[C]`` float32,
        and a dict with ``lam = L_j / (L_i + L_j)`` (the partner's label weight) and ``applied``.

    Raises:
        AudioError: If a waveform is not a non-empty 1-D array.
    """
    del rng
    a = _as_wave(x_i, "x_i").astype(np.float64)
    b = _as_wave(x_j, "x_j").astype(np.float64)
    ya, yb = _as_labels(y_i, y_j)
    length = max(a.shape[0], b.shape[0])
    a_pad, _ = _fit_length(a, length, None)
    b_pad, _ = _fit_length(b, length, None)
    out = (0.5 * a_pad + 0.5 * b_pad).astype(np.float32)
    lam = b.shape[0] / (a.shape[0] + b.shape[0])
    return out, _mix_labels(ya, yb, lam), {"lam": lam, "applied": True}


#: Mixing methods by name, as used by :func:`apply_batch_mixing` and recipes.
MIXERS = {"eam": energy_adaptive_mixup, "mixup": mixup, "length": length_adaptive_mixup}

_DEFAULT_CONFIGS: dict[str, EAMConfig | MixupConfig | LengthMixConfig] = {
    "eam": EAMConfig(),
    "mixup": MixupConfig(),
    "length": LengthMixConfig(),
}


def apply_batch_mixing(
    waves: Sequence[np.ndarray],
    targets: np.ndarray,
    rng: np.random.Generator,
    method: MixMethod = "eam",
    config: EAMConfig | MixupConfig | LengthMixConfig | None = None,
) -> tuple[list[np.ndarray], np.ndarray, list[dict[str, Any]]]:
    """Mix each utterance of a batch, with probability ``config.p``, with a random other one.

    For each index ``i`` in order, two numbers are drawn: whether to mix (probability
    ``config.p``) and a partner ``j != i`` (uniform over the rest of the batch); both are always
    drawn, so the partner of sample ``i`` does not depend on the other samples' coins. Partners
    are taken from the *original* batch, never from an already-mixed waveform. The output is a
    deterministic function of the inputs and the generator state.

    Args:
        waves: ``B`` waveforms, each 1-D float of its own length (samples).
        targets: Label distributions, shape ``[B, C]``.
        rng: Random generator; the only source of randomness.
        method: ``"eam"``, ``"mixup"``, ``"length"`` or ``"none"`` (returns copies).
        config: The method's settings (:class:`EAMConfig`, :class:`MixupConfig` or
            :class:`LengthMixConfig`); defaults to the method's default config.

    Returns:
        ``(waves, targets, infos)``: ``B`` float32 waveforms, the mixed targets ``[B, C]``
        float32, and one info dict per sample (the mixer's info plus ``partner``, or
        ``{"applied": False}`` for unmixed samples).

    Raises:
        ConfigError: If ``method`` is unknown or ``config`` is of the wrong type for it.
        ValueError: If ``targets`` does not have one row per waveform.
    """
    target_array = np.asarray(targets, dtype=np.float32)
    if target_array.ndim != 2 or target_array.shape[0] != len(waves):
        raise ValueError(
            f"targets must have shape [B, C] with B = {len(waves)}, got {target_array.shape}"
        )
    out_waves = [np.asarray(w, dtype=np.float32).copy() for w in waves]
    out_targets = target_array.copy()
    infos: list[dict[str, Any]] = [{"applied": False} for _ in waves]
    if method == "none":
        return out_waves, out_targets, infos
    if method not in MIXERS:
        raise ConfigError(
            f"unknown mixing method {method!r}; choose one of 'eam', 'mixup', 'length', 'none'"
        )
    config = config or _DEFAULT_CONFIGS[method]
    if type(config) is not type(_DEFAULT_CONFIGS[method]):
        raise ConfigError(
            f"mixing method {method!r} needs a {type(_DEFAULT_CONFIGS[method]).__name__}, "
            f"got {type(config).__name__}"
        )
    batch = len(waves)
    if batch < 2:
        return out_waves, out_targets, infos

    for i in range(batch):
        coin = float(rng.random())
        j = int(rng.integers(0, batch - 1))
        j += int(j >= i)
        if coin >= config.p:
            continue
        if isinstance(config, EAMConfig):
            x, y, info = energy_adaptive_mixup(
                waves[i], target_array[i], waves[j], target_array[j], rng, config
            )
        elif isinstance(config, MixupConfig):
            x, y, info = mixup(
                waves[i], target_array[i], waves[j], target_array[j], rng, config.alpha
            )
        else:
            x, y, info = length_adaptive_mixup(
                waves[i], target_array[i], waves[j], target_array[j], rng
            )
        out_waves[i], out_targets[i] = x, y
        infos[i] = {**info, "partner": j}
    return out_waves, out_targets, infos


def add_noise(
    x: np.ndarray,
    rng: np.random.Generator,
    snr_db: float,
    noise: np.ndarray | None = None,
) -> np.ndarray:
    """Add noise to a waveform at a given signal-to-noise ratio.

    The noise is scaled so that ``10 log10(mean(x ** 2) / mean(noise ** 2)) = snr_db`` over the
    whole waveform. A silent ``x`` (power below 1e-12) is returned unchanged (copied).

    Args:
        x: Waveform, shape ``[L]``, float.
        rng: Random generator (draws white noise, or the crop offset of ``noise``).
        snr_db: Target SNR in dB.
        noise: Optional noise recording, shape ``[N]``; cropped at a random offset or tiled to
            ``L``. White Gaussian noise when omitted.

    Returns:
        The noisy waveform, shape ``[L]``, float32.

    Raises:
        AudioError: If ``x`` or ``noise`` is not a non-empty 1-D array.
    """
    signal = _as_wave(x, "x").astype(np.float64)
    length = signal.shape[0]
    added: np.ndarray
    if noise is None:
        added = rng.standard_normal(size=(length,))
    else:
        source = _as_wave(noise, "noise").astype(np.float64)
        if source.shape[0] < length:
            source = np.tile(source, int(np.ceil(length / source.shape[0])))
        added, _ = _fit_length(source, length, rng)
    return add_at_snr(signal, added, snr_db)


def random_gain(
    x: np.ndarray,
    rng: np.random.Generator,
    db_range: tuple[float, float] = (-6.0, 6.0),
) -> np.ndarray:
    """Multiply a waveform by a random gain drawn uniformly in dB.

    No clipping is applied: a positive gain can push samples outside ``[-1, 1]``.

    Args:
        x: Waveform, shape ``[L]``, float.
        rng: Random generator.
        db_range: ``(low, high)`` gain range in dB.

    Returns:
        The scaled waveform, shape ``[L]``, float32.

    Raises:
        AudioError: If ``x`` is not a non-empty 1-D array.
        ConfigError: If ``low > high``.
    """
    low, high = db_range
    if low > high:
        raise ConfigError(
            f"random_gain db_range must be (low, high) with low <= high, got {db_range}"
        )
    gain_db = float(rng.uniform(low, high))
    return (_as_wave(x, "x").astype(np.float64) * 10.0 ** (gain_db / 20.0)).astype(np.float32)


def speed_perturb(x: np.ndarray, factor: float) -> np.ndarray:
    """Play a waveform ``factor`` times faster: tempo and pitch both scale by ``factor``.

    The classic Kaldi-style speed perturbation (Ko et al., 2015): resample from ``rate`` to
    ``rate / factor`` and read the result at ``rate``. Formants and F0 move together, which
    imitates a different vocal tract: cheap speaker variety for a small training set.

    Args:
        x: Mono waveform.
        factor: Speed factor (0.9 = 10 % slower and lower; 1.0 returns a copy).

    Returns:
        float32 waveform of about ``len(x) / factor`` samples.

    Raises:
        ConfigError: If ``factor`` is not in (0.5, 2].
    """
    if not 0.5 < factor <= 2.0:
        raise ConfigError(f"speed factor must be in (0.5, 2], got {factor}")
    wave = np.asarray(x, dtype=np.float32)
    if factor == 1.0:
        return wave.copy()
    import soxr

    # soxr wants integer-ish rates; scale both so the ratio is exact to 1e-6.
    return np.asarray(soxr.resample(wave, 1_000_000, round(1_000_000 / factor), "HQ"),
                      dtype=np.float32)
