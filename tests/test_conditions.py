import zlib

import numpy as np
import pytest
from scipy import signal as sps

import conftest
from emovox.augment import add_noise
from emovox.conditions import (
    CODECS,
    CONDITIONS,
    Condition,
    add_at_snr,
    available_codecs,
    babble_noise,
    clip,
    codec,
    condition_rng,
    conditions_named,
    gain,
    pink_noise,
    reverberate,
    room_impulse_response,
    telephone,
    white_noise,
)
from emovox.errors import AudioError, ConfigError

SR = 16000


def _voice(f0: float, seconds: float = 1.0, seed: int = 0, sr: int = SR) -> np.ndarray:
    """The tone corpus's vowel-like voice (conftest), seeded."""
    return conftest._voice(f0, seconds, np.random.default_rng(seed), sr)


def _tone(freq: float, n: int = SR, sr: int = SR, amp: float = 0.3) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / sr)).astype(np.float32)


def _snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    c = clean.astype(np.float64)
    n = noisy.astype(np.float64) - c
    return float(10 * np.log10(np.mean(c**2) / np.mean(n**2)))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(np.float64), b.astype(np.float64))[0, 1])


BABBLE = [_voice(f0, 0.7, seed) for seed, f0 in enumerate((110, 140, 180, 220, 260))]


# --------------------------------------------------------------------------- noise


