"""Mel filterbanks and the log-mel frontend, checked against independent numpy references."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from emovox.errors import AudioError, ConfigError
from emovox.features.logmel import LogMel
from emovox.features.mel import frame_counts, mel_filterbank, stft_power

SAMPLE_RATE = 16000


# --- independent numpy references (librosa's formulas, written from the definitions) ----------


def np_hz_to_mel(hz: np.ndarray, htk: bool) -> np.ndarray:
    hz = np.atleast_1d(np.asarray(hz, dtype=np.float64))
    if htk:
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    mel = hz / (200.0 / 3.0)
    high = hz >= 1000.0
    mel[high] = 15.0 + np.log(hz[high] / 1000.0) / (np.log(6.4) / 27.0)
    return mel


def np_mel_to_hz(mel: np.ndarray, htk: bool) -> np.ndarray:
    mel = np.atleast_1d(np.asarray(mel, dtype=np.float64))
    if htk:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    hz = mel * (200.0 / 3.0)
    high = mel >= 15.0
    hz[high] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel[high] - 15.0))
    return hz


def np_mel_filters(
    n_fft: int, n_mels: int, sr: int, fmin: float, fmax: float, htk: bool, area_norm: bool
) -> np.ndarray:
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    lo, hi = np_hz_to_mel(np.array([fmin, fmax]), htk)
    points = np_mel_to_hz(np.linspace(lo, hi, n_mels + 2), htk)
    fb = np.zeros((n_mels, freqs.size))
    for m in range(n_mels):
        left, centre, right = points[m : m + 3]
        rise = (freqs - left) / (centre - left)
        fall = (right - freqs) / (right - centre)
        fb[m] = np.maximum(0.0, np.minimum(rise, fall))
        if area_norm:
            fb[m] *= 2.0 / (right - left)
    return fb.T  # [n_freq, n_mels]


def np_power_frames(signal: np.ndarray, n_fft: int, hop: int, n_frames: int) -> np.ndarray:
    """|rfft|^2 of centred periodic-Hann frames; reflect on the left, zeros after the end."""
    padded = np.concatenate([signal.astype(np.float64), np.zeros(n_fft // 2)])
    padded = np.pad(padded, (n_fft // 2, n_fft // 2), mode="reflect")
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([padded[t * hop : t * hop + n_fft] * window for t in range(n_frames)])
    return np.abs(np.fft.rfft(frames, axis=-1)) ** 2  # [T, n_freq]


# --- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_fft", "n_mels", "fmin", "fmax", "scale", "norm"),
    [
        (400, 80, 0.0, 8000.0, "slaney", "slaney"),
        (512, 64, 20.0, 7600.0, "slaney", None),
        (400, 40, 50.0, 8000.0, "htk", "slaney"),
        (1024, 128, 0.0, 4000.0, "htk", None),
    ],
)
def test_mel_filterbank_matches_numpy(n_fft, n_mels, fmin, fmax, scale, norm) -> None:
    ours = mel_filterbank(n_fft, n_mels, SAMPLE_RATE, fmin, fmax, norm=norm, scale=scale)
    ref = np_mel_filters(n_fft, n_mels, SAMPLE_RATE, fmin, fmax, scale == "htk", norm is not None)
    assert ours.dtype == torch.float32
    assert tuple(ours.shape) == (n_fft // 2 + 1, n_mels)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-5, atol=1e-9)
    assert (ref.max(axis=0) > 0).all()  # no empty filter in these settings


def test_mel_filterbank_rejects_bad_options() -> None:
    with pytest.raises(ConfigError):
        mel_filterbank(400, 80, 16000, f_min=100.0, f_max=9000.0)
    with pytest.raises(ConfigError):
        mel_filterbank(400, 80, 16000, scale="bark")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        mel_filterbank(400, 80, 16000, norm="l2")  # type: ignore[arg-type]


def test_stft_power_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    signal = rng.standard_normal(4000)
    ours = stft_power(torch.from_numpy(signal)[None], n_fft=400, hop=160)[0].numpy()
    assert ours.shape == (201, 1 + 4000 // 160)
    # torch pads with reflection on both sides; compare frames whose window stays inside.
    ref = np_power_frames(signal, 400, 160, ours.shape[1])
    inner = slice(0, (4000 - 200) // 160 + 1)
    np.testing.assert_allclose(ours[:, inner].T, ref[inner], rtol=1e-8, atol=1e-8)


def test_frame_counts() -> None:
    lengths = torch.tensor([1, 159, 160, 16000])
    assert frame_counts(lengths, 160).tolist() == [1, 1, 2, 101]
    assert frame_counts(lengths, 160, drop_last=True).tolist() == [0, 0, 1, 100]


def test_logmel_matches_numpy_reference() -> None:
    rng = np.random.default_rng(1)
    signal = (0.1 * rng.standard_normal(12345)).astype(np.float32)
    frontend = LogMel(n_mels=64, f_min=20.0)
    ours = frontend(signal)
    frames = 1 + 12345 // 160
    assert ours.shape == (frames, 64)
    assert ours.dtype == np.float32
    fb = np_mel_filters(400, 64, SAMPLE_RATE, 20.0, 8000.0, htk=False, area_norm=True)
    ref = np.log(np_power_frames(signal, 400, 160, frames) @ fb + 1e-6)
    np.testing.assert_allclose(ours, ref, atol=2e-4)


def test_call_equals_batched_module() -> None:
    rng = np.random.default_rng(2)
    lengths = [16000, 7001, 250, 1]
    signals = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]
    frontend = LogMel()
    batch = torch.from_numpy(rng.standard_normal((len(lengths), max(lengths))).astype(np.float32))
    for row, signal in enumerate(signals):  # garbage after each end must not matter
        batch[row, : signal.size] = torch.from_numpy(signal)
    features, mask = frontend.torch_module()(batch, torch.tensor(lengths))
    assert features.shape == (4, 101, 64)
    assert mask.sum(dim=1).tolist() == [1 + n // 160 for n in lengths]
    for row, signal in enumerate(signals):
        alone = frontend(signal)
        np.testing.assert_allclose(features[row, : alone.shape[0]].numpy(), alone, atol=1e-5)
        assert not features[row, alone.shape[0] :].any()


def test_module_is_differentiable() -> None:
    wave = torch.randn(2, 3200, requires_grad=True)
    features, mask = LogMel(n_mels=32).torch_module()(wave, torch.tensor([3200, 1600]))
    (features * mask[:, :, None]).sum().backward()
    assert wave.grad is not None and wave.grad.abs().sum() > 0
    assert not wave.grad[1, 1600 + 200 :].any()  # padding gets no gradient


def test_attributes_config_and_pickle() -> None:
    frontend = LogMel(n_mels=40, win_ms=32, hop_ms=16, f_max=7600.0)
    assert frontend.dim == 40
    assert frontend.frame_seconds == pytest.approx(0.016)
    config = frontend.config()
    assert json.loads(json.dumps(config)) == config
    rebuilt = LogMel(**{k: v for k, v in config.items() if k != "name"})
    assert rebuilt.config() == config
    signal = np.random.default_rng(3).standard_normal(8000).astype(np.float32)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(frontend))(signal), frontend(signal))
    silence = frontend(np.zeros(1600, dtype=np.float32))
    np.testing.assert_allclose(silence, np.log(1e-6), rtol=1e-6)


@pytest.mark.parametrize(
    "bad",
    [np.zeros(0, np.float32), np.zeros((2, 100), np.float32), np.array([0.0, np.nan, 0.0])],
)
def test_bad_signals(bad: np.ndarray) -> None:
    with pytest.raises(AudioError):
        LogMel()(bad)


def test_bad_config() -> None:
    with pytest.raises(ConfigError):
        LogMel(win_ms=0.05)
    with pytest.raises(ConfigError):
        LogMel(f_min=9000.0)
