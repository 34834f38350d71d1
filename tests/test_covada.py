"""CO-VADA as a training option (issue #18): scores, selection, converted copies, the check.

On the tone corpus (conftest): 6 speakers, "happy" an octave above "sad". The early model is
either the real one (fit) or a stand-in whose answers are set per recording, so the selection
and the check can be checked by hand.
"""

import dataclasses
from collections import Counter

import numpy as np
import pytest

from emovox import covada
from emovox.bundle import Normalizer
from emovox.config import load_recipe
from emovox.dataset import FeatureBank
from emovox.errors import ConfigError
from emovox.features import build_frontend
from emovox.train import fit
from emovox.types import Utterance
from emovox.voice import measure_shift
from test_inference import FAST

pytest.importorskip("parselmouth")

LOGREG = [FAST[0]]  # whisper_logreg on log-mel features
ON = ["augment.covada=true"]


@pytest.fixture(scope="module")
def utts(tone_corpus):
    from emovox.corpora import load_corpus

    return load_corpus("manifest", tone_corpus)


@pytest.fixture(scope="module")
def bank(utts):
    frontend = build_frontend({"name": "logmel", "n_mels": 32})
    return FeatureBank(frontend, utts, None, "float32", False)


def test_confidence_speed_and_the_most_confident_share():
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    np.testing.assert_allclose(covada.confidence(probs, [0, 0, 1]), [0.9, 0.3, 0.4])
    later = np.array([[0.5, 0.5], [0.1, 0.9], [0.2, 0.8]])
    np.testing.assert_allclose(covada.learning_speed([probs, later], [0, 0, 1]),
                               [0.7, 0.2, 0.6])
    # 10 recordings: a = ids 0-5, b = ids 6-9
    u = [Utterance(f"c/{i:02d}", "", "c", f"s{i % 3}", "a" if i < 6 else "b")
         for i in range(10)]
    scores = [0.1, 0.9, 0.5, 0.8, 0.2, 0.8, 0.95, 0.3, 0.99, 0.4]
    # per class: a -> round(1.8) = 2 (0.9, then the tie 0.8/0.8 to the smaller id), b -> 1
    assert covada.select(u, scores, 0.3) == [1, 3, 8]
    # of all: the top 3 whatever the class
    assert covada.select(u, scores, 0.3, per_class=False) == [1, 6, 8]
    assert covada.select(u[::-1], scores[::-1], 0.3, per_class=False) == [1, 3, 8]
    assert covada.select(u, scores, 1.0) == list(range(10))


