"""Targets beyond one label: distributions, VAD, the spherical regions, and training on them."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import TINY_MODEL, _voice
from emovox.bundle import load_checkpoint, save_checkpoint
from emovox.cli import main
from emovox.config import frontend_options, load_recipe
from emovox.corpora import load_corpus
from emovox.dataset import FeatureBank
from emovox.errors import ConfigError, CorpusError
from emovox.features import build_frontend
from emovox.losses import ccc_loss
from emovox.targets import (
    check_distribution,
    distribution_matrix,
    parse_scale,
    sphere_regions,
    spread_rate,
    vad_matrix,
)
from emovox.train import fit
from emovox.types import Utterance


def utt(i, label, **extra):
    return Utterance(id=f"x/{i}", path=f"{i}.wav", corpus="x", speaker="x/s", label=label,
                     extra=extra)


def test_distributions_are_checked_with_the_row_named():
    assert check_distribution({"anger": 0.25, "Sad": 0.75, "happy": 0}, "f.csv:2") == {
        "angry": 0.25, "sad": 0.75}
    for bad, message in [({"angry": 0.5}, "sums to 0.5, not 1"),
                         ({"angry": -0.5, "sad": 1.5}, "negative"),
                         ({"grumpy": 1.0}, "unknown emotion 'grumpy'"),
                         ({"angry": 0.5, "anger": 0.5}, "given twice"),
                         ({"angry": "lots"}, "not a number")]:
        with pytest.raises(CorpusError, match=message) as info:
            check_distribution(bad, "f.csv:7")
        assert str(info.value).startswith("f.csv:7: ") and "\n" not in str(info.value)


def test_a_recognition_rate_spreads_the_rest_evenly():
    spread = spread_rate("angry", 0.7, ["angry", "sad", "happy", "neutral"])
    assert spread == pytest.approx({"angry": 0.7, "sad": 0.1, "happy": 0.1, "neutral": 0.1})
    assert spread_rate("sad", 1.0, ["sad", "angry"]) == {"sad": 1.0, "angry": 0.0}


def test_scales_parse_and_reject_nonsense():
    assert parse_scale("1..5") == parse_scale("[1, 5]") == parse_scale("1-5") == (1.0, 5.0)
    assert parse_scale("-1:1") == (-1.0, 1.0)
    for bad in ("5..1", "one to five", "3"):
        with pytest.raises(CorpusError):
            parse_scale(bad)


def test_distribution_matrix_keeps_the_models_classes_and_falls_back_to_the_label():
    utts = [utt(0, "angry", label_distribution={"angry": 0.6, "sad": 0.2, "bored": 0.2}),
            utt(1, "sad"),
            utt(2, "bored", label_distribution={"bored": 1.0}),  # nothing on the classes
            utt(3, None, valence=2.0)]
    got = distribution_matrix(utts[:2], ["angry", "sad"])
    np.testing.assert_allclose(got, [[0.75, 0.25], [0.0, 1.0]])
    np.testing.assert_allclose(distribution_matrix(utts[:2], ["angry", "sad"], soft=False),
                               [[1, 0], [0, 1]])
    with pytest.raises(Exception, match="x/2: no label among the model's classes"):
        distribution_matrix(utts[:3], ["angry", "sad"])
    np.testing.assert_allclose(
        distribution_matrix(utts[3:], ["angry", "sad"], allow_unlabelled=True), [[0, 0]])


def test_sphere_regions_are_the_octants_and_radius_bands():
    unit = np.array([[0.5, 0.5, 0.5], [0.5, 0.5, -0.5], [-0.5, 0.5, 0.5], [-0.5, -0.5, 0.5],
                     [0.5, -0.5, 0.5], [np.nan, 0, 0], [0.9, 0.9, 0.9]])
    regions = sphere_regions(unit)
    assert regions.shape == (7, 8)
    assert len(set(regions[:5].argmax(axis=1))) == 5  # five different octants
    assert regions[5].sum() == 0 and regions[[0, 6]].argmax(axis=1).tolist() == [1, 1]
    banded = sphere_regions(unit, [1.0])  # |[0.5]*3| = 0.87 < 1 < |[0.9]*3| = 1.56
    assert banded.shape == (7, 16) and banded[0].argmax() != banded[6].argmax()
    assert banded[0].argmax() // 2 == banded[6].argmax() // 2  # same octant, other band


def test_ccc_loss_is_zero_for_a_perfect_prediction_and_ignores_missing_values():
    target = torch.tensor([[1.0, np.nan], [2.0, 1.0], [3.0, 2.0], [4.0, np.nan]])
    assert float(ccc_loss(target.nan_to_num(0.0), target.clone())) == pytest.approx(0, abs=1e-6)
    shifted = target.nan_to_num(0.0) + torch.tensor([0.0, 5.0])
    # dimension 1 has two values (rows 1 and 2): shifted by 5 -> CCC = 2*0.25/(0.5+25) ~ 0.02
    assert float(ccc_loss(shifted, target)) == pytest.approx((0 + 1 - 0.5 / 25.5) / 2, abs=1e-4)
    flipped = -target.nan_to_num(0.0)
    assert float(ccc_loss(flipped, target)) > 1.0


def write_manifest(tmp_path, header, rows):
    (tmp_path / "a.wav").write_bytes(b"")
    sf.write(tmp_path / "a.wav", np.zeros(1600, np.float32), 16000)
    lines = [header] + [f"a.wav,{r}" if not r.startswith("a.wav") else r for r in rows]
    (tmp_path / "manifest.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "manifest.csv"


def test_manifest_reads_distributions_and_scales_and_names_bad_rows(tmp_path):
    path = write_manifest(tmp_path, "path,label,speaker,start,end,p_angry,p_sad,valence,vad_scale",
                          ["angry,s1,0,0.05,0.8,0.2,2,1..5", ",s1,0.05,0.1,0.3,0.7,,",
                           ",s2,0.1,0.15,,,4.5,1-5"])
    a, b, c = sorted(load_corpus("manifest", path), key=lambda u: (u.speaker, u.start))
    assert a.extra["label_distribution"] == pytest.approx({"angry": 0.8, "sad": 0.2})
    assert a.extra["vad_scale"] == [1.0, 5.0] and a.extra["valence"] == 2.0
    assert b.label == "sad" and b.extra["label_distribution"] == pytest.approx({"angry": 0.3,
                                                                                "sad": 0.7})
    assert c.label is None and "label_distribution" not in c.extra and "p_angry" not in c.extra
    cases = [("angry,s1,,,0.5,0.2,,", "sums to 0.7"), ("angry,s1,,,-0.2,1.2,,", "negative"),
             ("angry,s1,,,,,6,1..5", "valence 6 is outside the declared scale 1..5"),
             ("angry,s1,,,,,2,5..1", "high end")]
    for row, message in cases:
        bad = write_manifest(tmp_path, "path,label,speaker,start,end,p_angry,p_sad,valence,"
                             "vad_scale", [row])
        with pytest.raises(CorpusError, match=message) as info:
            load_corpus("manifest", bad)
        assert ":2: " in str(info.value)
    unknown = write_manifest(tmp_path, "path,label,speaker,label_distribution",
                             ['angry,s1,"{""angry"": 0.5, ""smug"": 0.5}"'])
    with pytest.raises(CorpusError, match="manifest.csv:2: .*unknown emotion 'smug'"):
        load_corpus("manifest", unknown)
    as_json = write_manifest(tmp_path, "path,label,speaker,label_distribution",
                             ['angry,s1,"{""angry"": 0.5, ""sad"": 0.5}"'])
    assert load_corpus("manifest", as_json)[0].extra["label_distribution"] == {"angry": 0.5,
                                                                             "sad": 0.5}


@pytest.fixture(scope="module")
def vad_corpus(tmp_path_factory):
    """Tones whose valence is their pitch and arousal their loudness (a check of the
    machinery, not of emotion); labels from valence."""
    root = tmp_path_factory.mktemp("vad")
    rng = np.random.default_rng(0)
    rows = ["path,label,speaker,valence,arousal,vad_scale"]
    for s in range(6):
        for i in range(10):
            v, a = rng.uniform(1, 5, size=2)
            x = _voice(100 * 2 ** ((v - 1) / 4), 0.6, rng) * 10 ** ((a - 3) * 6 / 20)
            sf.write(root / f"s{s}_{i}.wav", np.clip(x, -1, 1), 16000)
            rows.append(f"s{s}_{i}.wav,{'happy' if v > 3 else 'sad'},spk{s},{v:.3f},{a:.3f},1..5")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return load_corpus("manifest", root / "manifest.csv")


def _tone(f0, tilt, gain, rng, seconds=0.6, sr=16000):
    """Harmonics of ``f0`` falling by ``k ** -tilt`` (brightness), scaled by ``gain``."""
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))) / sr
    x = sum(np.sin(k * phase) / k ** tilt for k in range(1, 12))
    env = np.minimum(1, np.minimum(t, t[-1] - t) * 20)
    return np.clip(gain * 0.15 * env * x + 0.005 * rng.normal(size=t.size), -1, 1)


@pytest.fixture(scope="module")
def vad_only_corpus(tmp_path_factory):
    """No labels at all: valence is pitch, arousal loudness, dominance brightness."""
    root = tmp_path_factory.mktemp("vadonly")
    rng = np.random.default_rng(1)
    rows = ["path,label,speaker,valence,arousal,dominance,vad_scale"]
    for s in range(6):
        for i in range(12):
            v, a, d = rng.uniform(-1, 1, size=3)
            x = _tone(160 * 2 ** (v / 2), 1.75 - 0.75 * d, 10 ** (a * 6 / 20), rng)
            sf.write(root / f"s{s}_{i}.wav", x.astype(np.float32), 16000)
            rows.append(f"s{s}_{i}.wav,,spk{s},{v:.3f},{a:.3f},{d:.3f},-1..1")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


def test_the_vad_recipe_trains_on_dimensions_alone(vad_only_corpus, tmp_path, capsys):
    out = tmp_path / "vad.pt"
    assert main(["train", "--corpus", "manifest", "--root", str(vad_only_corpus), "--recipe",
                 "vad", *sum((["--set", s] for s in [*TINY_MODEL, "optim.epochs=25",
                                                      "data.normalization=none"]), []),
                 "--out", str(out), "--cache", str(tmp_path)]) == 0
    capsys.readouterr()
    utts = load_corpus("manifest", vad_only_corpus)
    held = [u for u in utts if u.speaker == "custom/spk5"]
    assert main(["predict", *[u.path for u in held], "--model", str(out), "--format",
                 "jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(d["label"] is None and d["probabilities"] == {} for d in lines)
    truth = vad_matrix(held)
    got = np.array([[d["valence"], d["arousal"], d["dominance"]] for d in lines])
    assert np.all((got > -3) & (got < 3))  # on the declared scale's order, not standardised
    assert ccc(got[:, 0], truth[:, 0]) > 0.5 and ccc(got[:, 1], truth[:, 1]) > 0.5
    assert main(["predict", held[0].path, "--model", str(out)]) == 0
    table = capsys.readouterr().out
    assert "valence" in table and "arousal" in table


def ccc(p, t):
    return 2 * np.cov(p, t, bias=True)[0, 1] / (p.var() + t.var() + (p.mean() - t.mean()) ** 2)


def test_a_vad_head_learns_unseen_speakers_and_round_trips(vad_corpus, tmp_path, capsys):
    train = [u for u in vad_corpus if u.speaker not in ("custom/spk4", "custom/spk5")]
    test = [u for u in vad_corpus if u.speaker in ("custom/spk4", "custom/spk5")]
    config = load_recipe("mll", [*TINY_MODEL, "optim.epochs=20", "loss.vad=1",
                                 "data.normalization=none"])
    model = fit(config, train, [], cache_dir=tmp_path, progress=False)
    plan = model.info["vad"]
    assert plan["dimensions"] == ["valence", "arousal"] and plan["scale"] == [1.0, 5.0]
    bank = FeatureBank(build_frontend(frontend_options(config)), test, tmp_path, "float16", False)
    out = model.classify([bank.get(u) for u in test])
    truth = vad_matrix(test)
    assert np.isnan(out.dimensions[:, 2]).all()  # dominance was never given
    assert ccc(out.dimensions[:, 0], truth[:, 0]) > 0.6
    assert ccc(out.dimensions[:, 1], truth[:, 1]) > 0.6
    save_checkpoint(model, tmp_path / "m.pt")
    again = load_checkpoint(tmp_path / "m.pt").classify([bank.get(u) for u in test])
    np.testing.assert_allclose(again.dimensions[:, :2], out.dimensions[:, :2], rtol=1e-5)
    assert main(["predict", test[0].path, test[1].path, "--model", str(tmp_path / "m.pt"),
                 "--format", "jsonl", "--timeline"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [sorted(set(d) & {"valence", "arousal", "dominance"}) for d in lines] == [
        ["arousal", "valence"]] * 2
    assert abs(lines[0]["valence"] - out.dimensions[0, 0]) < 0.3  # same model, same recording
    assert all("valence" in w for w in lines[0]["timeline"] if w["speech"])
    plain = fit(load_recipe("mll", [*TINY_MODEL, "optim.epochs=2"]), train, [],
                cache_dir=tmp_path, progress=False)
    assert plain.classify([bank.get(u) for u in test]).dimensions is None


def test_the_spherical_auxiliary_needs_the_vad_head_and_all_three_dimensions(vad_corpus,
                                                                             tmp_path):
    with pytest.raises(ConfigError, match="needs LossConfig.vad"):
        load_recipe("mll", ["loss.sphere=0.5"])
    config = load_recipe("mll", [*TINY_MODEL, "optim.epochs=1", "loss.vad=1", "loss.sphere=1"])
    with pytest.raises(Exception, match="gives? only valence, arousal"):
        fit(config, vad_corpus, [], cache_dir=tmp_path, progress=False)


def test_logistic_regression_on_soft_targets_learns_the_shares(tone_corpus, tmp_path):
    utts = load_corpus("manifest", tone_corpus)
    # every happy recording was heard as happy by 70 % of raters, every sad one by 90 %
    soft = [Utterance(**{**u.to_dict(), "extra": {
        "label_distribution": {"happy": 0.7, "sad": 0.3} if u.label == "happy"
        else {"happy": 0.1, "sad": 0.9}}}) for u in utts]
    config = load_recipe("whisper_logreg", ['frontend={name = "logmel", n_mels = 32}',
                                            "data.targets=distribution", "classic.C=1.0"])
    model = fit(config, soft, [], cache_dir=tmp_path, progress=False)
    hard = fit(load_recipe("whisper_logreg", ['frontend={name = "logmel", n_mels = 32}',
                                              "classic.C=1.0"]), soft, [], cache_dir=tmp_path,
               progress=False)
    bank = FeatureBank(build_frontend(frontend_options(config)), soft, tmp_path, "float16", False)
    feats = [bank.get(u) for u in soft]
    happy = np.array([u.label == "happy" for u in soft])
    p_soft = model.classify(feats).probabilities[:, model.labels.index("happy")]
    p_hard = hard.classify(feats).probabilities[:, hard.labels.index("happy")]
    # the soft model's confidence follows the raters: near 0.7 on happy, 0.1 on sad
    assert abs(p_soft[happy].mean() - 0.7) < 0.1 and abs(p_soft[~happy].mean() - 0.1) < 0.1
    assert p_hard[happy].mean() > p_soft[happy].mean() + 0.1
    assert json.dumps(model.config.to_dict())  # the run records its target choice
    assert model.config.data.targets == "distribution"


def test_ldl_measures_match_their_definitions():
    from emovox.evaluate import ldl_measures

    t = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    same = ldl_measures(t, t)
    assert same["chebyshev"] == same["clark"] == same["canberra"] == pytest.approx(0.0)
    assert same["kl"] == pytest.approx(0.0) and same["intersection"] == pytest.approx(1.0)
    assert same["cosine"] == pytest.approx(1.0)
    p = np.array([[0.25, 0.75, 0.0], [0.5, 0.5, 0.0]])
    got = ldl_measures(t, p)
    assert got["chebyshev"] == pytest.approx((0.25 + 0.5) / 2)
    assert got["canberra"] == pytest.approx((0.25 / 0.75 + 0.25 / 1.25 + 0.5 / 1.5 + 1.0) / 2)
    assert got["clark"] == pytest.approx((np.sqrt((1 / 3) ** 2 + 0.2 ** 2)
                                          + np.sqrt((1 / 3) ** 2 + 1)) / 2)
    assert got["kl"] == pytest.approx((0.5 * np.log(2) + 0.5 * np.log(2 / 3) + np.log(2)) / 2)
    assert got["intersection"] == pytest.approx((0.75 + 0.5) / 2)


def test_the_readme_soft_target_table_is_what_the_committed_record_gives():
    import importlib.util
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("soft_targets",
                                                  repo / "benchmarks" / "soft_targets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    doc = json.loads((module.RESULTS / "soft_targets.json").read_text())
    readme = module.README.read_text()
    block = readme.split(module.START)[1].split(module.END)[0].strip()
    assert block == module.render(doc).strip()
    hard = doc["rows"]["whisper_logreg"]
    assert hard["folds"] == 10 and len(hard["per_fold"]) == 10
    assert abs(hard["mean"]["ua"] - json.loads(
        (module.RESULTS / "whisper_logreg" / "results.json").read_text())["mean"]["ua"]) < 0.01


def test_the_readme_synthetic_vad_line_is_what_the_committed_folds_give():
    import importlib.util
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("vad_synthetic",
                                                  repo / "benchmarks" / "vad_synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    block = module.README.read_text().split(module.START)[1].split(module.END)[0].strip()
    assert block == module.render().strip()
    # the rule that makes the corpus: the ends of the scale reach the ends of each setting
    low, high = module.style(np.full(3, -1.0)), module.style(np.full(3, 1.0))
    assert low["pitch"] < high["pitch"] and low["speed"] < high["speed"]
    assert high["gain_db"] - low["gain_db"] == pytest.approx(18) and high["gain_db"] <= 0


def test_cv_scores_ccc_per_fold_for_dimensions_alone(vad_only_corpus, tmp_path, capsys):
    sets = sum((["--set", s] for s in [*TINY_MODEL, "optim.epochs=6", "data.normalization=none",
                                       "loss.sphere=0"]), [])
    assert main(["cv", "--corpus", "manifest", "--root", str(vad_only_corpus), "--recipe",
                 "vad", *sets, "--folds", "1,2", "--out", str(tmp_path / "cv"),
                 "--cache", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "cv" / "results.json").read_text())
    assert doc["mean"]["ua"] is None and set(doc["mean"]["ccc"]) == {"valence", "arousal",
                                                                       "dominance"}
    fold = json.loads((tmp_path / "cv" / "folds" / "fold_1.json").read_text())
    assert fold["predictions"][0]["label"] is None and "valence" in fold["predictions"][0]
    truth = {u.id: u for u in load_corpus("manifest", vad_only_corpus)}
    mine = np.array([[p["valence"], truth[p["id"]].extra["valence"]]
                     for p in fold["predictions"]])
    assert fold["ccc"]["valence"] == pytest.approx(ccc(mine[:, 0], mine[:, 1]), abs=1e-3)
    assert "CCC valence" in (tmp_path / "cv" / "report.md").read_text()


def test_entropy_weighting_trusts_the_sure_member_more():
    from emovox.models import Ensemble, ModelOutput

    class Fixed(torch.nn.Module):
        def __init__(self, probs):
            super().__init__()
            self.logits = torch.log(torch.tensor([probs]))

        def forward(self, x, mask):
            return ModelOutput(logits=self.logits.expand(x.shape[0], -1),
                               embedding=torch.zeros(x.shape[0], 1))

    sure, unsure = Fixed([0.9, 0.05, 0.05]), Fixed([0.3, 0.4, 0.3])
    x, mask = torch.zeros(2, 3, 4), torch.ones(2, 3, dtype=torch.bool)
    mean = torch.softmax(Ensemble([sure, unsure])(x, mask).logits, dim=-1)[0]
    weighted = torch.softmax(Ensemble([sure, unsure], "entropy")(x, mask).logits, dim=-1)[0]
    assert float(mean[0]) == pytest.approx(0.6)
    h = [-(p * np.log(p)).sum() for p in (np.array([0.9, 0.05, 0.05]), np.array([0.3, 0.4, 0.3]))]
    w = np.exp(-np.array(h)) / np.exp(-np.array(h)).sum()
    assert float(weighted[0]) == pytest.approx(w[0] * 0.9 + w[1] * 0.3, rel=1e-5)
    assert float(weighted[0]) > float(mean[0])
    with pytest.raises(ConfigError, match="ensemble_weighting"):
        load_recipe("mll", ["optim.ensemble_weighting=vote"])


def test_cv_splits_its_scores_by_gender(tone_corpus, tmp_path):
    lines = tone_corpus.read_text().splitlines()
    rows = [lines[0] + ",p_happy,p_sad"]
    for line in lines[1:]:
        happy = line.split(",")[1] == "happy"
        rows.append(line + (",0.8,0.2" if happy else ",0.1,0.9"))
    manifest = tone_corpus.parent / "soft_manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    assert main(["cv", "--corpus", "manifest", "--root", str(manifest), "--recipe",
                 "whisper_logreg", "--set", 'frontend={name = "logmel", n_mels = 32}',
                 "--out", str(tmp_path / "cv"), "--cache", str(tmp_path), "--quiet"]) == 0
    doc = json.loads((tmp_path / "cv" / "results.json").read_text())
    folds = doc["folds"]
    by_gender = doc["mean"]["groups"]["gender"]
    assert set(by_gender) == {"female", "male"}
    assert by_gender["female"]["n"] + by_gender["male"]["n"] == sum(f["n"] for f in folds)
    assert set(by_gender["male"]["ldl"]) == {"chebyshev", "clark", "canberra", "kl", "cosine",
                                             "intersection"}
    # the n-weighted mean of the folds' female UA
    got = [(f["groups"]["gender"]["female"]["ua"], f["groups"]["gender"]["female"]["n"])
           for f in folds if "female" in (f.get("groups") or {}).get("gender", {})]
    assert by_gender["female"]["ua"] == pytest.approx(sum(u * n for u, n in got)
                                                      / sum(n for _, n in got))


def test_a_network_on_soft_targets_is_less_sure_than_on_labels(tone_corpus, tmp_path):
    utts = load_corpus("manifest", tone_corpus)
    soft = [Utterance(**{**u.to_dict(), "extra": {
        "label_distribution": {"happy": 0.6, "sad": 0.4} if u.label == "happy"
        else {"happy": 0.4, "sad": 0.6}}}) for u in utts]
    sets = [*TINY_MODEL, "optim.epochs=8", "augment.method=none", "loss.focal=0",
            "loss.center=0", "loss.supcon=0"]
    on_soft = fit(load_recipe("mll", [*sets, "data.targets=distribution"]), soft, [],
                  cache_dir=tmp_path, progress=False)
    on_labels = fit(load_recipe("mll", sets), soft, [], cache_dir=tmp_path, progress=False)
    bank = FeatureBank(build_frontend(frontend_options(on_soft.config)), soft, tmp_path,
                       "float16", False)
    feats = [bank.get(u) for u in soft]
    top_soft = on_soft.classify(feats).probabilities.max(axis=1).mean()
    top_hard = on_labels.classify(feats).probabilities.max(axis=1).mean()
    assert top_soft < 0.7 < top_hard  # KL to 0.6/0.4 caps the confidence the labels push up
