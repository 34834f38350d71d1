"""What makes a model hold up off its training corpora: conditioning, multi-condition copies,
calibration on training speakers."""

import numpy as np
import pytest
import soundfile as sf

from conftest import _voice
from emovox.conditions import TRAINING_RANGES, random_condition, telephone, training_copy
from emovox.config import load_recipe
from emovox.errors import ConfigError
from emovox.features import Conditioned, build_frontend, config_key
from emovox.vad import SPEECH_BAND, active_level, frame_gate, normalize_level, trim_silence

SR = 16000
LOGMEL = 'frontend={name = "logmel", n_mels = 32}'


def speech(seconds=0.8, f0=180.0, seed=0):
    return _voice(f0, seconds, np.random.default_rng(seed))


def pad(x, before=0.5, after=0.7):
    return np.concatenate([np.zeros(int(before * SR), np.float32), x,
                           np.zeros(int(after * SR), np.float32)])


# --- level and extent ---------------------------------------------------------------------------

def test_active_level_ignores_surrounding_silence_and_normalize_level_hits_the_target():
    x = speech()
    assert abs(active_level(pad(x, 2.0, 2.0), SR) - active_level(x, SR)) < 0.01
    for gain in (0.01, 0.3, 3.0):
        assert active_level(normalize_level(gain * x, SR, -26.0), SR) == pytest.approx(-26.0,
                                                                                      abs=1e-3)
    silent = np.zeros(SR, np.float32)
    assert np.array_equal(normalize_level(silent, SR, -26.0), silent)


def test_trim_silence_cuts_the_ends_only_and_keeps_a_margin():
    x = speech()
    pause = np.zeros(int(0.4 * SR), np.float32)
    inner = np.concatenate([x, pause, x])
    trimmed = trim_silence(pad(inner), SR, 40.0, margin_seconds=0.1)
    # the ends go (0.5 s + 0.7 s of silence), the pause inside stays, 0.1 s kept each side
    assert abs(len(trimmed) - (len(inner) + 2 * int(0.1 * SR))) <= int(0.02 * SR)
    assert len(trim_silence(inner, SR)) >= len(inner) - int(0.04 * SR)
    assert len(trim_silence(np.zeros(SR, np.float32), SR)) == SR


def test_trimming_cuts_noise_filled_silence_too():
    x = speech()
    noisy = pad(x, 1.0, 1.0) + 0.02 * np.random.default_rng(0).standard_normal(
        len(x) + 2 * SR).astype(np.float32)  # steady noise ~25 dB under the voice
    cut = trim_silence(noisy, SR, 40.0)
    assert abs(len(cut) - (len(x) + 2 * int(0.1 * SR))) <= int(0.1 * SR)
    # the loudest-block rule alone (conditioning version 1) keeps all of the noise
    assert len(trim_silence(noisy, SR, 40.0, floor_margin_db=None)) == len(noisy)
    # and a version the installed emovox does not know is refused
    with pytest.raises(ConfigError, match="conditioning"):
        build_frontend({"name": "logmel", "trim_db": 40.0, "conditioning": 9})


def test_a_conditioned_frontend_gives_one_answer_whatever_the_level_and_the_framing():
    plain = build_frontend({"name": "logmel", "n_mels": 32})
    cond = build_frontend({"name": "logmel", "n_mels": 32, "level_db": -26.0, "trim_db": 40.0})
    assert isinstance(cond, Conditioned) and not isinstance(plain, Conditioned)
    x = speech()
    quiet_framed = pad(0.05 * x, 2.0, 1.0)
    a, b = cond(pad(x)), cond(quiet_framed)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=1e-3)
    assert plain(pad(x)).shape != plain(quiet_framed).shape  # unconditioned: another input


