import numpy as np
import pytest

from emovox.augment import (
    EAMConfig,
    LengthMixConfig,
    MixupConfig,
    add_noise,
    apply_batch_mixing,
    energy_adaptive_mixup,
    length_adaptive_mixup,
    mixup,
    random_gain,
)
from emovox.errors import AudioError, ConfigError

Y_I = np.array([1.0, 0.0, 0.0], dtype=np.float32)
Y_J = np.array([0.0, 0.25, 0.75], dtype=np.float32)


def _waves(seed=0, len_i=4000, len_j=3000):
    rng = np.random.default_rng(seed)
    x_i = (0.3 * rng.standard_normal(len_i)).astype(np.float32)
    x_j = (0.05 * rng.standard_normal(len_j)).astype(np.float32)
    return x_i, x_j


@pytest.mark.parametrize("seed", range(20))
def test_eam_segment_snr_labels_and_untouched_outside(seed):
    x_i, x_j = _waves(seed, 4000, 3000 if seed % 2 else 9000)
    rng = np.random.default_rng(seed)
    x, y, info = energy_adaptive_mixup(x_i, Y_I, x_j, Y_J, rng)
    assert info["applied"] and x.dtype == np.float32 and x.shape == x_i.shape
    length, s_i, s_j, r = info["l"], info["s_i"], info["s_j"], info["snr_db"]
    assert 1 <= length <= len(x_i) // 2 and length <= len(x_j)
    assert -5.0 <= r <= 10.0
    seg = slice(s_i, s_i + length)
    added = x[seg].astype(np.float64) - x_i[seg].astype(np.float64)
    measured = 10 * np.log10(np.mean(x_i[seg].astype(np.float64) ** 2) / np.mean(added**2))
    assert abs(measured - r) < 0.01
    # the added signal is the scaled partner segment
    partner = x_j[s_j : s_j + length].astype(np.float64)
    scale = np.dot(added, partner) / np.dot(partner, partner)
    np.testing.assert_allclose(added, scale * partner, atol=1e-6)
    # outside the segment: bit-identical
    np.testing.assert_array_equal(x[:s_i], x_i[:s_i])
    np.testing.assert_array_equal(x[s_i + length :], x_i[s_i + length :])
    lam = (length / len(x_i)) / (1 + 10 ** (r / 10))
    assert info["lam"] == pytest.approx(lam)
    np.testing.assert_allclose(y, (1 - lam) * Y_I + lam * Y_J, atol=1e-7)
    assert y.sum() == pytest.approx(1.0, abs=1e-6)


def test_eam_seeded():
    x_i, x_j = _waves()
    a = energy_adaptive_mixup(x_i, Y_I, x_j, Y_J, np.random.default_rng(1))
    b = energy_adaptive_mixup(x_i, Y_I, x_j, Y_J, np.random.default_rng(1))
    c = energy_adaptive_mixup(x_i, Y_I, x_j, Y_J, np.random.default_rng(2))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]
    assert not np.array_equal(a[0], c[0])


def test_eam_does_not_modify_inputs():
    x_i, x_j = _waves()
    before_i, before_j = x_i.copy(), x_j.copy()
    energy_adaptive_mixup(x_i, Y_I, x_j, Y_J, np.random.default_rng(0))
    np.testing.assert_array_equal(x_i, before_i)
    np.testing.assert_array_equal(x_j, before_j)


def test_eam_short_partner_caps_length():
    x_i, _ = _waves(len_i=4000)
    x_j = np.ones(7, dtype=np.float32)
    for seed in range(10):
        _, _, info = energy_adaptive_mixup(x_i, Y_I, x_j, Y_J, np.random.default_rng(seed))
        assert 1 <= info["l"] <= 7 and info["s_j"] + info["l"] <= 7


