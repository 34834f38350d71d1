"""emovox fairness: per-group scores, gaps, the speaker bootstrap, both sources, the CLI."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_DATA
from emovox import fairness
from emovox.cli import main
from emovox.corpora import load_corpus
from emovox.errors import EmovoxError
from emovox.fairness import report
from test_inference import tiny_checkpoint


def rows(spec):
    """(speaker, group, [(truth, pred), ...]) -> the four sequences report() takes."""
    truth, pred, speakers, groups = [], [], [], []
    for speaker, group, pairs in spec:
        for t, p in pairs:
            truth.append(t)
            pred.append(p)
            speakers.append(speaker)
            groups.append(group)
    return truth, pred, speakers, groups


def run(capsys, *argv):
    code = main(["fairness", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


# --- the numbers ---------------------------------------------------------------------------


#: Group f: every answer right. Group m: one "b" of speaker m1 called "a".
HAND = rows([
    ("f1", "f", [("a", "a"), ("b", "b"), ("c", "c")]),
    ("f2", "f", [("a", "a"), ("b", "b"), ("c", "c")]),
    ("m1", "m", [("a", "a"), ("b", "a"), ("c", "c")]),
    ("m2", "m", [("a", "a"), ("b", "b"), ("c", "c")]),
])


def test_hand_computed_scores_and_gaps():
    doc = report(*HAND, ["a", "b", "c"], n_boot=0)
    f, m = doc["groups"]["f"], doc["groups"]["m"]
    assert (f["n"], f["n_speakers"], f["ua"], f["wa"], f["macro_f1"]) == (6, 2, 100.0, 100.0,
                                                                          100.0)
    assert m["tpr"] == {"a": 100.0, "b": 50.0, "c": 100.0}
    assert m["ua"] == pytest.approx(83.33) and m["wa"] == pytest.approx(83.33)
    # F1: a 2*2/(2+3) = 0.8, b 2*1/(2+1) = 0.667, c 1.0
    assert m["macro_f1"] == pytest.approx(100 * (0.8 + 2 / 3 + 1) / 3, abs=0.01)
    assert m["prediction_rate"] == pytest.approx({"a": 50.0, "b": 16.67, "c": 33.33})
    assert m["fpr"] == {"a": 25.0, "b": 0.0, "c": 0.0}  # 1 of the 4 non-"a" called "a"
    gaps = doc["gaps"]
    assert gaps["tpr_gap_per_class"] == {"a": 0.0, "b": 50.0, "c": 0.0}
    assert gaps["tpr_gap"] == pytest.approx(16.67)  # the mean over classes, not the largest
    assert gaps["dp_gap_per_class"] == pytest.approx({"a": 16.67, "b": 16.67, "c": 0.0})
    assert gaps["dp_gap"] == pytest.approx(16.67)  # the largest over classes, not the mean
    assert gaps["equalised_odds_per_class"] == {"a": 25.0, "b": 50.0, "c": 0.0}
    assert gaps["equalised_odds"] == 50.0
    assert gaps["truth_rate_gap"] == 0.0
    assert f["ua_ci"] is None and gaps["tpr_gap_ci"] is None  # no bootstrap asked for
    assert doc["overall"]["wa"] == pytest.approx(100 * 11 / 12, abs=0.01)


def test_a_prediction_outside_the_classes_is_wrong_and_a_class_absent_has_no_tpr():
    doc = report(*rows([
        ("f1", "f", [("a", "silence"), ("b", "b")]), ("f2", "f", [("a", "a"), ("b", "b")]),
        ("m1", "m", [("b", "b")]), ("m2", "m", [("b", "a")]),
    ]), ["a", "b"], n_boot=50)
    f, m = doc["groups"]["f"], doc["groups"]["m"]
    assert f["tpr"] == {"a": 50.0, "b": 100.0} and f["wa"] == 75.0
    assert m["tpr"] == {"a": None, "b": 50.0} and m["tpr_ci"]["a"] is None
    assert doc["gaps"]["tpr_gap_per_class"] == {"a": None, "b": 50.0}
    assert doc["gaps"]["tpr_gap"] == 50.0  # class a left out of the mean
    assert any("no utterance of a" in note for note in doc["notes"])


def synthetic(seed=0, speakers=8, per_speaker=30):
    """Two groups of speakers, each speaker with its own accuracy."""
    rng = np.random.default_rng(seed)
    spec = []
    for group, base in (("f", 0.8), ("m", 0.65)):
        for s in range(speakers):
            skill = np.clip(base + 0.1 * rng.normal(), 0, 1)
            pairs = []
            for i in range(per_speaker):
                t = "abc"[i % 3]
                pairs.append((t, t if rng.random() < skill else "abc"[(i + 1) % 3]))
            spec.append((f"{group}{s}", group, pairs))
    return rows(spec)


def test_every_interval_holds_its_estimate_and_a_seed_repeats_it():
    data = synthetic()
    doc = report(*data, "abc", n_boot=300, seed=3)
    assert doc == report(*data, "abc", n_boot=300, seed=3)
    other = report(*data, "abc", n_boot=300, seed=4)
    assert other["groups"]["f"]["ua_ci"] != doc["groups"]["f"]["ua_ci"]
    assert other["groups"]["f"]["ua"] == doc["groups"]["f"]["ua"]
    checked = 0
    for g in ("f", "m"):
        e = doc["groups"][g]
        for key in ("ua", "wa", "macro_f1"):
            lo, hi = e[f"{key}_ci"]
            assert lo <= e[key] <= hi and hi - lo > 1, (g, key)
            checked += 1
        for c in "abc":
            lo, hi = e["tpr_ci"][c]
            assert lo <= e["tpr"][c] <= hi
            checked += 1
    gaps = doc["gaps"]
    for key in ("tpr_gap", "dp_gap", "equalised_odds"):
        lo, hi = gaps[f"{key}_ci"]
        assert 0 <= lo <= gaps[key] <= hi, key
        assert gaps[f"{key}_bias"] is not None
        checked += 1
    for c in "abc":
        lo, hi = gaps["tpr_gap_per_class_ci"][c]
        assert lo <= gaps["tpr_gap_per_class"][c] <= hi
    assert checked == 15
    assert doc["bootstrap"]["n_boot"] == 300 and doc["bootstrap"]["seed"] == 3


def test_the_bootstrap_resamples_speakers_not_utterances():
    """One speaker of four always wrong: drawing speakers gives a wide interval.

    Resampling the 200 utterances would give WA 75 +- about 6; resampling the 4 speakers gives
    0 to 2 (or more) copies of the wrong one: from 50 % (or less) to 100 %.
    """
    spec = [(f"s{k}", "g", [("a", "a" if k else "b")] * 50) for k in range(4)]
    spec += [(f"t{k}", "h", [("a", "a")] * 50) for k in range(4)]
    doc = report(*rows(spec), ["a", "b"], n_boot=500, seed=0)
    g = doc["groups"]["g"]
    assert g["wa"] == 75.0
    lo, hi = g["wa_ci"]
    assert lo <= 50.0 and hi == 100.0, g["wa_ci"]
    assert doc["groups"]["h"]["wa_ci"] == [100.0, 100.0]


def test_each_replicate_is_whole_speakers_drawn_within_the_group():
    speakers = [np.arange(0, 3), np.arange(3, 10), np.arange(10, 11)]
    reps = fairness._speaker_resamples(speakers, 200, np.random.default_rng(0))
    assert len(reps) == 200
    drawn_counts = set()
    for idx in reps:
        counts = np.bincount(idx, minlength=11)
        drawn = []
        for block in speakers:
            times = counts[block]
            assert len(set(times.tolist())) == 1  # all of a speaker's utterances, or none
            drawn.append(int(times[0]))
        assert sum(drawn) == len(speakers)  # the group keeps its speaker count
        drawn_counts.add(tuple(drawn))
    assert len(drawn_counts) > 5  # and the draws vary


def test_a_group_with_too_few_speakers_is_reported_and_left_out_of_the_gaps():
    data = rows([
        ("f1", "f", [("a", "a"), ("b", "b")]), ("f2", "f", [("a", "a"), ("b", "a")]),
        ("m1", "m", [("a", "b"), ("b", "b")]), ("m2", "m", [("a", "a"), ("b", "b")]),
        ("x1", "x", [("a", "b"), ("b", "a")] * 3),
    ])
    doc = report(*data, ["a", "b"], n_boot=100)
    assert doc["groups"]["x"] == {"too_small": True, "n_speakers": 1, "n": 6}
    assert doc["gaps"]["groups"] == ["f", "m"]
    assert doc["gaps"]["tpr_gap"] == 50.0  # f: a 100, b 50; m: a 50, b 100
    assert any("'x'" in note and "too small" in note for note in doc["notes"])
    alone = report(*data, ["a", "b"], n_boot=100, min_speakers=3)
    assert all(e.get("too_small") for e in alone["groups"].values())
    assert alone["gaps"]["tpr_gap"] is None and alone["gaps"]["dp_gap_ci"] is None


def test_report_rejects_what_it_cannot_judge():
    with pytest.raises(EmovoxError, match="one each"):
        report(["a"], ["a", "b"], ["s"], ["g"], ["a"])
    with pytest.raises(EmovoxError, match="not among the classes"):
        report(["z"], ["a"], ["s"], ["g"], ["a"])
    with pytest.raises(EmovoxError, match="nothing to audit"):
        report([], [], [], [], ["a"])


# --- groups --------------------------------------------------------------------------------


def test_group_columns_and_a_missing_one(tone_corpus):
    utts = load_corpus("manifest", tone_corpus)
    assert fairness.group_columns(utts) == ["corpus", "gender", "speaker_cluster"]
    assert set(fairness.group_values(utts, "gender")) == {"female", "male"}
    with pytest.raises(EmovoxError) as err:
        fairness.group_values(utts, "age")
    assert str(err.value) == ("no group column 'age' in this data (columns: corpus, gender, "
                              "speaker_cluster)")


def test_speaker_clusters_split_speakers_by_their_voice_pitch(tone_corpus):
    pytest.importorskip("parselmouth")
    utts = load_corpus("manifest", tone_corpus)
    clusters, boundary = fairness.speaker_clusters(utts)
    assert len(clusters) == 6 and set(clusters.values()) == {"low_f0", "high_f0"}
    base = {f"custom/spk{s}": 110 + 15 * s for s in range(6)}  # the fixture's base pitches
    low = [base[s] for s, c in clusters.items() if c == "low_f0"]
    high = [base[s] for s, c in clusters.items() if c == "high_f0"]
    assert max(low) < min(high)
    assert 110 < boundary < 600


# --- the command line ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(tmp_path_factory, tone_corpus):
    return str(tiny_checkpoint(tmp_path_factory, tone_corpus))


def test_cli_model_on_a_manifest_prints_the_names_other_tools_read(model, tone_corpus, capsys,
                                                                   tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "fair.png"
    code, out, err = run(capsys, "--model", model, "--corpus", "manifest", "--root", tone_corpus,
                         "--format", "json", "--bootstrap", "200", "--plot", plot)
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc["groups"]) == {"female", "male"}
    for entry in doc["groups"].values():
        assert {"ua", "ua_ci", "n_speakers", "n", "wa", "macro_f1", "tpr", "tpr_ci"} <= set(entry)
        assert entry["n_speakers"] == 3 and entry["n"] == 18
        lo, hi = entry["ua_ci"]
        assert 0 <= lo <= entry["ua"] <= hi <= 100
    assert {"tpr_gap", "tpr_gap_ci", "dp_gap", "dp_gap_ci", "equalised_odds",
            "equalised_odds_ci", "tpr_gap_per_class"} <= set(doc["gaps"])
    assert doc["group_by"] == "gender" and doc["classes"] == ["happy", "sad"]
    assert doc["source"] == {"kind": "model", "labels": ["happy", "sad"], "trained_on": None,
                             "model": model}
    assert doc["excluded"]["failed"] == 0 and doc["git_revision"] is not None
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, text, _ = run(capsys, "--model", model, "--corpus", "manifest", "--root", tone_corpus,
                        "--bootstrap", "200")
    assert code == 0 and "Fairness by gender" in text and "TPR gap (mean over classes)" in text
    assert f"{doc['groups']['female']['ua']:.1f} [" in text


def test_cli_a_missing_group_column_is_one_line(tone_corpus, capsys):
    code, out, err = run(capsys, "--corpus", "manifest", "--root", tone_corpus, "--group", "age",
                         "--format", "json")
    assert code == 2 and out == ""
    assert err == ("emovox: error: no group column 'age' in this data (columns: corpus, gender, "
                   "speaker_cluster)\n")


def test_cli_groups_too_small_to_judge_are_reported_not_raised(model, tone_corpus, capsys):
    code, out, err = run(capsys, "--model", model, "--corpus", "manifest", "--root", tone_corpus,
                         "--min-speakers", "4", "--format", "json", "--bootstrap", "20")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["groups"]["female"] == {"too_small": True, "n_speakers": 3, "n": 18}
    assert doc["gaps"]["tpr_gap"] is None and doc["gaps"]["dp_gap"] is None
    code, text, _ = run(capsys, "--model", model, "--corpus", "manifest", "--root", tone_corpus,
                        "--min-speakers", "4", "--bootstrap", "20")
    assert "too few speakers to judge" in text and "fewer than two groups" in text


def test_cli_checks_its_options_before_any_work(tone_corpus, capsys, tmp_path):
    code, _, err = run(capsys, "--corpus", "manifest", "--root", tone_corpus, "-o",
                       tmp_path / "missing" / "x.json")
    assert code == 2 and "does not exist" in err and err.count("\n") == 1
    code, _, err = run(capsys, "--root", tone_corpus)
    assert code == 2 and "--corpus NAME" in err
    code, _, err = run(capsys, "--corpus", "manifest", "--root", tone_corpus, "--model",
                       tmp_path / "none.pt")
    assert code == 2 and "checkpoint not found" in err


def cv_layout(folder: Path, tone_corpus: Path, wrong_speaker: bool = False) -> Path:
    """A results.json and two fold files as `emovox cv` writes them, on the tone corpus.

    Fold 1 tests spk0-spk2, fold 2 spk3-spk5; every prediction is right except spk0's and
    spk3's "sad" ones.
    """
    utts = load_corpus("manifest", tone_corpus)
    (folder / "folds").mkdir(parents=True)
    folds = []
    for fold, tested in ((1, ["custom/spk0", "custom/spk1", "custom/spk2"]),
                         (2, ["custom/spk3", "custom/spk4", "custom/spk5"])):
        predictions = []
        for u in utts:
            if u.speaker not in tested:
                continue
            wrong = u.speaker in ("custom/spk0", "custom/spk3") and u.label == "sad"
            label = "happy" if wrong else u.label
            predictions.append({"id": u.id, "label": label,
                                "probabilities": {"happy": float(label == "happy"),
                                                  "sad": float(label == "sad")}})
        if wrong_speaker and fold == 2:
            predictions.append({**predictions[0], "id": "custom/s0_0"})
        record = {"fold": fold, "test_speakers": tested, "predictions": predictions}
        (folder / "folds" / f"fold_{fold}.json").write_text(json.dumps(record))
        folds.append({"fold": fold, "test_speakers": tested})
    results = folder / "results.json"
    results.write_text(json.dumps({"corpus": "manifest", "protocol": "speaker_kfold",
                                   "recipe": "test", "labels": ["happy", "sad"],
                                   "folds": folds, "missing_folds": [3]}))
    return results


def test_cli_audits_a_cv_run_from_its_stored_predictions(tone_corpus, capsys, tmp_path):
    results = cv_layout(tmp_path / "run", tone_corpus)
    code, out, err = run(capsys, "--results", results, "--root", tone_corpus, "--format", "json",
                         "--bootstrap", "100")
    assert code == 0, err
    doc = json.loads(out)
    # female: spk1, spk3, spk5 (spk3's 3 "sad" wrong); male: spk0 (3 wrong), spk2, spk4
    for g in ("female", "male"):
        assert doc["groups"][g]["tpr"] == {"happy": 100.0, "sad": pytest.approx(66.67)}
        assert doc["groups"][g]["n"] == 18
    assert doc["gaps"]["tpr_gap"] == 0.0
    assert doc["source"]["kind"] == "cv_results" and doc["source"]["folds"] == [1, 2]
    assert any("incomplete" in note for note in doc["notes"])
    code, _, err = run(capsys, "--results", results, "--root", tone_corpus, "--corpus", "ravdess")
    assert code == 2 and "is a run on manifest" in err
    code, _, err = run(capsys, "--results", results, "--root", tone_corpus, "--model", "x.pt")
    assert code == 2 and "--model is not used" in err


def test_cli_a_fold_predicting_a_speaker_it_did_not_test_is_an_error(tone_corpus, capsys,
                                                                     tmp_path):
    results = cv_layout(tmp_path / "run", tone_corpus, wrong_speaker=True)
    code, _, err = run(capsys, "--results", results, "--root", tone_corpus)
    assert code == 2 and err.count("\n") == 1
    assert "custom/s0_0 is of speaker custom/spk0, not one of the fold's test speakers" in err


def test_cli_a_results_file_that_is_not_one(tone_corpus, capsys, tmp_path):
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps({"corpus": "manifest"}))
    code, _, err = run(capsys, "--results", bad, "--root", tone_corpus)
    assert code == 2 and "not an `emovox cv` results file" in err
    code, _, err = run(capsys, "--results", tmp_path / "none.json", "--root", tone_corpus)
    assert code == 2 and "not found" in err


# --- real speech ---------------------------------------------------------------------------


def corpus_subset(tmp_path: Path, name: str, pick) -> Path:
    """A corpus root of symbolic links to some of the real files (same names and layout)."""
    source = SHARED_DATA / name
    if not source.is_dir():
        pytest.skip(f"real corpus not available: {source}")
    root = tmp_path / name
    for path in sorted(source.rglob("*.flac")):
        if pick(path):
            target = root / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, target)
    return root


@pytest.mark.corpus
def test_bundled_model_on_real_ravdess_and_emodb(tmp_path, capsys):
    """Gender from the RAVDESS actor number and from the EmoDB speaker table."""
    ravdess = corpus_subset(tmp_path, "ravdess", lambda p: int(p.stem[-2:]) <= 6
                            and p.stem.split("-")[2] in ("01", "05", "04")
                            and p.stem.split("-")[4] == "01")
    code, out, err = run(capsys, "--corpus", "ravdess", "--root", ravdess, "--format", "json",
                         "--bootstrap", "200")
    assert code == 0, err
    doc = json.loads(out)
    assert {g: e["n_speakers"] for g, e in doc["groups"].items()} == {"female": 3, "male": 3}
    for entry in doc["groups"].values():
        assert entry["n"] >= 20 and len(entry["ua_ci"]) == 2 and entry["ua"] is not None
    assert {"tpr_gap", "tpr_gap_ci", "dp_gap", "dp_gap_ci"} <= set(doc["gaps"])
    assert "training recordings" in doc["notes"][0]  # the bundled model learnt RAVDESS
    emodb = corpus_subset(tmp_path, "emodb", lambda p: p.stem[:2] in ("03", "08", "10", "09")
                          and p.stem[5] in "WTN")
    code, out, err = run(capsys, "--corpus", "emodb", "--root", emodb, "--format", "json",
                         "--bootstrap", "200")
    assert code == 0, err
    doc = json.loads(out)
    assert {g: e["n_speakers"] for g, e in doc["groups"].items()} == {"female": 2, "male": 2}


def test_cli_cv_run_by_speaker_cluster_into_a_json_file(tone_corpus, capsys, tmp_path):
    pytest.importorskip("parselmouth")
    results = cv_layout(tmp_path / "run", tone_corpus)
    out_file = tmp_path / "fair.json"
    code, out, err = run(capsys, "--results", results, "--root", tone_corpus, "--group",
                         "speaker_cluster", "--bootstrap", "50", "-o", out_file)
    assert code == 0 and out == "", err
    doc = json.loads(out_file.read_text())  # json, from the file name
    assert set(doc["groups"]) == {"low_f0", "high_f0"} and doc["group_by"] == "speaker_cluster"
    assert any(note.startswith("speaker_cluster: speakers split in two by their median F0")
               for note in doc["notes"])