def test_conditioning_is_part_of_the_config_and_the_cache_key():
    cond = build_frontend({"name": "logmel", "n_mels": 32, "level_db": -26.0, "trim_db": 40.0})
    again = build_frontend(cond.config())
    assert again.config() == cond.config()
    plain = build_frontend({"name": "logmel", "n_mels": 32})
    assert config_key(plain.config()) != config_key(cond.config())
    assert cond.dim == plain.dim and cond.sample_rate == SR  # the rest is the frontend's


@pytest.mark.parametrize("options, message", [
    ({"level_db": 5.0}, "level_db must be in"),
    ({"level_db": "loud"}, "level_db must be a number"),
    ({"trim_db": 0}, "trim_db must be > 0"),
])
def test_bad_conditioning_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        build_frontend({"name": "logmel", **options})


# --- the frame gate -----------------------------------------------------------------------------

def test_the_frame_gate_keeps_the_voice_and_drops_what_fills_its_pauses():
    x = speech(0.6)
    murmur = 0.03 * speech(0.6, 120.0, seed=5)  # another voice ~30 dB under it
    signal = np.concatenate([murmur, x, murmur, x, murmur])
    frames = len(signal) // 320  # Whisper's 20 ms frames
    keep = frame_gate(signal, SR, frames, 15.0)
    seg = 0.6 * SR / 320
    voice = np.zeros(frames, bool)
    for start in (seg, 3 * seg):
        voice[int(start) + 2: int(start + seg) - 2] = True
    background = np.ones(frames, bool)
    for start in (seg, 3 * seg):
        background[int(start) - 2: int(start + seg) + 2] = False
    assert keep[voice].mean() > 0.8 and not keep[background].any()
    # the same frames at another frame rate (10 ms), and whatever the level
    assert frame_gate(signal, SR, 2 * frames, 15.0)[1::2].tolist() == keep.tolist()
    assert frame_gate(0.01 * signal, SR, frames, 15.0).tolist() == keep.tolist()
    # too little to gate: everything is kept
    assert frame_gate(np.zeros(SR, np.float32), SR, 50, 15.0).all()
    assert frame_gate(x[:400], SR, 1, 15.0).tolist() == [True]


def test_a_gated_frontend_pools_the_voice_alone_and_says_so_in_its_config():
    gated = build_frontend({"name": "logmel", "n_mels": 32, "level_db": -26.0, "gate_db": 15.0})
    plain = build_frontend({"name": "logmel", "n_mels": 32, "level_db": -26.0})
    x = speech(0.8)
    murmur = 0.03 * speech(1.6, 120.0, seed=5)
    quiet, busy = pad(x, 0.8, 0.8), np.concatenate([murmur[:int(0.8 * SR)], x,
                                                   murmur[int(0.8 * SR):]])
    # the gated features of a voice with a murmur around it are those of the voice in silence
    a, b = gated(quiet), gated(busy)
    assert abs(a.shape[0] - b.shape[0]) <= 3 and a.shape[0] < plain(quiet).shape[0] * 0.6
    gap = np.abs(a.mean(0) - b.mean(0)).mean()
    assert gap < 0.3 * np.abs(plain(quiet).mean(0) - plain(busy).mean(0)).mean()
    assert gated.config()["gate_db"] == 15.0 and "gate_db" not in plain.config()
    assert build_frontend(gated.config()).config() == gated.config()
    assert config_key(gated.config()) != config_key(plain.config())
    with pytest.raises(ConfigError, match="gate_db must be in"):
        build_frontend({"name": "logmel", "gate_db": 0})
    with pytest.raises(ConfigError, match="one row per recording"):
        build_frontend({"name": "whisper", "pooled": True, "gate_db": 10.0})


