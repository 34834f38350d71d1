"""openSMILE frontend on synthetic voiced signals (skipped when opensmile is not installed)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("opensmile")

from emovox.errors import AudioError, ConfigError  # noqa: E402
from emovox.features.opensmile import OpenSmile  # noqa: E402

SAMPLE_RATE = 16000


def voiced(f0_hz: float, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A vowel-like test signal: 8 harmonics of f0 with 5 Hz vibrato, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = f0_hz * (1.0 + 0.02 * np.sin(2 * np.pi * 5.0 * t))  # +-2 % vibrato
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    wave = sum(np.sin(k * phase) / k for k in range(1, 9))
    wave = 0.3 * wave / np.max(np.abs(wave)) + 0.005 * rng.standard_normal(t.size)
    return wave.astype(np.float32)


@pytest.fixture(scope="module")
def egemaps() -> OpenSmile:
    return OpenSmile("eGeMAPSv02", "functionals")


@pytest.mark.parametrize(
    ("feature_set", "level", "dim"),
    [
        ("eGeMAPSv02", "functionals", 88),
        ("eGeMAPSv02", "lld", 25),
        ("ComParE_2016", "functionals", 6373),
        ("ComParE_2016", "lld", 65),
    ],
)
def test_dims(feature_set: str, level: str, dim: int) -> None:
    frontend = OpenSmile(feature_set, level)
    out = frontend(voiced(150.0))
    assert frontend.dim == dim
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    if level == "functionals":
        assert out.shape == (1, dim)
        assert frontend.frame_seconds == 0.0
    else:
        # 10 ms hop: about 100 frames for one second (openSMILE drops the incomplete tail).
        assert out.shape[1] == dim
        assert 90 <= out.shape[0] <= 101
        assert frontend.frame_seconds == 0.01


def test_f0_follows_pitch(egemaps: OpenSmile) -> None:
    column = egemaps.feature_names.index("F0semitoneFrom27.5Hz_sma3nz_amean")
    low = egemaps(voiced(100.0))[0, column]
    high = egemaps(voiced(200.0))[0, column]
    # One octave is 12 semitones; allow for openSMILE's smoothing and voicing decisions.
    assert 9.0 < high - low < 15.0


def test_deterministic_and_reused_extractor(egemaps: OpenSmile) -> None:
    signal = voiced(150.0, seed=3)
    first = egemaps(signal)
    smile = egemaps._smile
    np.testing.assert_array_equal(first, egemaps(signal))
    assert egemaps._smile is smile


def test_config_and_pickle(egemaps: OpenSmile) -> None:
    config = egemaps.config()
    assert config["feature_set"] == "eGeMAPSv02" and config["level"] == "functionals"
    assert config != OpenSmile("eGeMAPSv02", "lld").config()
    rebuilt = OpenSmile(**{k: v for k, v in config.items() if k != "name"})
    assert rebuilt.config() == config
    clone = pickle.loads(pickle.dumps(egemaps))
    np.testing.assert_array_equal(clone(voiced(120.0)), egemaps(voiced(120.0)))


def test_bad_input() -> None:
    with pytest.raises(ConfigError, match="unknown openSMILE"):
        OpenSmile("GeMAPS", "functionals")
    with pytest.raises(AudioError):
        OpenSmile()(np.zeros(0, dtype=np.float32))
    with pytest.raises(AudioError):
        OpenSmile()(np.zeros((2, 100), dtype=np.float32))