@pytest.mark.parametrize("noise", ["white", "pink", "babble"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noise_conditions_hit_their_snr(noise, seed):
    clean = _voice(150, seed=seed)
    condition = CONDITIONS[f"{noise}_10db"]
    noisy = condition.apply(clean, SR, np.random.default_rng(seed), babble=BABBLE)
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    assert abs(_snr_db(clean, noisy) - 10.0) < 0.1


@pytest.mark.parametrize("snr", [20, 5, 0])
def test_every_snr_grade_is_met(snr):
    clean = _voice(200)
    noisy = CONDITIONS[f"pink_{snr}db"].apply(clean, SR, np.random.default_rng(3))
    assert abs(_snr_db(clean, noisy) - snr) < 0.1


@pytest.mark.parametrize("snr", [20.0, 3.5, -5.0])
def test_add_at_snr_matches_the_training_add_noise(snr):
    clean = _voice(140)
    noise = pink_noise(clean.size, np.random.default_rng(1))
    ours = add_at_snr(clean, noise, snr)
    theirs = add_noise(clean, np.random.default_rng(0), snr, noise=noise)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    assert abs(_snr_db(clean, ours) - snr) < 0.01
    silent = np.zeros(100, np.float32)
    np.testing.assert_array_equal(add_at_snr(silent, noise[:100], 0.0), silent)
    with pytest.raises(AudioError):
        add_at_snr(clean, noise[:-1], 10.0)
    with pytest.raises(ConfigError):
        add_at_snr(clean, noise, float("nan"))


@pytest.mark.parametrize("make", [white_noise, pink_noise])
def test_noise_generators_have_unit_rms_and_no_dc(make):
    x = make(20000, np.random.default_rng(0))
    assert x.dtype == np.float32 and x.shape == (20000,)
    assert abs(_rms(x) - 1.0) < 1e-5
    assert abs(float(np.mean(x))) < 0.05
    assert make(1, np.random.default_rng(0)).shape == (1,)


def _band_slope(x: np.ndarray, lo: float = 100.0, hi: float = 4000.0) -> float:
    """Slope of the power spectrum in dB per decade, fitted over log-spaced bands."""
    f, p = sps.welch(x, SR, nperseg=4096)
    edges = np.logspace(np.log10(lo), np.log10(hi), 13)
    centres, levels = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        band = (f >= a) & (f < b)
        centres.append(np.sqrt(a * b))
        levels.append(10 * np.log10(p[band].mean()))
    return float(np.polyfit(np.log10(centres), levels, 1)[0])


def test_pink_noise_falls_10_db_per_decade_and_white_is_flat():
    pink = _band_slope(pink_noise(2**17, np.random.default_rng(0)))
    white = _band_slope(white_noise(2**17, np.random.default_rng(0)))
    assert -12.0 < pink < -8.0  # 1/f: -10 dB/decade, -3 dB/octave
    assert abs(white) < 1.0


def test_babble_is_built_from_the_given_speech():
    # Talkers that are pure tones: all of the babble's energy must sit at their frequencies.
    freqs = (300.0, 500.0, 700.0)
    speech = [_tone(f, 4000) for f in freqs]
    babble = babble_noise(SR, speech, np.random.default_rng(0), talkers=6)
    assert babble.dtype == np.float32 and babble.shape == (SR,)
    assert abs(_rms(babble) - 1.0) < 1e-5
    spectrum = np.abs(np.fft.rfft(babble.astype(np.float64))) ** 2
    bins = np.fft.rfftfreq(SR, 1 / SR)
    near = np.zeros_like(bins, dtype=bool)
    for f in freqs:
        near |= np.abs(bins - f) <= 5
    assert spectrum[near].sum() / spectrum.sum() > 0.99


def test_single_talker_babble_is_a_shifted_copy_of_the_talker():
    talker = _voice(130, 0.5)
    babble = babble_noise(SR, [talker], np.random.default_rng(1), talkers=1)  # tiled: 0.5 s -> 1 s
    period = talker.size
    np.testing.assert_allclose(babble[:period], babble[period:], rtol=1e-5, atol=1e-6)
    unit = talker.astype(np.float64) / _rms(talker)
    # Circular cross-correlation over every shift at once (FFT): 1 at the drawn offset.
    xcorr = np.fft.irfft(np.fft.rfft(babble[:period]) * np.conj(np.fft.rfft(unit)), n=period)
    assert np.max(xcorr) / period > 0.999


def test_babble_needs_usable_speech():
    rng = np.random.default_rng(0)
    with pytest.raises(AudioError, match="silent"):
        babble_noise(100, [np.zeros(50, np.float32), np.zeros(80, np.float32)], rng)
    with pytest.raises(AudioError):
        babble_noise(100, [], rng)
    with pytest.raises(AudioError):
        babble_noise(100, [np.array([0.1, np.nan], np.float32)], rng)
    with pytest.raises(ConfigError):
        babble_noise(100, BABBLE, rng, talkers=0)
    with pytest.raises(ConfigError, match="babble"):
        CONDITIONS["babble_5db"].apply(_voice(150), SR, rng)
    # Silent talkers are skipped when others are usable.
    mixed = babble_noise(100, [np.zeros(50, np.float32), _tone(400, 64)], rng)
    assert abs(_rms(mixed) - 1.0) < 1e-5


# --------------------------------------------------------------------------- reverberation


def _schroeder_t60(rir: np.ndarray, sr: int) -> float:
    """T60 from the Schroeder backward integral, fitted between -5 and -35 dB (T30 x 2)."""
    edc = np.cumsum(rir[::-1] ** 2)[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    fit = np.where((edc_db <= -5) & (edc_db >= -35))[0]
    slope = np.polyfit(fit / sr, edc_db[fit], 1)[0]
    return float(-60.0 / slope)


@pytest.mark.parametrize("rt60", [0.3, 0.6, 0.9])
@pytest.mark.parametrize("seed", [0, 1])
def test_room_impulse_response_decays_at_its_rt60(rt60, seed):
    rir = room_impulse_response(SR, rt60, np.random.default_rng(seed))
    assert rir[0] == 1.0  # direct path, not delayed
    assert rir.size >= rt60 * SR
    measured = _schroeder_t60(rir, SR)
    assert abs(measured - rt60) / rt60 < 0.2, measured


def test_room_impulse_response_direct_to_reverberant_ratio():
    for drr in (-5.0, 0.0, 10.0):
        for sr in (8000, 16000, 48000):
            rir = room_impulse_response(sr, 0.5, np.random.default_rng(0), drr_db=drr)
            start = int(0.003 * sr)  # the reverberation starts after a pre-delay of >= 3 ms
            assert rir[0] == 1.0 and np.all(rir[1:start] == 0.0)
            reverberant = float(np.sum(rir[1:] ** 2))
            assert abs(10 * np.log10(1.0 / reverberant) - drr) < 1e-6


@pytest.mark.parametrize("rt60", [0.3, 0.6, 0.9])
def test_reverberate_keeps_length_and_rms_and_smears(rt60):
    clean = _voice(180, 0.8)
    wet = reverberate(clean, SR, rt60, np.random.default_rng(0))
    assert wet.dtype == np.float32 and wet.shape == clean.shape
    assert abs(_rms(wet) / _rms(clean) - 1.0) < 1e-5
    assert _corr(wet, clean) < 0.98


def test_reverberate_is_convolution_with_the_rir_cut_to_length():
    n = 4000
    impulse = np.zeros(n, np.float32)
    impulse[0] = 1.0
    wet = reverberate(impulse, SR, 0.3, np.random.default_rng(5))
    rir = room_impulse_response(SR, 0.3, np.random.default_rng(5))[:n]
    expected = rir / _rms(rir) * _rms(impulse)
    np.testing.assert_allclose(wet, expected, rtol=1e-4, atol=1e-7)


def test_reverberate_rejects_bad_rt60():
    for bad in (0.0, -0.5, float("nan"), 20.0):
        with pytest.raises(ConfigError):
            reverberate(_voice(150), SR, bad, np.random.default_rng(0))


# --------------------------------------------------------------------------- telephone


def test_telephone_rejects_energy_above_4_khz():
    x = (0.1 * np.random.default_rng(0).standard_normal(2 * SR)).astype(np.float32)
    y = telephone(x, SR)
    assert y.dtype == np.float32 and y.shape == x.shape
    f, p = sps.welch(y, SR, nperseg=1024)
    band = p[(f >= 300) & (f <= 3400)].sum()
    above = p[f > 4000].sum()
    assert 10 * np.log10(band / above) >= 30.0
    # The input was flat: the band-pass must also have removed most energy below 300 Hz.
    f_in, p_in = sps.welch(x, SR, nperseg=1024)
    low = (f > 20) & (f < 150)
    assert p[low].sum() < 0.05 * p_in[low].sum()


@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100])
def test_telephone_keeps_a_1_khz_tone_and_the_length(sr):
    n = sr + 3  # an awkward length, to exercise the pad/trim after resampling
    tone = _tone(1000.0, n, sr)
    out = telephone(tone, sr)
    assert out.dtype == np.float32 and out.shape == (n,)
    assert _corr(out, tone) > 0.9


def test_telephone_quantises_to_mu_law_levels():
    # Made at 8 kHz, the signal's samples before upsampling are G.711 levels: at most 255 values.
    x = _voice(150, sr=8000)
    y = telephone(x, 8000)
    assert np.unique(y).size <= 255
    assert _snr_db(y, x) < 60.0  # and the channel really changed it


def test_telephone_rejects_a_too_short_signal():
    with pytest.raises(AudioError):
        telephone(np.zeros(10, np.float32), SR)


# --------------------------------------------------------------------------- codecs


def test_available_codecs_is_a_list_of_known_codecs():
    found = available_codecs()
    assert isinstance(found, list)
    assert set(found) <= set(CODECS)
    assert found == [c for c in CODECS if c in found]  # registry order


@pytest.mark.parametrize("fmt", list(CODECS))
@pytest.mark.parametrize("sr", [16000, 22050])
def test_codec_round_trip_or_config_error(fmt, sr):
    n = sr + 7
    tone = _tone(440.0, n, sr)
    if fmt not in available_codecs():
        with pytest.raises(ConfigError, match=fmt):
            codec(tone, sr, fmt)
        return
    out = codec(tone, sr, fmt)
    assert out.dtype == np.float32 and out.shape == (n,)
    assert _corr(out, tone) > 0.9
    # Lossy: a rich signal does not come back bit-exact.
    voice = _voice(150, sr=sr)
    assert np.max(np.abs(codec(voice, sr, fmt) - voice)) > 1e-4


def test_codec_rejects_unknown_format_and_bad_level():
    tone = _tone(440.0)
    with pytest.raises(ConfigError, match="wav"):
        codec(tone, SR, "wav")
    with pytest.raises(ConfigError):
        codec(tone, SR, "mp3", compression_level=1.5)


# --------------------------------------------------------------------------- gain and clip


def test_gain_scales_exactly_without_clipping():
    x = _voice(150)
    np.testing.assert_allclose(gain(x, 20.0), x.astype(np.float64) * 10.0, rtol=1e-6)
    np.testing.assert_allclose(gain(x, -20.0), x.astype(np.float64) / 10.0, rtol=1e-6)
    np.testing.assert_array_equal(gain(x, 0.0), x)
    loud = gain(x, 20.0)
    assert loud.dtype == np.float32 and np.max(np.abs(loud)) > 1.0  # not clipped
    with pytest.raises(ConfigError):
        gain(x, float("inf"))


@pytest.mark.parametrize("level", [0.5, 0.25, 0.1])
def test_clip_at_a_fraction_of_the_peak(level):
    x = _voice(150)
    peak = float(np.max(np.abs(x)))
    y = clip(x, level)
    t = np.float32(level * peak)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.isclose(np.max(np.abs(y)), t, rtol=1e-6)
    inside = np.abs(x) <= t
    np.testing.assert_array_equal(y[inside], x[inside])
    np.testing.assert_allclose(y[~inside], np.sign(x[~inside]) * t, rtol=1e-6)
    assert 0 < np.count_nonzero(~inside) < x.size


def test_clip_edge_cases():
    x = _voice(150)
    np.testing.assert_array_equal(clip(x, 1.0), x)
    np.testing.assert_array_equal(clip(np.zeros(10, np.float32), 0.1), np.zeros(10))
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ConfigError):
            clip(x, bad)