def test_band_levels_ignore_what_a_telephone_line_removes():
    """Conditioning version 3 measures levels in the telephone band: hum below it and a hiss
    above it move neither the level nor the gate, and a telephone line changes neither."""
    rng = np.random.default_rng(0)
    voice = np.concatenate([speech(0.6, 110.0), np.zeros(int(0.6 * SR), np.float32)] * 2)
    burst = rng.normal(size=int(0.3 * SR))
    spectrum = np.fft.rfft(burst)
    spectrum[np.fft.rfftfreq(burst.size, 1 / SR) < 4500] = 0  # all of it above the band
    burst = np.fft.irfft(spectrum, burst.size)
    hiss = np.zeros_like(voice)
    hiss[int(0.75 * SR):int(1.05 * SR)] = 0.3 * burst / burst.std() * voice[:int(0.6 * SR)].std()
    hum = 0.3 * np.sin(2 * np.pi * 60 * np.arange(voice.size) / SR)
    x = (voice + hiss + hum).astype(np.float32)
    line = telephone(x, SR)
    frames = x.size // 320
    alone = frame_gate(voice, SR, frames, 10.0, SPEECH_BAND)
    assert 0.3 < alone.mean() < 0.6  # the voice, not the pauses
    for signal in (x, line):
        assert abs(active_level(signal, SR, band=SPEECH_BAND)
                   - active_level(voice, SR, band=SPEECH_BAND)) < 1.5
        assert (frame_gate(signal, SR, frames, 10.0, SPEECH_BAND) == alone).mean() > 0.97
    # broadband (versions 1 and 2), the hum sets the level and keeps every frame
    assert active_level(x, SR) - active_level(line, SR) > 6.0
    assert frame_gate(x, SR, frames, 10.0).all()
    v3 = build_frontend({"name": "logmel", "n_mels": 32, "level_db": -26.0, "trim_db": 40.0,
                         "gate_db": 10.0, "conditioning": 3})
    v2 = build_frontend({**v3.config(), "conditioning": 2})
    assert build_frontend(v3.config()).config() == v3.config()
    assert config_key(v3.config()) != config_key(v2.config())
    assert v3(x).shape[0] < v2(x).shape[0]  # the hum-filled pauses are gated out


# --- multi-condition copies ---------------------------------------------------------------------

def test_training_copies_are_reproducible_distinct_and_drawn_from_the_families_given():
    x = speech(1.0)
    a = training_copy(x, SR, ["white", "reverb", "gain"], 1, "u1", 0)
    assert np.array_equal(a, training_copy(x, SR, ["white", "reverb", "gain"], 1, "u1", 0))
    copies = [training_copy(x, SR, ["white", "reverb", "gain"], 1, "u1", k) for k in range(4)]
    assert all(c.shape == x.shape for c in copies)
    assert len({c.tobytes() for c in copies}) == 4
    rng = np.random.default_rng(0)
    drawn = [random_condition(["pink", "clip"], rng) for _ in range(40)]
    assert {c.family for c in drawn} == {"train"}  # every name says it is a training draw
    assert {c.kind for c in drawn} == {"noise", "clip"}
    snrs = [c.strength for c in drawn if c.kind == "noise"]
    low, high = TRAINING_RANGES["snr_db"]
    assert all(low <= s <= high for s in snrs) and len(set(snrs)) > 5


def test_babble_for_training_comes_from_the_voices_given():
    x = speech(1.0)
    voices = [speech(1.5, 90.0, seed=3)]
    own = training_copy(x, SR, ["babble"], 1, "u1", 0)
    other = training_copy(x, SR, ["babble"], 1, "u1", 0, voices)
    assert not np.allclose(own, other)


