"""Acoustic cues: synthetic voices with known F0, jitter, level and noise; level preparation;
the literature table; the committed neutral reference of random regions and how it is drawn."""

import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_DATA

pytest.importorskip("parselmouth")

from emovox import cues  # noqa: E402
from emovox.errors import EmovoxError  # noqa: E402

SR = 16000
REFERENCE = Path(__file__).resolve().parents[1] / "src" / "emovox" / "pretrained" / \
    "cue_reference.json"


def pulses(f0, seconds: float, jitter: float = 0.0, seed: int = 0) -> np.ndarray:
    """A vowel-like voice: glottal pulses (exact, sub-sample times) exciting two formants.

    ``f0`` is a number or a function of time (Hz); ``jitter`` is the relative standard
    deviation of each period.
    """
    rng = np.random.default_rng(seed)
    rate = f0 if callable(f0) else (lambda t: f0)
    times, t = [], 0.01
    while t < seconds - 0.02:
        times.append(t)
        t += (1.0 + jitter * rng.standard_normal()) / rate(t)
    n = int(seconds * SR)
    x = np.zeros(n)
    length = int(0.02 * SR)
    for t0 in times:
        i = int(np.ceil(t0 * SR))
        tau = (np.arange(i, min(i + length, n)) / SR) - t0
        x[i:i + tau.size] += (np.exp(-tau * 400) * np.sin(2 * np.pi * 700 * tau)
                              + 0.5 * np.exp(-tau * 600) * np.sin(2 * np.pi * 1800 * tau))
    env = np.clip(np.minimum(np.arange(n), n - np.arange(n)) / (0.03 * SR), 0, 1)
    return 0.3 * x / np.abs(x).max() * env


def hz(semitones: float) -> float:
    return 100.0 * 2.0 ** (semitones / 12.0)


def semitones_between(a: float, b: float) -> float:
    return abs(12.0 * np.log2(a / b))


@pytest.mark.parametrize("f0", [120.0, 220.0])
def test_f0_mean_of_a_steady_voice_is_its_f0(f0):
    values = cues.measure(pulses(f0, 1.0), SR)
    assert semitones_between(hz(values["f0_mean"]), f0) < 0.5
    assert values["f0_range"] < 0.5
    assert abs(values["f0_slope"]) < 1.0


def test_higher_voice_has_higher_f0_and_its_register():
    low, high = cues.measure(pulses(120.0, 1.0), SR), cues.measure(pulses(220.0, 1.0), SR)
    assert high["f0_mean"] - low["f0_mean"] == pytest.approx(12 * np.log2(220 / 120), abs=0.3)
    assert (cues.register_of(low), cues.register_of(high)) == ("low", "high")
    assert cues.register_of({"f0_mean": None}) == "all"


def test_f0_glides_give_the_sign_and_size_of_their_slope():
    up = cues.measure(pulses(lambda t: 120.0 * 1.5 ** t, 1.0), SR)  # +7.02 st/s
    down = cues.measure(pulses(lambda t: 180.0 / 1.5 ** t, 1.0), SR)
    assert up["f0_slope"] == pytest.approx(12 * np.log2(1.5), abs=1.0)
    assert down["f0_slope"] == pytest.approx(-12 * np.log2(1.5), abs=1.0)
    assert up["f0_range"] > 4.0


def test_ten_db_louder_raises_intensity_by_ten_db_and_nothing_else():
    x = pulses(150.0, 1.0)
    quiet, loud = cues.measure(x * 0.1, SR), cues.measure(x * 0.1 * 10 ** 0.5, SR)
    assert loud["intensity_mean"] - quiet["intensity_mean"] == pytest.approx(10.0, abs=0.05)
    for name in ("f0_mean", "intensity_range", "jitter", "shimmer", "alpha_ratio", "hammarberg"):
        assert loud[name] == pytest.approx(quiet[name], abs=0.05), name


def at_level(x: np.ndarray, dbfs: float) -> np.ndarray:
    """``x`` scaled so that its RMS over the voiced part is ``dbfs``."""
    voiced = x[np.abs(x) > 0]
    return x * 10 ** (dbfs / 20) / np.sqrt(np.mean(voiced**2))


