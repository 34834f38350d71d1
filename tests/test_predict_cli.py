"""`emovox predict`: formats, exit codes, bad inputs, atomic output, plots (tiny model)."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox import inference
from emovox.cli import main
from test_inference import SR, bad_inputs, gap, tiny_checkpoint, voice


@pytest.fixture(scope="session")
def model(tmp_path_factory, tone_corpus):
    return str(tiny_checkpoint(tmp_path_factory, tone_corpus))


@pytest.fixture()
def folder(tmp_path):
    (tmp_path / "spk1").mkdir()
    (tmp_path / "spk2").mkdir()
    sf.write(tmp_path / "spk1" / "high.wav", voice(320, 1.0, 1), SR)
    sf.write(tmp_path / "spk1" / "low.flac", voice(120, 1.0, 2), SR)
    sf.write(tmp_path / "spk2" / "quiet.wav", gap(1.0), SR)
    (tmp_path / "spk2" / "readme.txt").write_text("not audio, not picked up")
    return tmp_path


def run(capsys, *args):
    try:
        code = main(["predict", *map(str, args)])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_json_records_and_exit_code_zero(model, folder, capsys):
    code, out, err = run(capsys, folder, "--model", model, "--format", "json", "--top-k", "1")
    assert code == 0, err
    docs = json.loads(out)
    assert [os.path.relpath(d["path"], folder) for d in docs] == [
        "spk1/high.wav", "spk1/low.flac", "spk2/quiet.wav"]
    assert [d["label"] for d in docs] == ["happy", "sad", "silence"]
    assert set(docs[0]["probabilities"]) == {"happy", "sad"} and len(docs[0]["top_k"]) == 1
    assert docs[2]["speech"] is False and docs[2]["probabilities"] == {} and docs[2]["note"]
    assert "Traceback" not in err and err == ""  # no progress bar when stderr is not a terminal


def test_jsonl_csv_and_table(model, folder, capsys):
    code, out, _ = run(capsys, folder, "--model", model, "--format", "jsonl", "--embeddings")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(lines) == 3 and len(lines[0]["embedding"]) == 16
    code, out, _ = run(capsys, folder, "--model", model, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and list(rows[0]) == ["path", "label", "uncertain", "error", "happy", "sad"]
    assert float(rows[0]["happy"]) + float(rows[0]["sad"]) == pytest.approx(1.0, abs=1e-5)
    assert rows[2]["label"] == "silence" and rows[2]["happy"] == ""
    code, out, _ = run(capsys, folder, "--model", model)
    assert code == 0 and "happy" in out and "silence" in out and "no speech detected" in out
    assert out.splitlines()[0].split() == ["path", "label", "p", "duration", "note"]


def test_bad_inputs_give_records_and_exit_code_one(model, tmp_path, capsys):
    expected = bad_inputs(tmp_path)
    expected["folder.wav"] = "no audio files found"  # the command line searches folders
    (tmp_path / "nothing").mkdir()
    paths = [tmp_path / name for name in expected] + [tmp_path / "nothing"]
    code, out, err = run(capsys, *paths, "--model", model, "--format", "jsonl")
    assert code == 1
    docs = [json.loads(line) for line in out.splitlines()]
    assert len(docs) == len(paths)
    for doc, (name, error) in zip(docs, expected.items(), strict=False):
        if error is None:
            assert doc["label"] in ("happy", "sad"), name
        else:
            assert set(doc) == {"path", "error"} and error in doc["error"], (name, doc)
    assert docs[-1]["path"] == str(tmp_path / "nothing")
    assert docs[-1]["error"].startswith("no audio files found")
    assert "Ærø ünïcødé 日本語.wav" in out
    assert "inputs failed" in err and "Traceback" not in err


def test_output_file_is_written_atomically(model, folder, tmp_path, capsys):
    target = tmp_path / "out.json"
    target.write_text("old")
    code, out, _ = run(capsys, folder / "spk1", "--model", model, "--format", "json",
                       "--output", target)
    assert code == 0 and out == ""
    assert len(json.loads(target.read_text())) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    code, _, err = run(capsys, folder, "--model", model, "--output", tmp_path / "no" / "x.json")
    assert code == 2 and "does not exist" in err


def test_usage_and_model_errors_exit_two_with_one_line(model, folder, tmp_path, capsys,
                                                       monkeypatch):
    cases = [
        (["--model", tmp_path / "missing.pt"], "checkpoint not found"),
        (["--model", model, "--top-k", "0"], "--top-k"),
        (["--model", model, "--hop", "5"], "hop"),
        (["--model", model, "--group-by", "speaker"], "--speakers"),
        (["--model", model, "--format", "xml"], "invalid choice"),
    ]
    for extra, message in cases:
        code, out, err = run(capsys, folder, *extra)
        assert code == 2 and message in err and out == "", (extra, err)
        assert len(err.strip().splitlines()) == 1
    monkeypatch.setattr(inference, "DEFAULT_MODEL", "pretrained/not-there.pt")
    code, _, err = run(capsys, folder)
    assert code == 2
    assert err.startswith("emovox: error: the bundled default model is missing")


def test_group_by_options(model, folder, capsys):
    table = folder / "speakers.csv"
    table.write_text("path,speaker\nspk1/high.wav,a\nspk1/low.flac,a\nspk2/quiet.wav,b\n")
    code, out, err = run(capsys, folder / "spk1", folder / "spk2", "--model", model,
                         "--format", "json", "--group-by", "speaker", "--speakers", table)
    assert code == 0, err
    by_speaker = json.loads(out)
    code, out, _ = run(capsys, folder / "spk1", folder / "spk2", "--model", model, "--format",
                       "json", "--group-by", "folder")
    assert code == 0 and json.loads(out) == by_speaker
    code, out, _ = run(capsys, folder, "--model", model, "--format", "json", "--group-by", "file")
    assert code == 0 and len(json.loads(out)) == 3


def test_timeline_plot_and_no_recursion(model, tmp_path, capsys):
    sf.write(tmp_path / "talk.wav", np.concatenate([gap(1), voice(320, 2, 1), gap(1.5),
                                                    voice(120, 2, 2), gap(1)]), SR)
    (tmp_path / "sub").mkdir()
    sf.write(tmp_path / "sub" / "deep.wav", voice(300, 1.0), SR)
    code, out, err = run(capsys, tmp_path, "--no-recursive", "--model", model, "--timeline",
                         "--window", "1", "--hop", "0.5", "--plot", tmp_path / "t.png")
    assert code == 0, err
    assert "timeline of" in out and "silence" in out and "deep.wav" not in out
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    code, out, _ = run(capsys, tmp_path / "talk.wav", "--model", model, "--format", "json",
                       "--window", "1", "--hop", "0.5", "--timeline-after", "5")
    doc = json.loads(out)[0]
    assert code == 0 and len(doc["timeline"]) == 14 and doc["timeline"][0]["label"] == "silence"


def test_whole_process_never_shows_a_traceback(model, tmp_path):
    sf.write(tmp_path / "ok.wav", voice(320, 1.0), SR)
    (tmp_path / "bad.wav").write_text("text")
    proc = subprocess.run(
        [sys.executable, "-m", "emovox", "predict", str(tmp_path), "--model", model,
         "--format", "jsonl", "--threads", "1"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    docs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert docs[0]["error"].startswith("not an audio file") and docs[1]["label"] == "happy"


def test_progress_bar_draws_on_one_line(capsys):
    from emovox.cli import _ProgressBar

    bar = _ProgressBar(40, width=10)
    for done in range(1, 41):
        bar(done, 40)
    err = capsys.readouterr().err
    assert err.endswith("[##########] 40/40 recordings\n")
    assert err.count("\n") == 1 and err.count("\r") == 11  # drawn only when it moves


def test_min_confidence_marks_answers_the_model_is_unsure_of(model, folder, capsys):
    code, out, _ = run(capsys, folder, "--model", model, "--format", "json")
    records = [r for r in json.loads(out) if r["speech"]]
    assert code == 0 and records and not any(r["uncertain"] for r in records)
    code, out, _ = run(capsys, folder, "--model", model, "--format", "json",
                       "--min-confidence", "1")
    flagged = [r for r in json.loads(out) if r["speech"]]
    assert all(r["uncertain"] and r["note"].startswith("uncertain") for r in flagged)
    # the label stays the best guess
    assert [r["label"] for r in flagged] == [r["label"] for r in records]
    code, out, _ = run(capsys, folder, "--model", model, "--min-confidence", "1")
    assert code == 0 and "?" in out and "uncertain" in out
    silent = [r for r in json.loads(run(capsys, folder, "--model", model, "--format", "json",
                                        "--min-confidence", "1")[1]) if not r["speech"]]
    assert silent and not any(r["uncertain"] for r in silent)


def test_a_bad_min_confidence_is_refused_before_any_work(model, folder, capsys):
    code, out, err = run(capsys, folder, "--model", model, "--min-confidence", "1.5")
    assert code == 2 and out == "" and "min_confidence" in err and "Traceback" not in err


def test_the_output_format_follows_the_file_name_unless_given(model, folder, tmp_path, capsys):
    for name, check in (("o.csv", lambda t: t.startswith("path,label,uncertain,error")),
                        ("o.jsonl", lambda t: json.loads(t.splitlines()[0])["path"]),
                        ("o.json", lambda t: isinstance(json.loads(t), list)),
                        ("o.txt", lambda t: t.startswith("path "))):
        code, _, _ = run(capsys, folder, "--model", model, "-o", tmp_path / name)
        assert code == 0 and check((tmp_path / name).read_text()), name
    code, _, _ = run(capsys, folder, "--model", model, "-o", tmp_path / "x.csv", "--format", "json")
    assert code == 0 and isinstance(json.loads((tmp_path / "x.csv").read_text()), list)


def test_the_bundled_model_is_nameable_and_bad_options_point_to_the_subcommand(folder, capsys):
    code, out, err = run(capsys, folder / "spk1" / "high.wav", "--model", "default",
                         "--format", "json")
    assert code == 0 and json.loads(out)[0]["label"] and err == ""
    code, out, err = run(capsys, folder, "--bogus")
    assert code == 2 and "unrecognized arguments: --bogus" in err
    assert "see emovox predict --help" in err


def test_evaluate_and_export_take_the_bundled_model_by_name(tone_corpus, tmp_path, capsys):
    code = main(["evaluate", "--model", "default", "--corpus", "manifest", "--root",
                 str(tone_corpus), "--format", "json", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out)["model"] == "default", err
    code = main(["evaluate", "--model", "nowhere.pt", "--corpus", "manifest", "--root",
                 str(tone_corpus)])
    out, err = capsys.readouterr()
    assert code == 2 and "nowhere.pt: checkpoint not found" in err and "'default'" in err


@pytest.mark.parametrize("option", ["--output", "--plot"])
def test_unusable_output_paths_fail_before_any_recording_is_read(model, folder, tmp_path,
                                                                 capsys, monkeypatch, option):
    from emovox import inference

    def never(*args, **kwargs):
        raise AssertionError("recognition started")

    monkeypatch.setattr(inference.Recognizer, "predict_files", never)
    code, out, err = run(capsys, folder, "--model", model, option, tmp_path / "no" / "x.png")
    assert code == 2 and "does not exist" in err and option in err
    code, out, err = run(capsys, folder, "--model", model, option, tmp_path)
    assert code == 2 and "is a folder" in err


def test_csv_carries_the_timeline_and_embeddings_need_json(model, folder, capsys):
    code, out, _ = run(capsys, folder / "spk1" / "high.wav", "--model", model, "--format", "csv",
                       "--timeline")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and list(rows[0])[:3] == ["path", "start", "end"]
    overall, windows = rows[0], rows[1:]
    assert overall["start"] == "" and overall["label"] in ("happy", "sad")
    assert windows and all(float(w["end"]) > float(w["start"]) for w in windows)
    code, out, err = run(capsys, folder, "--model", model, "--embeddings")
    assert code == 2 and "json, jsonl and parquet only" in err and out == ""


def test_a_clip_too_short_to_judge_gets_an_error_not_an_emotion(model, tmp_path, capsys):
    sf.write(tmp_path / "blip.wav", voice(320, 0.1, 1), SR)
    sf.write(tmp_path / "word.wav", voice(320, 0.6, 1), SR)
    code, out, err = run(capsys, tmp_path, "--model", model, "--format", "json")
    records = {Path(r["path"]).name: r for r in json.loads(out)}
    assert code == 1 and "too short for emotion recognition" in records["blip.wav"]["error"]
    assert "at least 0.5 s" in records["blip.wav"]["error"]
    assert records["word.wav"]["label"] in ("happy", "sad")


def test_recognising_commands_default_to_one_thread_and_say_so():
    from emovox.cli import DEFAULT_THREADS, build_parser

    parser = build_parser()
    for argv in (["predict", "x.wav"], ["listen", "--stdin"]):
        assert parser.parse_args(argv).threads == DEFAULT_THREADS == 1
    assert parser.parse_args(["serve"]).threads is None  # serve: cores / workers
    assert "default 1" in parser.subcommands["predict"].format_help()