@pytest.mark.parametrize("override, message", [
    ('augment.conditions=["thunder"]', "unknown augment.conditions"),
    ("augment.condition_copies=2", "needs augment.conditions"),
    ("augment.condition_copies=-1", "must be >= 0"),
    ("classic.calibration_folds=1", "calibration_folds must be 0"),
    ("classic.layer_weights=[1, 1]", 'needs classic.layer = "all"'),
    ("frontend.finetune=all", "not supported with a fine-tuned frontend"),
    ('classic.nuisance=["noise"]', "classic.nuisance must list"),
    ("classic.nuisance_dims=4", "go together"),
    ('classic.nuisance=["speeds"]', "go together"),
    ("classic.nuisance_dims=-1", "integer >= 0"),
    ('classic.nuisance=["conditions"];classic.nuisance_dims=4', "no multi-condition copies"),
    ('classic.nuisance=["speeds"];classic.nuisance_dims=4;augment.speed_factors=[]',
     "no speed-perturbed"),
])
def test_bad_generalisation_options_fail_before_any_work(override, message):
    base = ["frontend.level_db=-26.0"] if "finetune" in override else []
    with pytest.raises(ConfigError, match=message):
        load_recipe("whisper_logreg", [*base, *override.split(";")]).validate()


def test_condition_copies_are_trained_on_and_the_same_in_every_bank(tone_corpus, tmp_path):
    from emovox.corpora import load_corpus
    from emovox.dataset import FeatureBank
    from emovox.train import fit

    utts = load_corpus("manifest", tone_corpus)
    config = load_recipe("whisper_logreg", [LOGMEL, 'augment.conditions=["white", "gain"]',
                                            "augment.condition_copies=2"])
    model = fit(config, utts, [], cache_dir=tmp_path, progress=False)
    assert model.info["versions"] == 3
    frontend = build_frontend(model.frontend_config)
    whole = FeatureBank(frontend, utts, None, "float32", False)
    assert whole.add_conditions(utts, ["white", "gain"], 2, 1) == ["mc0", "mc1"]
    u = utts[0]
    assert not np.allclose(whole.get(u, "mc0"), whole.get(u))
    # another bank (another fold's training set) holding this speaker: the same copy
    part = FeatureBank(frontend, [v for v in utts if v.speaker == u.speaker], None, "float32",
                       False)
    part.add_conditions([u], ["white", "gain"], 2, 1)
    np.testing.assert_allclose(part.get(u, "mc1"), whole.get(u, "mc1"), atol=1e-6)
    # a dropped bank frees its features at once (no reference cycle waiting for the collector:
    # cross-validation builds one bank per fold, gigabytes each)
    import gc
    import weakref

    gc.disable()
    try:
        ref = weakref.ref(part)
        del part
        assert ref() is None
    finally:
        gc.enable()


# --- layer weights ------------------------------------------------------------------------------

def test_layer_weights_lean_on_the_layers_given_and_fold_into_the_head(tone_corpus, tmp_path):
    from emovox.corpora import load_corpus
    from emovox.train import fit

    utts = load_corpus("manifest", tone_corpus)
    base = ['frontend={name = "whisper", layer = "all"}', 'classic.layer="all"']

    def head(*extra):
        model = fit(load_recipe("whisper_logreg", [*base, *extra]), utts, [],
                    cache_dir=tmp_path, progress=False)
        return model.network.coef.reshape(len(model.labels), 5, -1)  # [C, layers, 2D]

    plain = head()
    ones = head("classic.layer_weights=[1, 1, 1, 1, 1]")
    np.testing.assert_allclose(ones, plain, rtol=1e-4, atol=1e-6)
    early = head("classic.layer_weights=[1, 1, 0, 0, 0]")
    assert np.abs(early[:, 2:]).max() == 0 and np.abs(early[:, :2]).max() > 0
    damped = head("classic.layer_weights=[1, 1, 1, 0.2, 0.2]")
    share = np.abs(damped[:, 3:]).sum() / np.abs(damped).sum()
    assert share < np.abs(plain[:, 3:]).sum() / np.abs(plain).sum()
    with pytest.raises(ConfigError, match="5 hidden states"):
        head("classic.layer_weights=[1, 1, 0]")
    with pytest.raises(ConfigError, match="not all 0"):
        load_recipe("whisper_all_logreg", ["classic.layer_weights=[0, 0, 0, 0, 0]"])