# --------------------------------------------------------------------------- determinism


RANDOM_CONDITIONS = ["white_10db", "pink_0db", "babble_5db", "reverb_0.6s"]


@pytest.mark.parametrize("name", RANDOM_CONDITIONS)
def test_same_seed_same_output_different_seed_different_output(name):
    x = _voice(160)
    condition = CONDITIONS[name]
    a = condition.apply(x, SR, np.random.default_rng(7), babble=BABBLE)
    b = condition.apply(x, SR, np.random.default_rng(7), babble=BABBLE)
    c = condition.apply(x, SR, np.random.default_rng(8), babble=BABBLE)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_condition_rng_does_not_depend_on_call_order():
    first = condition_rng(3, "spk1/utt1.wav", "babble_10db").random(4)
    for utt in ("a", "b", "spk1/utt1.wav"):
        for name in ("reverb_0.3s", "babble_10db"):
            condition_rng(3, utt, name).random(100)
    again = condition_rng(3, "spk1/utt1.wav", "babble_10db").random(4)
    np.testing.assert_array_equal(first, again)
    expected = np.random.default_rng(
        [3, zlib.crc32(b"spk1/utt1.wav"), zlib.crc32(b"babble_10db")]
    ).random(4)
    np.testing.assert_array_equal(first, expected)
    others = [
        condition_rng(4, "spk1/utt1.wav", "babble_10db").random(4),
        condition_rng(3, "spk1/utt2.wav", "babble_10db").random(4),
        condition_rng(3, "spk1/utt1.wav", "babble_5db").random(4),
    ]
    assert all(not np.array_equal(first, o) for o in others)
    with pytest.raises(ConfigError):
        condition_rng(-1, "u", "c")


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((100, 2), np.float32),
        np.zeros(0, np.float32),
        np.array([0.0, np.inf], np.float32),
        np.array([0.0, np.nan]),
        np.zeros(100, np.int16),
    ],
)
def test_bad_signals_raise_audio_error(bad):
    rng = np.random.default_rng(0)
    for call in (
        lambda: gain(bad, 1.0),
        lambda: clip(bad, 0.5),
        lambda: reverberate(bad, SR, 0.3, rng),
        lambda: telephone(bad, SR),
        lambda: CONDITIONS["white_10db"].apply(bad, SR, rng),
    ):
        with pytest.raises(AudioError) as info:
            call()
        assert "\n" not in str(info.value)