def test_prepare_sets_the_speech_level_so_the_gain_no_longer_shows():
    from emovox.vad import active_level

    x = np.concatenate([np.zeros(SR // 2), pulses(150.0, 1.0), np.zeros(SR // 4)])
    quiet, loud = at_level(x, -40.0), at_level(x, -10.0)
    a, b = cues.prepare(quiet, SR), cues.prepare(loud, SR)
    assert a.shape == x.shape and b.shape == x.shape  # no trimming: times stay the file's
    assert active_level(a, SR) == pytest.approx(cues.LEVEL_DBFS, abs=0.1)
    assert np.abs(a[: SR // 2]).max() == 0.0  # the leading silence is where it was
    raw = cues.measure(quiet, SR)["intensity_mean"], cues.measure(loud, SR)["intensity_mean"]
    assert raw[1] - raw[0] == pytest.approx(30.0, abs=0.5)  # as recorded: the gain shows
    va, vb = cues.measure(a, SR), cues.measure(b, SR)
    for name in ("intensity_mean", "intensity_range"):
        assert va[name] == pytest.approx(vb[name], abs=0.5), name
    for name in ("f0_mean", "jitter", "shimmer", "hnr", "alpha_ratio", "hammarberg"):
        assert va[name] == pytest.approx(vb[name], abs=0.05), name
    # a prepared voice is about as loud as the prepared neutral speech of the reference
    stats = cues.load_reference()["registers"]["all"]["intensity_mean"]
    assert abs(va["intensity_mean"] - stats["mean"]) < 3.0
    assert abs(raw[0] - stats["mean"]) > 10.0 and abs(raw[1] - stats["mean"]) > 10.0


def test_prepare_leaves_silence_alone_and_checks_its_input():
    assert np.array_equal(cues.prepare(np.zeros(SR), SR), np.zeros(SR))
    assert cues.prepare(np.zeros(0), SR).size == 0
    with pytest.raises(EmovoxError):
        cues.prepare(np.zeros((2, SR)), SR)
    with pytest.raises(EmovoxError):
        cues.prepare(np.zeros(SR), 0)


def test_measure_each_is_measure_for_each_set_of_spans():
    x = np.concatenate([pulses(120.0, 1.0), pulses(220.0, 1.0)])
    sets = [None, [(0.0, 1.0)], [(0.2, 0.5), (1.2, 1.6)], [(5.0, 6.0)]]
    assert cues.measure_each(x, SR, sets) == [cues.measure(x, SR, spans) for spans in sets]


def test_perturbed_periods_raise_jitter():
    steady = cues.measure(pulses(150.0, 1.0), SR)
    shaky = cues.measure(pulses(150.0, 1.0, jitter=0.03), SR)
    assert steady["jitter"] < 0.3
    assert shaky["jitter"] > 5 * steady["jitter"] and shaky["jitter"] > 1.5


def test_added_noise_lowers_hnr():
    x = pulses(150.0, 1.0)
    noise = np.random.default_rng(1).standard_normal(x.size) * 0.3 * x.std()  # SNR ~10 dB
    clean, noisy = cues.measure(x, SR)["hnr"], cues.measure(x + noise, SR)["hnr"]
    assert clean > 20.0
    assert noisy < clean - 5.0


def test_more_high_frequency_energy_raises_alpha_ratio_and_lowers_hammarberg():
    x = pulses(150.0, 1.0)
    bright = x + 0.8 * np.concatenate([[0.0], np.diff(x)]) * 4  # pre-emphasis: tilt up
    dull, vivid = cues.measure(x, SR), cues.measure(bright, SR)
    assert vivid["alpha_ratio"] > dull["alpha_ratio"] + 3
    assert vivid["hammarberg"] < dull["hammarberg"] - 3
    assert vivid["spectral_slope"] > dull["spectral_slope"]


def test_spans_measure_only_their_part():
    x = np.concatenate([pulses(120.0, 1.0), pulses(220.0, 1.0)])
    first = cues.measure(x, SR, [(0.0, 1.0)])
    second = cues.measure(x, SR, [(1.0, 2.0)])
    both = cues.measure(x, SR)
    assert semitones_between(hz(first["f0_mean"]), 120.0) < 0.5
    assert semitones_between(hz(second["f0_mean"]), 220.0) < 0.5
    assert first["f0_mean"] < both["f0_mean"] < second["f0_mean"]
    inside, outside = cues.measure_inside_outside(x, SR, [(1.0, 2.5)])
    assert inside == second and outside == first


def test_spans_are_merged_and_clipped():
    x = pulses(150.0, 2.0)
    assert cues.measure(x, SR, [(0.5, 1.0), (0.8, 1.5), (1.5, 9.0)]) == \
        cues.measure(x, SR, [(0.5, 2.0)])
    assert all(v is None for v in cues.measure(x, SR, [(5.0, 6.0)]).values())
    with pytest.raises(EmovoxError):
        cues.measure(x, SR, [(1.0, 0.5)])
    with pytest.raises(EmovoxError):
        cues.measure(np.stack([x, x]), SR)


@pytest.mark.parametrize("make", [
    lambda: np.zeros(SR),                                                     # digital silence
    lambda: np.zeros(0),                                                      # empty
    lambda: np.zeros(100),                                                    # 6 ms
    lambda: 1e-4 * np.random.default_rng(0).standard_normal(SR),              # faint noise
    lambda: 0.3 * np.random.default_rng(0).standard_normal(3 * SR),           # loud noise
])
def test_signals_without_a_voice_give_none_for_the_voice_cues(make):
    values = cues.measure(make(), SR)
    assert set(values) == {c.name for c in cues.CUES}
    for name in ("f0_mean", "f0_range", "f0_slope", "jitter", "shimmer", "hnr", "alpha_ratio",
                 "speech_rate", "pause_ratio"):
        assert values[name] is None, name


def test_a_short_clipped_or_nan_voice_still_measures():
    short = cues.measure(pulses(200.0, 0.3), SR)
    assert semitones_between(hz(short["f0_mean"]), 200.0) < 0.5
    clipped = np.clip(pulses(150.0, 1.0) * 20, -1, 1)
    assert semitones_between(hz(cues.measure(clipped, SR)["f0_mean"]), 150.0) < 0.5
    holed = pulses(150.0, 1.0)
    holed[100:110] = np.nan
    assert cues.measure(holed, SR)["f0_mean"] is not None


def test_a_low_sample_rate_leaves_out_the_spectral_cues_only():
    x = pulses(150.0, 1.0)[::2]  # 8 kHz: nothing up to 5 kHz
    values = cues.measure(x, SR // 2)
    assert values["alpha_ratio"] is None and values["hammarberg"] is None
    assert semitones_between(hz(values["f0_mean"]), 150.0) < 0.5


def test_a_three_second_clip_is_measured_quickly():
    x = pulses(lambda t: 150 + 30 * np.sin(3 * t), 3.0, jitter=0.01)
    cues.measure(x, SR)
    start = time.perf_counter()
    cues.measure_inside_outside(x, SR, [(0.5, 1.5)])
    assert time.perf_counter() - start < 1.0  # ~0.15 s alone; the machine may be busy


def espeak(text: str, words_per_minute: int, folder: Path) -> np.ndarray:
    from emovox.audio import load

    path = folder / f"{words_per_minute}.wav"
    subprocess.run(["espeak-ng", "-s", str(words_per_minute), "-w", str(path), text],
                   check=True, capture_output=True)
    return load(path, SR)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_faster_synthetic_speech_has_a_higher_speech_rate(tmp_path):
    text = "The quick brown fox jumps over the lazy dog near the river bank today"
    slow = cues.measure(espeak(text, 100, tmp_path), SR)["speech_rate"]
    fast = cues.measure(espeak(text, 220, tmp_path), SR)["speech_rate"]
    assert 2.0 < slow < 5.0
    assert fast > 1.4 * slow


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_a_silent_gap_in_speech_counts_as_pause(tmp_path):
    speech = espeak("Kids are talking by the door", 160, tmp_path)
    gap = np.concatenate([speech, np.zeros(SR), speech])
    values = cues.measure(gap, SR)
    assert cues.measure(speech, SR)["pause_ratio"] < 5
    assert 20 < values["pause_ratio"] < 40  # 1 s of ~3.5 s between first and last sound


def test_the_literature_table_has_the_textbook_cases():
    table = cues.expectations()
    names = {c.name for c in cues.CUES}
    assert {"angry", "sad", "happy", "fearful", "bored", "neutral"} <= set(table)
    for emotion, entries in table.items():
        assert set(entries) <= names and set(entries.values()) <= {"+", "-", "0"}, emotion
    for cue in ("f0_mean", "intensity_mean", "speech_rate"):
        assert cues.expected("angry", cue) == "+"
        assert cues.expected("sad", cue) == "-"
    assert cues.expected("sad", "f0_range") == "-"
    assert all(v == "0" for v in table["neutral"].values()) and len(table["neutral"]) == 13
    assert cues.expected("surprised", "f0_mean") is None
    assert cues.expected("no such emotion", "f0_mean") is None


def test_every_direction_names_a_source():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    text = (Path(cues.__file__).parent / "data" / "cue_expectations.toml").read_text()
    doc = tomllib.loads(text)
    sources = set(doc.pop("sources"))
    for emotion, entries in doc.items():
        for cue, entry in entries.items():
            if entry["direction"] != "0":
                assert entry["sources"] and set(entry["sources"]) <= sources, (emotion, cue)


def test_the_committed_reference_covers_every_cue_and_register_from_neutral_speech():
    reference = cues.load_reference()
    assert reference == json.loads(REFERENCE.read_text())
    assert reference["register_boundary_hz"] == cues.REGISTER_BOUNDARY_HZ
    assert {c: v["labels"] for c, v in reference["corpora"].items()} == \
        {"ravdess": ["neutral"], "emodb": ["neutral"]}
    assert "cue_reference.py" in reference["command"] and reference["git_revision"]
    regions = sum(v["recordings"] for v in reference["corpora"].values()) * \
        reference["regions"]["draws"]
    for register in ("all", "low", "high"):
        stats = reference["registers"][register]
        assert set(stats) == {c.name for c in cues.CUES}
        for name, entry in stats.items():
            assert entry["n"] >= 50, (register, name)
            if name == "pause_ratio":  # read sentences hardly pause: no scale, no z-scores
                assert entry["std"] is None
            else:
                assert entry["std"] > 0, (register, name)
    assert reference["registers"]["all"]["f0_mean"]["n"] > 0.95 * regions  # values per region
    low, high = reference["registers"]["low"], reference["registers"]["high"]
    assert hz(low["f0_mean"]["mean"]) < cues.REGISTER_BOUNDARY_HZ < hz(high["f0_mean"]["mean"])
    assert reference["register_check"]["agreement_with_sex"] > 0.9


def test_the_reference_describes_regions_drawn_as_explain_draws_salient_ones():
    import inspect

    from emovox import explain

    reference = cues.load_reference()
    procedure = reference["regions"]
    defaults = inspect.signature(explain.explain_signal).parameters
    assert procedure["share"] == explain.TOP_SHARE == defaults["top"].default
    assert procedure["min_seconds"] == explain.MIN_SALIENT_SECONDS
    assert procedure["grid_seconds"] == defaults["hop"].default
    assert procedure["window_seconds"] == defaults["window"].default
    assert procedure["max_cells"] == explain.MAX_STRETCHES
    assert procedure["draws"] >= 4 and isinstance(procedure["seed"], int)
    assert procedure["seconds_percentiles_5_50_95"][1] == pytest.approx(
        explain.MIN_SALIENT_SECONDS, abs=0.05)  # the recordings are short: the minimum rules
    # measured on prepared signals: the corpora's gains (~27 dB apart) are gone
    assert reference["level"] == {"function": "emovox.cues.prepare",
                                  "active_level_dbfs": cues.LEVEL_DBFS, "trimmed": False}
    levels = reference["intensity_mean_by_corpus_db"]
    assert abs(levels["as_recorded"]["ravdess"] - levels["as_recorded"]["emodb"]) > 15
    assert abs(levels["prepared"]["ravdess"] - levels["prepared"]["emodb"]) < 1.5
    assert reference["registers"]["all"]["intensity_mean"]["std"] < 3.0
    # segment-matched: short pieces vary more than whole recordings in range and rate cues
    stats = reference["registers"]["all"]
    assert stats["speech_rate"]["std"] > 1.2 and stats["f0_slope"]["std"] > 3.5


def test_random_regions_follow_explains_rule_inside_the_speech(load_benchmark):
    from emovox.explain import MIN_SALIENT_SECONDS, TOP_SHARE

    bench = load_benchmark("cue_reference")
    hiss = 1e-4 * np.random.default_rng(0).standard_normal(SR)
    x = cues.prepare(np.concatenate([hiss, pulses(150.0, 2.0), hiss]), SR)
    extent = (SR, 3 * SR)
    first = bench.random_regions(x, SR, np.random.default_rng(7), extent)
    assert first == bench.random_regions(x, SR, np.random.default_rng(7), extent)  # seeded
    draws = [bench.random_regions(x, SR, np.random.default_rng(k), extent) for k in range(20)]
    assert len(set(draws)) > 15
    for spans in draws:
        assert sum(b - a for a, b in spans) == pytest.approx(
            max(TOP_SHARE * 4.0, MIN_SALIENT_SECONDS))  # 4 s: 20 % is 0.8 s
        assert all(0.8 <= a < b <= 3.2 for a, b in spans)  # the speech, give or take a stretch
        assert spans == tuple(sorted(spans)) and all(b1 < a2 for (_, b1), (a2, _) in
                                                     zip(spans, spans[1:], strict=False))
    pieces = [len(spans) for spans in draws]
    assert 1.5 <= np.mean(pieces) <= 5  # a few runs, as occlusion's averaging makes them
    everywhere = [bench.random_regions(x, SR, np.random.default_rng(k)) for k in range(20)]
    assert any(a < 0.8 or b > 3.2 for spans in everywhere for a, b in spans)  # no extent
    assert bench.draw_regions(x, SR, np.random.default_rng(0), 3) == [  # trim_span's extent
        bench.random_regions(x, SR, rng, bench.trim_span(x, SR))
        for rng in [np.random.default_rng(0)] for _ in range(3)]
    # long recordings: explain's coarser grid, still a fifth of it
    long = np.tile(x, 4)  # 16 s: 120 cells of 0.133 s
    spans = bench.random_regions(long, SR, np.random.default_rng(0))
    assert sum(b - a for a, b in spans) == pytest.approx(TOP_SHARE * 16.0, abs=0.01)
    # a recording shorter than the minimum: all of its speech
    short = cues.prepare(pulses(150.0, 0.5), SR)
    assert bench.random_regions(short, SR, np.random.default_rng(0)) == ((0.0, 0.5),)


def test_z_scores_of_the_reference_mean_are_zero():
    reference = cues.load_reference()
    for register in ("all", "low", "high"):
        stats = reference["registers"][register]
        means = {name: entry["mean"] for name, entry in stats.items()}
        z = cues.z_scores(means, reference, register)
        assert z.pop("pause_ratio") is None
        assert z == pytest.approx(dict.fromkeys(z, 0.0), abs=1e-9)
        one_up = {n: stats[n]["mean"] + stats[n]["std"] for n in z}
        assert cues.z_scores(one_up, reference, register) == pytest.approx(dict.fromkeys(z, 1.0))
    assert cues.z_scores({"f0_mean": None}, reference) == {"f0_mean": None}
    with pytest.raises(EmovoxError):
        cues.z_scores({}, reference, "tenor")


def test_a_missing_parselmouth_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "parselmouth", None)
    with pytest.raises(EmovoxError, match=r"pip install 'emovox\[explain\]'"):
        cues.measure(np.zeros(SR), SR)


@pytest.mark.corpus
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data")
def test_on_real_speech_angry_is_higher_and_louder_than_neutral_for_the_same_actor():
    from emovox.audio import load

    actor = SHARED_DATA / "ravdess" / "Actor_01"
    neutral = cues.measure(load(actor / "03-01-01-01-01-01-01.flac", SR), SR)
    angry = cues.measure(load(actor / "03-01-05-02-01-01-01.flac", SR), SR)
    assert angry["f0_mean"] > neutral["f0_mean"] + 3
    assert angry["intensity_mean"] > neutral["intensity_mean"] + 6
    assert angry["alpha_ratio"] > neutral["alpha_ratio"]
    # prepared, the level is the same; the vocal effort still shows in pitch and spectrum
    reference = cues.load_reference()
    neutral, angry = (cues.measure(cues.prepare(load(actor / f"{name}.flac", SR), SR), SR)
                      for name in ("03-01-01-01-01-01-01", "03-01-05-02-01-01-01"))
    assert angry["intensity_mean"] == pytest.approx(neutral["intensity_mean"], abs=1.5)
    z_neutral = cues.z_scores(neutral, reference, cues.register_of(neutral))
    z_angry = cues.z_scores(angry, reference, cues.register_of(angry))
    for name in ("f0_mean", "alpha_ratio"):
        assert z_angry[name] > z_neutral[name] + 1.0, name
    assert abs(z_neutral["intensity_mean"]) < 1.5 and abs(z_neutral["f0_mean"]) < 1.5
