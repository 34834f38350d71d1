"""The robustness harness on the tiny tone-corpus model: what it measures, and the CLI."""

import json

import numpy as np
import pytest

from emovox import Recognizer
from emovox.cli import main as cli_main
from emovox.corpora import load_corpus
from emovox.errors import ConfigError
from emovox.evaluate import classification_scores
from emovox.robustness import evaluate_conditions, single_emotion_speakers
from test_inference import tiny_checkpoint


@pytest.fixture(scope="module")
def model(tmp_path_factory, tone_corpus):
    return tiny_checkpoint(tmp_path_factory, tone_corpus)


@pytest.fixture(scope="module")
def utts(tone_corpus):
    return load_corpus("manifest", tone_corpus)


@pytest.fixture(scope="module")
def doc(model, utts):
    rec = Recognizer.from_checkpoint(model)
    return evaluate_conditions(rec, utts, ["white_0db", "gain_-20db", "telephone"],
                               adaptations=["none", "file", "speaker", "batch"], seed=3)


def test_clean_scores_are_what_emovox_predict_answers(model, utts, doc):
    rec = Recognizer.from_checkpoint(model)
    known = sorted(utts, key=lambda u: u.id)
    labels = [p.label for p in rec.predict_files([u.path for u in known])]
    expected = classification_scores([u.label for u in known], labels, doc["classes"])
    clean = doc["results"]["clean"]["none"]
    assert clean["ua"] == pytest.approx(expected["ua"]) and clean["n"] == len(known)
    assert list(doc["results"]) == ["clean", "white_0db", "gain_-20db", "telephone"]
    for name, runs in doc["drop"].items():
        for mode, drop in runs.items():
            assert drop["ua"] == pytest.approx(doc["results"]["clean"][mode]["ua"]
                                               - doc["results"][name][mode]["ua"], abs=0.01)


def test_adaptation_modes_are_the_recognizers_groupings(model, utts, doc):
    rec = Recognizer.from_checkpoint(model)
    known = sorted(utts, key=lambda u: u.id)
    paths = [u.path for u in known]
    truth = [u.label for u in known]
    speakers = {__import__("os").path.abspath(u.path): u.speaker for u in known}
    for mode, options in (("speaker", {"group_by": "speaker", "speakers": speakers}),
                          ("batch", {"group_by": lambda _p: "all"}),
                          ("file", {"group_by": "file"})):
        labels = [p.label for p in rec.predict_files(paths, **options)]
        expected = classification_scores(truth, labels, doc["classes"])
        assert doc["results"]["clean"][mode]["ua"] == pytest.approx(expected["ua"]), mode


def test_silence_and_failures_count_as_wrong_and_shares_are_measured():
    from emovox.robustness import _score
    from emovox.types import Prediction

    preds = [Prediction("happy", {"happy": 0.9, "sad": 0.1}),
             Prediction("silence", {}, speech=False),
             Prediction.failed("x.wav", "truncated"),
             Prediction("happy", {"happy": 0.6, "sad": 0.4})]
    r = _score(preds, ["happy", "sad", "sad", "happy"], ["happy", "sad"])
    assert r["ua"] == pytest.approx(50.0) and r["wa"] == pytest.approx(50.0)
    assert r["silence"] == 1 and r["failed"] == 1
    # shares over every recording: silence and failures are answers too
    assert r["prediction_share"] == {"happy": 50.0, "sad": 0.0}
    assert r["max_share_excess"] == {"class": "happy", "points": 0.0}
    # ECE over the two classified ones: both right, confidences 0.9 and 0.6
    assert r["ece"] == pytest.approx(100 * (0.1 + 0.4) / 2)


def test_the_harness_is_deterministic_and_order_free(model, utts, doc):
    rec = Recognizer.from_checkpoint(model)
    # other utterance order, another set of conditions around it: the same numbers
    again = evaluate_conditions(rec, list(reversed(utts)), ["white_0db"],
                                adaptations=["none", "speaker"], seed=3)
    for name in ("clean", "white_0db"):
        for mode in ("none", "speaker"):
            assert again["results"][name][mode] == doc["results"][name][mode]


def test_single_emotion_speakers_and_bad_options(model, utts):
    subset = single_emotion_speakers(utts, seed=0)
    per_speaker = {}
    for u in subset:
        per_speaker.setdefault(u.speaker, set()).add(u.label)
    assert all(len(labels) == 1 for labels in per_speaker.values())
    assert len(per_speaker) == len({u.speaker for u in utts})
    shown = [next(iter(v)) for v in per_speaker.values()]
    assert abs(shown.count("happy") - shown.count("sad")) <= 1
    rec = Recognizer.from_checkpoint(model)
    with pytest.raises(ConfigError, match="unknown adaptation"):
        evaluate_conditions(rec, utts, ["telephone"], adaptations=["room"])
    with pytest.raises(ConfigError, match="babble"):
        evaluate_conditions(rec, utts, ["babble_10db"])
    speech = [np.sin(np.arange(16000) * f / 16000).astype(np.float32) for f in (900, 1700)]
    assert evaluate_conditions(rec, utts[:4], ["babble_10db"], babble=speech)["n"] == 4
    # utterances are read at the model's rate
    from_utts = evaluate_conditions(rec, utts[:4], ["babble_10db"], babble=utts[-3:])
    assert from_utts["results"]["babble_10db"]["none"]["n"] == 4