# --- class prior ---------------------------------------------------------------------------------

def test_a_uniform_prior_takes_the_training_class_mix_out_of_the_intercepts():
    from emovox.train import logreg_head

    rng = np.random.default_rng(0)
    counts = (600, 150, 150)  # the training corpus's mix: class 0 four times as common
    means = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # overlapping classes
    x = np.concatenate([rng.normal(m, 1.0, (n, 2)) for m, n in zip(means, counts, strict=True)])
    y = np.repeat(np.arange(3), counts)
    classes = ["a", "b", "c"]

    def head(prior, weight=None):
        config = load_recipe("whisper_logreg", [] if prior is None else
                             [f'classic.prior="{prior}"'])
        return logreg_head(config, x, y, classes, None, sample_weight=weight)

    mix, flat = head(None), head("uniform")
    np.testing.assert_allclose(flat.coef, mix.coef)
    np.testing.assert_allclose(flat.intercept - mix.intercept,
                               -np.log(np.array(counts) / sum(counts)), atol=1e-9)
    # on evenly mixed test data the rare classes are found more often, and UA rises
    test = np.concatenate([rng.normal(m, 1.0, (2000, 2)) for m in means])
    truth = np.repeat(np.arange(3), 2000)

    def recalls(h):
        pred = h.logits(test).argmax(axis=1)
        return np.array([np.mean(pred[truth == k] == k) for k in range(3)])

    assert (recalls(flat)[1:] > recalls(mix)[1:]).all()
    assert recalls(flat).mean() > recalls(mix).mean()
    # weighted rows (soft targets) count by their weight
    weight = np.where(y == 0, 0.25, 1.0)  # now every class weighs 150: the same shift for all
    shift = head("uniform", weight).intercept - head(None, weight).intercept
    assert np.ptp(shift) < 1e-9 and shift[0] == pytest.approx(np.log(3))
    # two classes: one logit, shifted by the log-odds of the mix
    two = y < 2
    config = load_recipe("whisper_logreg", ['classic.prior="uniform"'])
    binary = logreg_head(config, x[two], y[two], ["a", "b"], None)
    plain = logreg_head(load_recipe("whisper_logreg"), x[two], y[two], ["a", "b"], None)
    shift = (binary.intercept[1] - binary.intercept[0]) - (plain.intercept[1] - plain.intercept[0])
    assert shift == pytest.approx(np.log(600 / 150))


@pytest.mark.parametrize("sets, message", [
    (['classic.prior="flat"'], "classic.prior must be"),
    (['classic.prior="uniform"', 'classic.class_weight="balanced"'], "choose one"),
])
def test_bad_prior_settings_are_refused(sets, message):
    with pytest.raises(ConfigError, match=message):
        load_recipe("whisper_logreg", sets)


# --- nuisance projection ------------------------------------------------------------------------

