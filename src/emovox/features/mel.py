"""Pure torch functions for spectrogram frontends: mel filterbanks, STFT power, frame counts.

Every function here is stateless and batched; :mod:`emovox.features.logmel` and
:mod:`emovox.features.whisper` build their frontends from them.

Edge convention (shared by both frontends): frames are centred (``center=True``), the left edge is
reflect-padded as :func:`torch.stft` does, and the signal is treated as followed by zeros on the
right (:func:`pad_for_frames`). That is what Whisper's own ``transcribe`` sees (it appends 30 s of
zeros before its STFT), and it makes a padded batch give exactly the frames of each signal alone:
the valid frames of an utterance never read a sample past ``length + n_fft // 2``, and in a batch
those samples are zeros just as they are for the signal alone.

Example:
    >>> import torch
    >>> fb = mel_filterbank(400, 80, 16000)
    >>> tuple(fb.shape)
    (201, 80)
    >>> power = stft_power(torch.zeros(2, 16000), n_fft=400, hop=160)
    >>> tuple(power.shape)
    (2, 201, 101)
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from emovox.errors import AudioError, ConfigError

MelScale = Literal["slaney", "htk"]
MelNorm = Literal["slaney"] | None

# Slaney's Auditory Toolbox mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
_SLANEY_F_SP = 200.0 / 3.0
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_MIN_LOG_MEL = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
_SLANEY_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(hz: Tensor, scale: MelScale = "slaney") -> Tensor:
    """Convert frequencies in Hz to mels.

    Args:
        hz: Frequencies in Hz, any shape (float64 recommended).
        scale: ``"slaney"`` (linear below 1 kHz, log above; librosa's default) or ``"htk"``
            (``2595 * log10(1 + hz / 700)``).

    Returns:
        Mels, same shape and dtype as ``hz``.
    """
    if scale == "htk":
        return 2595.0 * torch.log10(1.0 + hz / 700.0)
    if scale != "slaney":
        raise ConfigError(f"unknown mel scale {scale!r}; use 'slaney' or 'htk'")
    linear = hz / _SLANEY_F_SP
    log = _SLANEY_MIN_LOG_MEL + torch.log(hz.clamp(min=_SLANEY_MIN_LOG_HZ) / _SLANEY_MIN_LOG_HZ) / (
        _SLANEY_LOGSTEP
    )
    return torch.where(hz >= _SLANEY_MIN_LOG_HZ, log, linear)


def mel_to_hz(mel: Tensor, scale: MelScale = "slaney") -> Tensor:
    """Convert mels to frequencies in Hz (the inverse of :func:`hz_to_mel`).

    Args:
        mel: Mels, any shape.
        scale: ``"slaney"`` or ``"htk"``.

    Returns:
        Frequencies in Hz, same shape and dtype as ``mel``.
    """
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    if scale != "slaney":
        raise ConfigError(f"unknown mel scale {scale!r}; use 'slaney' or 'htk'")
    linear = _SLANEY_F_SP * mel
    log = _SLANEY_MIN_LOG_HZ * torch.exp(_SLANEY_LOGSTEP * (mel - _SLANEY_MIN_LOG_MEL))
    return torch.where(mel >= _SLANEY_MIN_LOG_MEL, log, linear)


def mel_filterbank(
    n_fft: int,
    n_mels: int,
    sample_rate: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    norm: MelNorm = "slaney",
    scale: MelScale = "slaney",
) -> Tensor:
    """Triangular mel filters over the bins of a one-sided FFT.

    The filter edges are ``n_mels + 2`` points equally spaced in mels between ``f_min`` and
    ``f_max``; filter ``m`` rises from edge ``m`` to edge ``m + 1`` and falls to edge ``m + 2``.
    With ``norm="slaney"`` each filter is scaled by ``2 / (f[m + 2] - f[m])`` (equal area), which
    with the defaults reproduces librosa's ``filters.mel`` and hence Whisper's filters.
    Computed in float64, returned as float32.

    Args:
        n_fft: FFT size; the filters cover ``n_fft // 2 + 1`` bins from 0 to ``sample_rate / 2``.
        n_mels: Number of filters.
        sample_rate: Sample rate in Hz.
        f_min: Lowest filter edge in Hz.
        f_max: Highest filter edge in Hz; ``None`` means ``sample_rate / 2``.
        norm: ``"slaney"`` (area normalisation) or ``None`` (peak 1).
        scale: Mel scale, ``"slaney"`` or ``"htk"``.

    Returns:
        Filter matrix ``[n_fft // 2 + 1, n_mels]`` (float32); ``power @ fb`` gives mel power.

    Raises:
        ConfigError: For a bad frequency range, norm or scale.
    """
    f_max = sample_rate / 2.0 if f_max is None else float(f_max)
    if not 0.0 <= f_min < f_max <= sample_rate / 2.0:
        raise ConfigError(
            f"mel range needs 0 <= f_min < f_max <= sample_rate / 2, got f_min={f_min}, "
            f"f_max={f_max}, sample_rate={sample_rate}"
        )
    if norm not in ("slaney", None):
        raise ConfigError(f"unknown mel norm {norm!r}; use 'slaney' or None")
    if n_mels < 1 or n_fft < 2:
        raise ConfigError(f"need n_mels >= 1 and n_fft >= 2, got n_mels={n_mels}, n_fft={n_fft}")
    bin_hz = torch.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1, dtype=torch.float64)
    lo, hi = hz_to_mel(torch.tensor([f_min, f_max], dtype=torch.float64), scale)
    edges_mel = torch.linspace(float(lo), float(hi), n_mels + 2, dtype=torch.float64)
    edges_hz = mel_to_hz(edges_mel, scale)
    widths = edges_hz[1:] - edges_hz[:-1]  # [n_mels + 1]
    offsets = edges_hz[:, None] - bin_hz[None, :]  # [n_mels + 2, n_freq]
    rising = -offsets[:-2] / widths[:-1, None]
    falling = offsets[2:] / widths[1:, None]
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)  # [n_mels, n_freq]
    if norm == "slaney":
        weights = weights * (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights.T.contiguous().to(torch.float32)


def hann_window(
    win: int,
    n_fft: int,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """A periodic Hann window of ``win`` samples, zero-padded on both sides to ``n_fft``.

    Args:
        win: Window length in samples (``<= n_fft``).
        n_fft: FFT size.
        device: Device of the result.
        dtype: Floating dtype of the result.

    Returns:
        Window ``[n_fft]``, centred as :func:`torch.stft` centres a shorter window.
    """
    if not 0 < win <= n_fft:
        raise ConfigError(f"window length must be in [1, n_fft={n_fft}], got {win}")
    window = torch.hann_window(win, periodic=True, dtype=dtype, device=device)
    left = (n_fft - win) // 2
    return torch.nn.functional.pad(window, (left, n_fft - win - left))


def stft_power(wave: Tensor, n_fft: int, hop: int, win: int | None = None) -> Tensor:
    """Power spectrogram ``|STFT|^2`` of a batch of waveforms.

    Uses :func:`torch.stft` with a periodic Hann window of ``win`` samples, ``center=True`` and
    reflect padding, so it gives ``1 + N // hop`` frames, frame ``t`` centred on sample
    ``t * hop``. Pass the output of :func:`pad_for_frames` to get the zero-right-edge convention
    of this module.

    Args:
        wave: Waveforms ``[B, N]`` (float; ``N > n_fft // 2`` for the reflect padding).
        n_fft: FFT size in samples.
        hop: Hop in samples.
        win: Window length in samples; ``None`` means ``n_fft``.

    Returns:
        Power ``[B, n_fft // 2 + 1, 1 + N // hop]`` in the dtype of ``wave`` (float32 for ints).
    """
    if wave.dim() != 2:
        raise ValueError(f"stft_power expects wave [batch, samples], got shape {tuple(wave.shape)}")
    if not wave.is_floating_point():
        wave = wave.float()
    window = hann_window(n_fft if win is None else win, n_fft, wave.device, wave.dtype)
    spec = torch.stft(
        wave,
        n_fft=n_fft,
        hop_length=hop,
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    return spec.real.square() + spec.imag.square()


def zero_after(wave: Tensor, lengths: Tensor) -> Tensor:
    """Set every sample at or after each utterance's length to zero.

    Args:
        wave: Padded waveforms ``[B, N]``.
        lengths: Valid samples per row ``[B]`` (integer).

    Returns:
        A tensor like ``wave`` with the padding zeroed (the input is not modified).
    """
    positions = torch.arange(wave.shape[1], device=wave.device)
    return wave * (positions[None, :] < lengths.to(wave.device)[:, None]).to(wave.dtype)


def pad_for_frames(wave: Tensor, lengths: Tensor, n_fft: int) -> Tensor:
    """Zero the padding of a batch and append ``n_fft // 2`` zeros (this module's edge convention).

    After this, :func:`stft_power` gives every row the same valid frames it would give the row's
    signal alone, whatever the batch's padding held.

    Args:
        wave: Padded waveforms ``[B, N]``.
        lengths: Valid samples per row ``[B]``.
        n_fft: FFT size the frames will use.

    Returns:
        Waveforms ``[B, N + n_fft // 2]``.
    """
    return torch.nn.functional.pad(zero_after(wave, lengths), (0, n_fft // 2))


def frame_counts(lengths: Tensor, hop: int, drop_last: bool = False) -> Tensor:
    """Number of centred STFT frames for each signal length.

    Args:
        lengths: Valid samples per utterance ``[B]`` (integer tensor).
        hop: Hop in samples.
        drop_last: If true, drop the last centred frame as Whisper does (``N // hop`` frames
            instead of ``1 + N // hop``).

    Returns:
        Frame counts ``[B]`` (int64).
    """
    counts = torch.div(lengths.long(), hop, rounding_mode="floor")
    return counts if drop_last else counts + 1


def lengths_to_mask(counts: Tensor, max_len: int | None = None) -> Tensor:
    """Boolean mask ``[B, max_len]`` that is True for the first ``counts[b]`` positions of row b.

    Args:
        counts: Valid positions per row ``[B]`` (integer).
        max_len: Width of the mask; ``None`` means ``counts.max()``.

    Returns:
        Boolean mask, True = valid.
    """
    width = int(counts.max()) if max_len is None else max_len
    return torch.arange(width, device=counts.device)[None, :] < counts[:, None]


def check_signal(signal: np.ndarray) -> np.ndarray:
    """Check a mono signal for a frontend and return it as contiguous float32.

    Args:
        signal: Mono waveform ``[samples]``.

    Returns:
        The signal as a C-contiguous float32 array (no copy when it already is one).

    Raises:
        AudioError: If the signal is not 1-D, is empty or holds NaN/inf.
    """
    wave = np.ascontiguousarray(signal, dtype=np.float32)
    if wave.ndim != 1:
        raise AudioError(f"expected a mono signal [samples], got shape {wave.shape}")
    if wave.shape[0] == 0:
        raise AudioError("empty signal")
    if not np.isfinite(wave).all():
        raise AudioError("signal holds NaN or infinite samples")
    return wave