@pytest.mark.parametrize("override, message", [
    ("augment.covada_share=0", "covada_share must be in (0, 1]"),
    ("augment.covada_share=1.5", "covada_share must be in (0, 1]"),
    ("augment.covada_score=loss", "covada_score must be \"confidence\", \"speed\" or \"random\""),
    ("augment.covada_C=0.0", "covada_C must be > 0"),
    ("augment.covada_copies=0", "covada_copies must be >= 1"),
    ("augment.covada_epochs=0", "covada_epochs must be >= 1"),
    ("augment.covada_share=high", "must be float"),
    ("augment.covada_score=speed", 'needs method = "neural"'),
])
def test_bad_covada_settings_are_one_line_config_errors(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        load_recipe("whisper_logreg", [*ON, override])
    assert "\n" not in str(e.value)


def test_copies_are_deterministic_and_the_same_in_every_fold(utts, bank):
    speaker = utts[0].speaker
    f0 = covada.speaker_f0(bank, [u for u in utts if u.speaker == speaker])[speaker]
    shifts = covada.copy_shifts(18, utts[0].id, 2, f0)
    assert shifts == covada.copy_shifts(18, utts[0].id, 2, f0)
    assert shifts[0] != shifts[1] and shifts != covada.copy_shifts(19, utts[0].id, 2, f0)
    assert bank.add_voice_copies([utts[0]], [shifts]) == ["cv0", "cv1"]
    # another fold's bank (only this speaker's recordings): the same speaker F0, the same copy
    other = FeatureBank(bank.frontend, [u for u in utts if u.speaker == speaker], None,
                        "float32", False)
    assert covada.speaker_f0(other, other.utterances)[speaker] == f0
    other.add_voice_copies([utts[0]], [covada.copy_shifts(18, utts[0].id, 2, f0)])
    np.testing.assert_array_equal(other.get(utts[0], "cv1"), bank.get(utts[0], "cv1"))
    np.testing.assert_array_equal(other.wave(utts[0], "cv0"), bank.wave(utts[0], "cv0"))
    with pytest.raises(KeyError, match="cv0"):
        bank.get(utts[1], "cv0")  # only the recordings asked for hold a copy


def test_the_copy_moves_f0_as_speaker_shift_asked(utts, bank):
    u = utts[3]
    f0 = covada.speaker_f0(bank, [v for v in utts if v.speaker == u.speaker])[u.speaker]
    bank.add_voice_copies([u], [covada.copy_shifts(18, u.id, 1, f0)])
    shift = bank.voice_shift(u, "cv0")
    assert shift == covada.copy_shifts(18, u.id, 1, f0)[0]
    assert (shift.pitch_factor < 1) == (f0 >= 160.0)  # towards the other register
    measured = measure_shift(bank.wave(u), bank.wave(u, "cv0"), 16000)
    assert measured["f0_ratio"] == pytest.approx(shift.pitch_factor, rel=0.03)


class StandIn:
    """An early model whose answers the test sets.

    Each recording (and copy) gets its own label with probability ``conf[id]``, except the
    ``(id, version)`` pairs in ``flips``, which get the other label.
    """

    def __init__(self, bank, utts, conf, flips):
        self.normalizer = Normalizer("none")
        self.lookup = {}
        for u in utts:
            right = ["happy", "sad"].index(u.label)
            for version in [1.0, *(["cv0"] if bank.voice_shift(u, "cv0") else [])]:
                label = 1 - right if (u.id, version) in flips else right
                p = np.full(2, 1 - conf[u.id])
                p[label] = conf[u.id]
                self.lookup[bank.get(u, version).tobytes()] = p

    def classify(self, features, stats):
        return dataclasses.make_dataclass("C", ["probabilities"])(
            np.stack([self.lookup[f.tobytes()] for f in features]))


def test_plan_selects_converts_and_checks_by_hand(utts, bank):
    train = [u for u in utts if u.speaker != utts[-1].speaker]  # 30: 15 happy, 15 sad
    conf = {u.id: 0.5 + 0.01 * i for i, u in enumerate(train)}  # later = more confident
    config = load_recipe("whisper_logreg", [*LOGREG, *ON])
    want = sorted(train[i].id for i in [20, 22, 24, 26, 28, 21, 23, 25, 27, 29])  # 0.3 x 15
    f0 = covada.speaker_f0(bank, train)
    picked = [u for u in train if u.id in want]
    bank.add_voice_copies(picked, [covada.copy_shifts(18, u.id, 1, f0[u.speaker])
                                   for u in picked])
    flip = train[24]  # its copy sounds "sad" to the early model
    early = StandIn(bank, train, conf, {(flip.id, "cv0")})
    plan = covada.plan(config, train, bank, early, ["happy", "sad"])
    record = plan.record
    assert record["selected"] == want
    assert record["selected_per_class"] == {"happy": 5, "sad": 5}
    assert record["n_copies"] == 10 and record["n_dropped"] == 1
    assert record["dropped"] == [f"{flip.id}:cv0"] and record["agreement"] == 90.0
    assert sorted(plan.copies) == sorted(set(want) - {flip.id})
    assert all(v == ["cv0"] for v in plan.copies.values())
    assert record["shift"]["down"]["f0_ratio"] == pytest.approx(
        record["shift"]["down"]["pitch_factor"], rel=0.03)
    # without the check the flipped copy stays
    off = dataclasses.replace(config, augment=dataclasses.replace(config.augment,
                                                                  covada_check=False))
    plan = covada.plan(off, train, bank, StandIn(bank, train, conf, {(flip.id, "cv0")}),
                       ["happy", "sad"])
    assert plan.record["n_dropped"] == 0 and flip.id in plan.copies


def test_covada_off_is_the_model_as_before(utts, tmp_path):
    """Off, the logistic regression is fitted on exactly the rows it always was."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from emovox.dataset import group_of
    from emovox.ops import pool_stats

    options = [*LOGREG, "augment.speed_factors=[0.9]"]
    model = fit(load_recipe("whisper_logreg", options), utts, [], progress=False)
    other = fit(load_recipe("whisper_logreg", [*options, "augment.covada_share=0.9",
                                               "augment.covada_seed=3"]), utts, [],
                progress=False)
    np.testing.assert_array_equal(model.network.coef, other.network.coef)
    assert "covada" not in model.info
    # the rule before CO-VADA: every version of every utterance, versions outermost
    bank = FeatureBank(build_frontend(model.frontend_config), utts, None, "float16", False)
    bank.add_speeds(utts, [0.9])
    x = np.stack([pool_stats(model.normalizer(bank.get(u, v), group_of(u, "global")), -1)
                  for v in (1.0, 0.9) for u in utts])
    y = [model.labels.index(u.label) for u in utts] * 2
    scaler = StandardScaler().fit(x)
    weights = np.ones(x.shape[1])  # classic.layer_weights: none (float64, as in training)
    reference = LogisticRegression(C=1.0, max_iter=3000).fit(scaler.transform(x) * weights, y)
    np.testing.assert_array_equal(model.network.coef[1], reference.coef_[0])


def test_neural_covada_off_is_unchanged_and_on_trains_on_the_copies(utts, monkeypatch):
    base = fit(load_recipe("mll", FAST), utts, [], progress=False)
    again = fit(load_recipe("mll", [*FAST, "augment.covada_share=0.9"]), utts, [],
                progress=False)
    for a, b in zip(base.network.state_dict().values(), again.network.state_dict().values(),
                    strict=True):
        assert np.array_equal(a.numpy(), b.numpy())
    heard = _spy_versions(monkeypatch)
    model = fit(load_recipe("mll", [*FAST, *ON, "augment.covada_score=speed"]), utts, [],
                progress=False)
    record = model.info["covada"]
    assert record["score"] == "speed" and record["n_selected"] == 10
    dropped = {d.split(":")[0] for d in record["dropped"]}
    kept = set(record["selected"]) - dropped
    # each selected copy is heard once by the check; the kept ones then in training too
    times = Counter(i for i, v in heard if v == "cv0")
    assert set(times) == set(record["selected"])
    assert all(times[i] == 1 for i in dropped)
    assert sum(times[i] - 1 for i in kept) >= len(kept)  # 5 epochs, 1 in 2 draws


def _spy_versions(monkeypatch):
    heard = []
    get = FeatureBank.get

    def spy(self, utt, version=1.0):
        heard.append((utt.id, version))
        return get(self, utt, version)

    monkeypatch.setattr(FeatureBank, "get", spy)
    return heard


def test_classic_fit_with_covada_trains_on_training_speakers_copies_only(utts, monkeypatch):
    test_speaker = utts[-1].speaker
    train = [u for u in utts if u.speaker != test_speaker]
    test = [u for u in utts if u.speaker == test_speaker]
    scored = []
    probabilities = covada._probabilities

    def spy(model, bank, items, version=1.0):
        scored.extend(u.id for u in items)
        return probabilities(model, bank, items, version)

    monkeypatch.setattr(covada, "_probabilities", spy)
    f0_of = []
    median = FeatureBank.median_f0
    monkeypatch.setattr(FeatureBank, "median_f0",
                        lambda self, u: f0_of.append(u.id) or median(self, u))
    heard = _spy_versions(monkeypatch)
    bank = FeatureBank(build_frontend({"name": "logmel", "n_mels": 32}), utts, None, "float16",
                       False)
    model = fit(load_recipe("whisper_logreg", [*LOGREG, *ON, "augment.covada_C=1.0"]), train, [],
                extra=test, bank=bank, progress=False)
    record = model.info["covada"]
    test_ids = {u.id for u in test}
    assert scored and not test_ids & set(scored) and not test_ids & set(f0_of)
    assert not any(bank.voice_shift(u, "cv0") for u in test)
    assert test_speaker not in record["speaker_f0_hz"]
    assert record["n_scored"] == len(train) and record["n_selected"] == 10
    kept = set(record["selected"]) - {d.split(":")[0] for d in record["dropped"]}
    # the final model's rows: every clean recording, then the kept copies, no other
    rows = heard[-(len(train) + len(kept)):]
    assert rows[:len(train)] == [(u.id, 1.0) for u in train]
    assert rows[len(train):] == [(u.id, "cv0") for u in train if u.id in kept]
    plain = fit(load_recipe("whisper_logreg", LOGREG), train, [], extra=test, bank=bank,
                progress=False)
    assert not np.allclose(plain.network.coef, model.network.coef)


def test_the_covada_recipe_is_the_default_one_with_covada_on():
    default, ours = load_recipe("default").to_dict(), load_recipe("default_covada").to_dict()
    assert ours["augment"].pop("covada") is True and default["augment"].pop("covada") is False
    assert ours.pop("name") == "default_covada" and default.pop("name") == "default"
    assert ours == default  # every other value, the CO-VADA settings at their defaults too


def test_random_scores_are_the_seeds_and_ids_alone():
    u = [Utterance(f"c/{i:02d}", "", "c", f"s{i % 4}", "abc"[i % 3]) for i in range(60)]
    scores = covada.random_scores(18, u)
    assert scores.shape == (60,) and np.all((scores >= 0) & (scores < 1))
    np.testing.assert_array_equal(scores, covada.random_scores(18, u))  # deterministic
    np.testing.assert_array_equal(scores[::-1], covada.random_scores(18, u[::-1]))
    # a recording draws the same whatever the other recordings (the same in every fold)
    np.testing.assert_array_equal(scores[:10], covada.random_scores(18, u[:10]))
    assert not np.allclose(scores, covada.random_scores(19, u))
    # not the copies' factor stream: the same seed and id give another number
    assert len(set(np.round(scores, 6))) == 60


@pytest.mark.parametrize("per_class", [True, False])
def test_random_selection_takes_the_share_deterministically_and_depends_on_the_seed(per_class):
    # 3 classes of 20, 15 and 10 recordings
    u = [Utterance(f"c/{i:02d}", "", "c", f"s{i % 5}", "a" if i < 20 else "b" if i < 35 else "c")
         for i in range(45)]
    chosen = {}
    for seed in (18, 19):
        picks = [covada.select(u, covada.random_scores(seed, u), 0.3, per_class)
                 for _ in range(2)]
        assert picks[0] == picks[1]
        chosen[seed] = picks[0]
    counts = Counter(u[i].label for i in chosen[18])
    if per_class:
        assert counts == {"a": 6, "b": 5, "c": 3}  # 0.3 x 20, 15, 10 rounded half up
    else:
        assert sum(counts.values()) == 14  # 0.3 x 45 = 13.5, half up
    assert chosen[18] != chosen[19]
    assert covada.select(u, covada.random_scores(18, u), 1.0, per_class) == list(range(45))


def test_plan_with_the_random_score_ignores_the_early_models_confidence(utts, bank):
    train = [u for u in utts if u.speaker != utts[-1].speaker]  # 15 happy, 15 sad
    conf = {u.id: 0.5 + 0.01 * i for i, u in enumerate(train)}
    config = load_recipe("whisper_logreg", [*LOGREG, *ON, "augment.covada_score=random"])
    assert config.augment.covada_score == "random"
    want = covada.select(train, covada.random_scores(18, train), 0.3)
    picked = [train[i] for i in want]
    f0 = covada.speaker_f0(bank, train)
    bank.add_voice_copies(picked, [covada.copy_shifts(18, u.id, 1, f0[u.speaker])
                                   for u in picked])
    early = StandIn(bank, train, conf, set())
    record = covada.plan(config, train, bank, early, ["happy", "sad"]).record
    assert record["score"] == "random"
    assert record["selected"] == sorted(u.id for u in picked)
    assert record["selected_per_class"] == {"happy": 5, "sad": 5}
    assert record["n_copies"] == 10 and record["n_dropped"] == 0  # the same check ran
    # not what the early model's confidence would take (the 5 most confident of each class)
    by_conf = covada.select(train, [conf[u.id] for u in train], 0.3)
    assert by_conf != want


def test_fit_with_the_random_score_converts_the_seeded_draw(utts):
    train = [u for u in utts if u.speaker != utts[-1].speaker]
    picks = {}
    for seed in (18, 5):
        model = fit(load_recipe("whisper_logreg", [*LOGREG, *ON, "augment.covada_score=random",
                                                   f"augment.covada_seed={seed}"]),
                    train, [], progress=False)
        record = model.info["covada"]
        want = covada.select(train, covada.random_scores(seed, train), 0.3)
        assert record["score"] == "random" and record["n_selected"] == 10
        assert record["selected"] == sorted(train[i].id for i in want)
        assert record["selected_per_class"] == {"happy": 5, "sad": 5}
        assert record["early_accuracy"] is not None  # the check's early model was fitted
        picks[seed] = record["selected"]
    assert picks[18] != picks[5]