def _rows(n_utts: int, corpora: tuple[str, ...] = ("a",)) -> list:
    from emovox.types import Utterance

    utts = [Utterance(f"{corpora[i % len(corpora)]}/u{i}", f"u{i}.wav", corpora[i % len(corpora)],
                      f"s{i % 4}", "happy" if (i // 2) % 2 else "sad") for i in range(n_utts)]
    return utts


def test_nuisance_basis_finds_what_copies_and_corpora_add(tmp_path):
    from emovox.train import nuisance_basis

    rng = np.random.default_rng(0)
    width = 12
    channel, offset = np.eye(width)[3], np.eye(width)[7]
    n = 80
    utts = _rows(n, ("a", "b"))
    clean = rng.normal(size=(n, width))
    rows = [(u, 1.0) for u in utts] + [(u, "mc0") for u in utts] + [(u, 0.9) for u in utts]
    copies = clean + rng.normal(0, 2, (n, 1)) * channel + rng.normal(0, 0.01, (n, width))
    speeds = clean + rng.normal(0, 0.01, (n, width))
    shifted = clean + np.array([[4.0] if u.corpus == "b" else [0.0] for u in utts]) * offset
    copies_on = ['augment.conditions=["white"]', "augment.condition_copies=1"]
    config = load_recipe("whisper_logreg", [*copies_on, 'classic.nuisance=["conditions"]',
                                            "classic.nuisance_dims=1"])
    basis = nuisance_basis(config, np.vstack([clean, copies, speeds]), rows)
    assert basis.shape == (width, 1) and abs(abs(basis[:, 0] @ channel) - 1) < 1e-3
    config = load_recipe("whisper_logreg", ['classic.nuisance=["corpus"]',
                                            "classic.nuisance_dims=1"])
    basis = nuisance_basis(config, np.vstack([shifted, copies, speeds]), rows)
    assert abs(abs(basis[:, 0] @ offset) - 1) < 0.05
    # two sources, two directions: both removed, whichever has more vectors
    config = load_recipe("whisper_logreg", [*copies_on,
                                            'classic.nuisance=["conditions", "corpus"]',
                                            "classic.nuisance_dims=2"])
    basis = nuisance_basis(config, np.vstack([shifted, copies, speeds]), rows)
    assert np.linalg.norm(basis.T @ channel) > 0.99 and np.linalg.norm(basis.T @ offset) > 0.95


def test_the_nuisance_projection_folds_into_the_head(tone_corpus, tmp_path, monkeypatch):
    from emovox import train
    from emovox.corpora import load_corpus

    utts = load_corpus("manifest", tone_corpus)
    used = []
    real = train.nuisance_basis
    monkeypatch.setattr(train, "nuisance_basis",
                        lambda *a: used.append(real(*a)) or used[-1])
    base = [LOGMEL, 'augment.conditions=["white", "gain"]', "augment.condition_copies=2"]
    plain = train.fit(load_recipe("whisper_logreg", base), utts, [], cache_dir=tmp_path,
                      progress=False)
    assert not used
    model = train.fit(load_recipe("whisper_logreg", [*base, 'classic.nuisance=["conditions"]',
                                                     "classic.nuisance_dims=3"]),
                      utts, [], cache_dir=tmp_path, progress=False)
    basis = used[0]
    assert basis.shape[1] == 3
    head = model.network
    # the head reads nothing along the removed directions (no layer weights: coef . basis = 0)
    assert np.abs(head.coef @ basis).max() < 1e-8 * np.abs(head.coef).max()
    assert np.abs(plain.network.coef @ basis).max() > 1e-3 * np.abs(plain.network.coef).max()
    # so moving a recording along them changes nothing; the plain head's answer moves
    x = np.zeros((1, basis.shape[0])) + head.mean
    moved = x + (basis @ np.array([3.0, -2.0, 1.0]))[None] * head.scale
    np.testing.assert_allclose(head.logits(moved), head.logits(x), atol=1e-8)
    assert np.abs(plain.network.logits(moved) - plain.network.logits(x)).max() > 1e-3
    with pytest.raises(ConfigError, match="one corpus"):
        train.fit(load_recipe("whisper_logreg", [*base, 'classic.nuisance=["corpus"]',
                                                 "classic.nuisance_dims=2"]),
                  utts, [], cache_dir=tmp_path, progress=False)


def test_balanced_class_weights_keep_the_training_frequencies_out_of_the_prior(tone_corpus,
                                                                               tmp_path):
    from emovox.corpora import load_corpus
    from emovox.dataset import FeatureBank
    from emovox.train import fit

    utts = load_corpus("manifest", tone_corpus)
    seen: set[str] = set()
    skewed = []  # every "happy" recording, one "sad" per speaker: 3 to 1
    for u in utts:
        if u.label == "happy":
            skewed.append(u)
        elif u.speaker not in seen:
            skewed.append(u)
            seen.add(u.speaker)
    assert sum(u.label == "happy" for u in skewed) == 3 * sum(u.label == "sad" for u in skewed)
    # so strongly regularised that the prior is most of what the model learns
    weak = [LOGMEL, "classic.C=1e-5", "augment.speed_factors=[]"]
    plain = fit(load_recipe("whisper_logreg", weak), skewed, [], cache_dir=tmp_path,
                progress=False)
    balanced = fit(load_recipe("whisper_logreg", [*weak, 'classic.class_weight="balanced"']),
                   skewed, [], cache_dir=tmp_path, progress=False)
    bank = FeatureBank(build_frontend(plain.frontend_config), utts, tmp_path, "float16", False)
    happy = plain.labels.index("happy")
    p_plain = plain.classify([bank.get(u) for u in utts]).probabilities[:, happy].mean()
    p_bal = balanced.classify([bank.get(u) for u in utts]).probabilities[:, happy].mean()
    assert p_plain > 0.7 and abs(p_bal - 0.5) < 0.05
    assert balanced.config.classic.class_weight == "balanced"
    with pytest.raises(ConfigError, match="class_weight"):
        load_recipe("whisper_logreg", ['classic.class_weight="inverse"'])


# --- calibration ------------------------------------------------------------------------------

def test_temperature_is_fitted_on_training_speakers_and_keeps_every_label(tone_corpus, tmp_path):
    from emovox.corpora import load_corpus
    from emovox.dataset import FeatureBank
    from emovox.train import fit

    utts = load_corpus("manifest", tone_corpus)
    last = sorted({u.speaker for u in utts})[-1]
    train = [u for u in utts if u.speaker != last]
    test = [u for u in utts if u.speaker == last]
    raw = fit(load_recipe("whisper_logreg", [LOGMEL]), train, [], cache_dir=tmp_path,
              progress=False)
    cal = fit(load_recipe("whisper_logreg", [LOGMEL, "classic.calibration_folds=3"]), train, [],
              cache_dir=tmp_path, progress=False)
    assert raw.network.temperature == 1.0 and cal.network.temperature != 1.0
    bank = FeatureBank(build_frontend(raw.frontend_config), test, tmp_path, "float16", False)
    p_raw = raw.classify([bank.get(u) for u in test]).probabilities
    p_cal = cal.classify([bank.get(u) for u in test]).probabilities
    assert np.array_equal(p_raw.argmax(axis=1), p_cal.argmax(axis=1))
    assert not np.allclose(p_raw, p_cal)
    # the temperature is kept by a checkpoint
    from emovox.bundle import load_checkpoint, save_checkpoint

    save_checkpoint(cal, tmp_path / "cal.pt")
    assert load_checkpoint(tmp_path / "cal.pt").network.temperature == cal.network.temperature


# --- the recognizer -----------------------------------------------------------------------------

def test_a_conditioned_model_answers_the_same_for_a_quiet_padded_copy(tone_corpus, tmp_path):
    from emovox.bundle import save_checkpoint
    from emovox.corpora import load_corpus
    from emovox.inference import Recognizer
    from emovox.train import fit

    config = load_recipe("whisper_logreg", [
        'frontend={name = "logmel", n_mels = 32, level_db = -26.0, trim_db = 40.0}'])
    save_checkpoint(fit(config, load_corpus("manifest", tone_corpus), [], progress=False),
                    tmp_path / "m.pt")
    rec = Recognizer.from_checkpoint(tmp_path / "m.pt")
    x = speech(0.9, 300.0)
    sf.write(tmp_path / "a.wav", x, SR)
    sf.write(tmp_path / "b.wav", pad(0.03 * x, 1.0, 1.5), SR)
    a, b = rec.predict_files([tmp_path / "a.wav", tmp_path / "b.wav"])
    assert a.label == b.label
    assert max(abs(a.probabilities[c] - b.probabilities[c]) for c in a.probabilities) < 0.01