def test_bad_sample_rate_raises_audio_error():
    with pytest.raises(AudioError):
        telephone(_voice(150), 0)
    with pytest.raises(AudioError):
        reverberate(_voice(150), 16000.0, 0.3, np.random.default_rng(0))


# --------------------------------------------------------------------------- registry


def test_every_condition_applies_to_a_one_second_signal():
    x = _voice(170)
    working = available_codecs()
    applied = 0
    for name, condition in CONDITIONS.items():
        assert condition.name == name
        if condition.kind == "codec" and condition.params["format"] not in working:
            with pytest.raises(ConfigError):
                condition.apply(x, SR, np.random.default_rng(0))
            continue
        y = condition.apply(x, SR, condition_rng(0, "utt", name), babble=BABBLE)
        assert y.dtype == np.float32 and y.shape == x.shape, name
        assert np.isfinite(y).all(), name
        if condition.kind != "gain":
            assert not np.array_equal(y, x), name  # it did something
        applied += 1
    assert applied >= len(CONDITIONS) - len(CODECS)


def test_registry_holds_the_graded_set():
    def strengths(family):
        return [c.strength for c in conditions_named(family)]

    assert strengths("white") == strengths("pink") == strengths("babble") == [20, 10, 5, 0]
    assert strengths("reverb") == [0.3, 0.6, 0.9]
    assert strengths("gain") == [-20, -10, 10, 20]
    assert strengths("clip") == [0.5, 0.25, 0.1]
    assert [c.name for c in conditions_named("codec")] == [f"{f}_low" for f in CODECS]
    assert "telephone" in CONDITIONS and "gain_-20db" in CONDITIONS