def test_eam_fraction_range():
    x_i, x_j = _waves(len_i=1000, len_j=1000)
    config = EAMConfig(min_fraction=0.2, max_fraction=0.3)
    for seed in range(10):
        _, _, info = energy_adaptive_mixup(x_i, Y_I, x_j, Y_J, np.random.default_rng(seed), config)
        assert 200 <= info["l"] <= 300


@pytest.mark.parametrize("which", ["partner", "self", "both"])
def test_eam_silence_is_finite_and_label_unchanged(which):
    x_i, x_j = _waves()
    if which in ("partner", "both"):
        x_j = np.zeros_like(x_j)
    if which in ("self", "both"):
        x_i = np.zeros_like(x_i)
    x, y, info = energy_adaptive_mixup(x_i, Y_I, x_j, Y_J, np.random.default_rng(0))
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(y))
    np.testing.assert_array_equal(x, x_i)
    np.testing.assert_array_equal(y, Y_I)
    assert info["lam"] == 0.0 and not info["applied"]


def test_eam_too_short_and_bad_input():
    x, y, info = energy_adaptive_mixup(
        np.ones(1, np.float32), Y_I, np.ones(5, np.float32), Y_J, np.random.default_rng(0)
    )
    assert not info["applied"] and x.shape == (1,)
    with pytest.raises(AudioError):
        energy_adaptive_mixup(np.ones((2, 5)), Y_I, np.ones(5), Y_J, np.random.default_rng(0))
    with pytest.raises(ConfigError):
        EAMConfig(snr_db_min=5, snr_db_max=0)
    with pytest.raises(ConfigError):
        EAMConfig(label_rule="nope")


def test_eam_label_rules():
    x_i, x_j = _waves()
    _, y, info = energy_adaptive_mixup(
        x_i, Y_I, x_j, Y_J, np.random.default_rng(3), EAMConfig(label_rule="length")
    )
    assert info["lam"] == pytest.approx(info["l"] / len(x_i))
    _, y, _ = energy_adaptive_mixup(
        x_i, Y_I, x_j, Y_J, np.random.default_rng(3), EAMConfig(label_rule="hard")
    )
    np.testing.assert_array_equal(y, Y_I)


def test_mixup_label_weights_and_seed():
    x_i, x_j = _waves(len_i=1000, len_j=1500)
    x, y, info = mixup(x_i, Y_I, x_j, Y_J, np.random.default_rng(0), alpha=0.4)
    lam = info["lam"]
    assert 0 <= lam <= 1 and x.shape == x_i.shape
    partner = x_j[info["s_j"] : info["s_j"] + 1000]
    np.testing.assert_allclose(x, (1 - lam) * x_i + lam * partner, atol=1e-6)
    np.testing.assert_allclose(y, (1 - lam) * Y_I + lam * Y_J, atol=1e-6)
    x2, _, _ = mixup(x_i, Y_I, x_j, Y_J, np.random.default_rng(0), alpha=0.4)
    np.testing.assert_array_equal(x, x2)
    # shorter partner is zero-padded
    x, _, info = mixup(x_i, Y_I, x_j[:10], Y_J, np.random.default_rng(1))
    np.testing.assert_allclose(x[10:], (1 - info["lam"]) * x_i[10:], atol=1e-6)


def test_length_mixup():
    x_i, x_j = _waves(len_i=1000, len_j=3000)
    x, y, info = length_adaptive_mixup(x_i, Y_I, x_j, Y_J)
    assert x.shape == (3000,)
    assert info["lam"] == pytest.approx(0.75)
    np.testing.assert_allclose(y, 0.25 * Y_I + 0.75 * Y_J, atol=1e-7)
    np.testing.assert_allclose(x[:1000], 0.5 * x_i + 0.5 * x_j[:1000], atol=1e-7)
    np.testing.assert_allclose(x[1000:], 0.5 * x_j[1000:], atol=1e-7)


def _batch(n=6):
    rng = np.random.default_rng(42)
    waves = [(0.1 * rng.standard_normal(500 + 100 * k)).astype(np.float32) for k in range(n)]
    targets = np.eye(3, dtype=np.float32)[np.arange(n) % 3]
    return waves, targets