def test_robustness_command(model, tone_corpus, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli_main(["robustness", "--model", str(model), "--corpus", "manifest", "--root",
                     str(tone_corpus), "--conditions", "telephone,gain_-20db", "--adaptations",
                     "none,file", "--composition", "--out", str(out), "-q"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "manifest: clean UA" in printed
    for name in ("manifest", "manifest-single-emotion-speakers"):
        doc = json.loads((out / name / "results.json").read_text())
        assert set(doc["results"]) == {"clean", "telephone", "gain_-20db"}
        assert doc["git_revision"] and doc["model"] == str(model)
        report = (out / name / "report.md").read_text()
        assert "| telephone |" in report and "## Normalisation: file" in report
        assert (out / name / "robustness.png").read_bytes()[:4] == b"\x89PNG"
    bad = cli_main(["robustness", "--corpus", "manifest", "--root", str(tone_corpus),
                    "--adaptations", "room", "--out", str(out)])
    assert bad == 2 and "unknown mode 'room'" in capsys.readouterr().err
    one = cli_main(["robustness", "--model", str(model), "--corpus", "manifest", "--root",
                    str(tone_corpus), "--conditions", "babble", "--out", str(out)])
    assert one == 2 and "--babble-corpus" in capsys.readouterr().err
    base = ["robustness", "--model", str(model), "--corpus", "manifest", "--root",
            str(tone_corpus), "--conditions", "telephone"]
    assert cli_main([*base, "--limit", "0", "--out", str(out)]) == 2
    assert "--limit must be at least 1" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert cli_main([*base, "--out", str(tmp_path / "file" / "sub")]) == 2
    err = capsys.readouterr().err
    assert "cannot create the folder" in err and len(err.strip().splitlines()) == 1


def test_in_corpus_robustness_trains_each_fold(tone_corpus, tmp_path, capsys):
    out = tmp_path / "cv"
    code = cli_main(["robustness", "--recipe", "whisper_logreg", "--set",
                     'frontend={name = "logmel", n_mels = 32}', "--cv", "--corpus", "manifest",
                     "--root", str(tone_corpus), "--conditions", "telephone", "--out", str(out),
                     "-q"])
    assert code == 0
    folder = next(out.iterdir())
    doc = json.loads((folder / "results.json").read_text())
    clean = doc["results"]["clean"]["none"]
    assert doc["folds"] == len(clean["fold_ua"]) >= 2
    assert clean["ua"] == pytest.approx(np.mean(clean["fold_ua"]), abs=0.01)
    assert doc["n"] == 36 and clean["n"] == 36  # every utterance tested once
    assert doc["drop"]["telephone"]["none"]["ua"] == pytest.approx(
        clean["ua"] - doc["results"]["telephone"]["none"]["ua"], abs=0.01)
    assert cli_main(["robustness", "--cv", "--corpus", "manifest", "--root", str(tone_corpus),
                     "--out", str(out)]) == 2
    assert "--cv trains the recipe" in capsys.readouterr().err


def test_folds_with_different_classes_merge_over_the_union():
    from emovox.robustness import _score, merge_folds
    from emovox.types import Prediction

    def run(truth, answers, classes):
        preds = [Prediction(a, {c: float(c == a) * 0.8 + 0.2 / len(classes) for c in classes})
                 for a in answers]
        r = _score(preds, truth, classes)
        return {"classes": classes, "n": len(truth), "adaptations": ["none"], "seed": 0,
                "conditions": {}, "results": {"clean": {"none": r}}, "drop": {}}

    a = run(["x", "y", "y"], ["x", "y", "x"], ["x", "y"])
    b = run(["x", "z"], ["x", "x"], ["x", "z"])
    merged = merge_folds([a, b])
    clean = merged["results"]["clean"]["none"]
    assert merged["classes"] == ["x", "y", "z"] and merged["n"] == 5 and merged["folds"] == 2
    assert clean["fold_ua"] == [75.0, 50.0] and clean["ua"] == pytest.approx(62.5)
    assert clean["per_class_recall"] == {"x": 100.0, "y": 50.0, "z": 0.0}
    confusion = np.asarray(clean["confusion"])
    assert confusion.sum() == 5 and confusion[0, 0] == 2 and confusion[2, 0] == 1
    # ECE over the five predictions together, not the mean of the folds' own ECEs
    from emovox.evaluate import expected_calibration_error

    conf = [0.9, 0.9, 0.9, 0.9, 0.9]
    right = [1, 1, 0, 1, 0]
    probs = np.array([[c, 1 - c] for c in conf])
    pooled = expected_calibration_error([0 if r else 1 for r in right], probs)
    assert clean["ece"] == pytest.approx(100 * pooled)
    assert clean["ece_fold_mean"] == pytest.approx(np.mean(
        [a["results"]["clean"]["none"]["ece"], b["results"]["clean"]["none"]["ece"]]))


def test_a_drop_over_folds_carries_its_standard_error():
    from emovox.robustness import fold_drop_se, merge_folds

    def fold(clean, noisy):
        row = {"ua": 0.0, "wa": 0.0, "macro_f1": 0.0, "ece": 0.0, "n": 1, "silence": 0,
               "failed": 0, "per_class_recall": {}, "prediction_share": {}, "truth_share": {},
               "confusion": [[1]], "labels": ["x"]}
        return {"classes": ["x"], "n": 1, "adaptations": ["none"], "seed": 0, "conditions": {},
                "results": {"clean": {"none": {**row, "ua": clean}},
                            "babble": {"none": {**row, "ua": noisy}}}, "drop": {}}

    merged = merge_folds([fold(80.0, 76.0), fold(70.0, 68.0), fold(90.0, 84.0)])
    drop = merged["drop"]["babble"]["none"]
    assert drop["ua"] == pytest.approx(4.0)
    # per-fold drops 4, 2, 6: sd 2, se 2 / sqrt(3)
    assert drop["ua_se"] == pytest.approx(2 / np.sqrt(3), abs=0.01)
    assert fold_drop_se([80.0], [70.0]) is None
    from emovox.robustness import render_report

    merged["results"]["babble"]["none"].update(max_share_excess={"class": "x", "points": 0.0},
                                                uncertain_share=None)
    merged["results"]["clean"]["none"].update(max_share_excess={"class": "x", "points": 0.0},
                                               uncertain_share=None)
    assert "| -4.0 ± 1.2 |" in render_report(merged)
    # a constant shift has no spread, whatever the folds' levels
    assert fold_drop_se([50.0, 90.0], [45.0, 85.0]) == 0.0


def test_the_uncertain_flag_is_scored_against_what_it_flags():
    from emovox.robustness import _score
    from emovox.types import Prediction

    preds = [Prediction("happy", {"happy": 0.9, "sad": 0.1}),
             Prediction("happy", {"happy": 0.55, "sad": 0.45}, uncertain=True),
             Prediction("sad", {"happy": 0.45, "sad": 0.55}, uncertain=True),
             Prediction("silence", {}, speech=False)]
    r = _score(preds, ["happy", "sad", "sad", "happy"], ["happy", "sad"])
    # 2 of the 3 spoken records flagged; the sure one right, 1 of the 2 flagged right
    assert r["uncertain_share"] == pytest.approx(66.67)
    assert r["accuracy_sure"] == 100.0 and r["accuracy_uncertain"] == 50.0


def test_a_run_records_the_revision_it_started_with(monkeypatch):
    from emovox import files

    answers = iter(["aaa", "bbb"])
    monkeypatch.setattr(files, "_revision", lambda cwd: next(answers))
    files._own_revision.cache_clear()
    try:
        first = files.git_revision()
        # the checkout moves on while the run goes: the record keeps what the run imported
        assert files.git_revision() == first == "aaa"
        assert files.provenance()["git_revision"] == "aaa"
        assert files.git_revision(".") == "bbb"  # another folder is asked afresh
    finally:
        files._own_revision.cache_clear()


def test_results_from_a_dirty_checkout_are_flagged_loudly(monkeypatch, capsys):
    from emovox import files

    monkeypatch.setattr(files, "_revision", lambda cwd: "c" * 40 + "-dirty")
    files._own_revision.cache_clear()
    files._warn_dirty.cache_clear()
    try:
        assert files.provenance()["git_revision"].endswith("-dirty")
        files.provenance()  # a second record in the same run: one warning is enough
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and "uncommitted changes" in err[0] and "cccccccccccc" in err[0]
        monkeypatch.setattr(files, "_revision", lambda cwd: "d" * 40)
        files._own_revision.cache_clear()
        files.provenance()
        assert capsys.readouterr().err == ""  # a clean checkout says nothing
    finally:
        files._own_revision.cache_clear()


def test_results_record_the_versions_of_the_packages_that_move_numbers():
    import subprocess
    import sys

    from emovox import files

    record = files.provenance()["packages"]
    assert set(record) == set(files.NUMERIC_PACKAGES)
    assert record["numpy"] == np.__version__ and record["emovox"]
    # read from metadata: recording them imports none of them
    code = ("import sys; from emovox.files import package_versions; v = package_versions(); "
            "print(v['torch'] is not None, 'torch' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[1:] == ["False", "False"]


def test_writing_results_does_not_make_the_revision_dirty(tmp_path):
    import subprocess

    from emovox import files

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    (tmp_path / "code.py").write_text("x = 1\n")
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "fold_1.json").write_text("{}")
    git("add", ".")
    git("commit", "-qm", "one")
    clean = files.git_revision(tmp_path)
    assert clean and not clean.endswith("-dirty")
    (results / "fold_1.json").write_text('{"ua": 50}')  # a run rewrote a committed result
    assert files.git_revision(tmp_path) == clean
    (tmp_path / "code.py").write_text("x = 2\n")  # the code changed
    assert files.git_revision(tmp_path) == clean + "-dirty"