def test_conditions_named_selects_by_name_family_kind_and_all():
    babble = conditions_named("babble")
    assert [c.name for c in babble] == ["babble_20db", "babble_10db", "babble_5db", "babble_0db"]
    assert len(conditions_named("noise")) == 12
    assert conditions_named("all") == list(CONDITIONS.values())
    picked = conditions_named(["reverb_0.6s", "telephone", "reverb", "telephone"])
    assert [c.name for c in picked] == ["reverb_0.6s", "telephone", "reverb_0.3s", "reverb_0.9s"]
    assert [c.name for c in conditions_named("clip_0.1, gain_+20db")] == ["clip_0.1", "gain_+20db"]


def test_unknown_condition_names_the_known_ones():
    with pytest.raises(ConfigError) as info:
        conditions_named(["babble", "thunder_3db"])
    message = str(info.value)
    assert "thunder_3db" in message and "babble_10db" in message and "reverb_0.6s" in message
    assert "\n" not in message


def test_condition_rejects_bad_strengths():
    with pytest.raises(ConfigError):
        Condition("clip_2", "clip", 2.0)
    with pytest.raises(ConfigError):
        Condition("reverb_0s", "reverb", 0.0)
    with pytest.raises(ConfigError):
        Condition("hum_10db", "noise", 10.0, {"noise": "hum"})
    with pytest.raises(ConfigError):
        Condition("gain", "gain", None)
    with pytest.raises(ConfigError):
        Condition("wind", "weather", 1.0)
    custom = Condition("babble_3db", "noise", 3.0, {"noise": "babble", "talkers": 2})
    clean = _voice(150)
    noisy = custom.apply(clean, SR, np.random.default_rng(0), babble=BABBLE)
    assert abs(_snr_db(clean, noisy) - 3.0) < 0.1