@pytest.mark.parametrize("method", ["eam", "mixup", "length"])
def test_batch_mixing_deterministic_and_partner(method):
    waves, targets = _batch()
    a = apply_batch_mixing(waves, targets, np.random.default_rng(5), method)
    b = apply_batch_mixing(waves, targets, np.random.default_rng(5), method)
    for wa, wb in zip(a[0], b[0], strict=True):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[1].sum(axis=1), 1.0, atol=1e-6)
    applied = [i for i, info in enumerate(a[2]) if info["applied"]]
    assert applied, "with p=0.5 and this seed some samples are mixed"
    for i in applied:
        assert a[2][i]["partner"] != i
    for i, info in enumerate(a[2]):
        if not info["applied"]:
            np.testing.assert_array_equal(a[0][i], waves[i])


@pytest.mark.parametrize(
    "method,config",
    [("eam", EAMConfig(p=0.0)), ("mixup", MixupConfig(p=0.0)), ("length", LengthMixConfig(p=0.0))],
)
def test_batch_mixing_p0_unchanged(method, config):
    waves, targets = _batch()
    out, out_targets, infos = apply_batch_mixing(
        waves, targets, np.random.default_rng(0), method, config
    )
    for w, o in zip(waves, out, strict=True):
        np.testing.assert_array_equal(w, o)
    np.testing.assert_array_equal(targets, out_targets)
    assert not any(info["applied"] for info in infos)


def test_batch_mixing_p1_all_and_errors():
    waves, targets = _batch()
    _, _, infos = apply_batch_mixing(
        waves, targets, np.random.default_rng(0), "eam", EAMConfig(p=1.0)
    )
    assert all(info["applied"] for info in infos)
    out, _, _ = apply_batch_mixing(waves, targets, np.random.default_rng(0), "none")
    assert all(np.array_equal(w, o) for w, o in zip(waves, out, strict=True))
    with pytest.raises(ConfigError):
        apply_batch_mixing(waves, targets, np.random.default_rng(0), "cutmix")
    with pytest.raises(ConfigError):
        apply_batch_mixing(waves, targets, np.random.default_rng(0), "eam", MixupConfig())
    one, one_t, _ = apply_batch_mixing(waves[:1], targets[:1], np.random.default_rng(0), "eam")
    np.testing.assert_array_equal(one[0], waves[0])


def test_add_noise_snr_and_gain():
    x, _ = _waves()
    rng = np.random.default_rng(0)
    noisy = add_noise(x, rng, snr_db=5.0)
    noise = noisy.astype(np.float64) - x
    assert 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2)) == pytest.approx(
        5.0, abs=0.01
    )
    recorded = np.sin(np.arange(100)).astype(np.float32)
    noisy = add_noise(x, rng, snr_db=0.0, noise=recorded)
    assert noisy.shape == x.shape and np.all(np.isfinite(noisy))
    silent = add_noise(np.zeros(10, np.float32), rng, 0.0)
    np.testing.assert_array_equal(silent, 0.0)
    gained = random_gain(x, np.random.default_rng(0), (6.0, 6.0))
    np.testing.assert_allclose(gained, x * 10 ** (6 / 20), rtol=1e-6)


def test_speed_perturb_scales_pitch_and_length():
    from emovox.augment import speed_perturb

    t = np.arange(16000) / 16000
    x = np.sin(2 * np.pi * 200 * t).astype(np.float32)
    for factor in (0.9, 1.1):
        y = speed_perturb(x, factor)
        assert abs(len(y) - 16000 / factor) <= 2
        spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
        assert np.argmax(spectrum) * 16000 / len(y) == pytest.approx(200 * factor, rel=0.01)
    np.testing.assert_array_equal(speed_perturb(x, 1.0), x)
    with pytest.raises(ConfigError):
        speed_perturb(x, 3.0)
