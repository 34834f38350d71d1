"""Scale-out: `predict --engine ray` gives the local records (errors included), survives a
worker that dies mid-batch, resumes from its journal; one-line errors for what it cannot do.

The Ray runs start a local Ray with 2 workers (tens of seconds each): they are ``slow`` (CI
runs them); the journal, resume and option checks run without Ray."""

import json
import os

import numpy as np
import pytest
import soundfile as sf

from emovox import distributed, errors, scale
from emovox.cli import main
from emovox.types import Prediction
from test_inference import SR, bad_inputs, voice


def run(capsys, *args):
    try:
        code = main(["predict", *map(str, args)])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def folder_of_recordings(tmp_path):
    """Voices of several pitches and lengths (one long enough for a timeline), bad files."""
    folder = tmp_path / "in"
    folder.mkdir()
    for k, (f0, seconds) in enumerate([(110, 1.5), (180, 2.0), (260, 1.0), (320, 2.5),
                                       (150, 1.2), (220, 8.0)]):
        sf.write(folder / f"voice{k}.wav", voice(f0, seconds, seed=k), SR)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "text.wav").write_text("this is not audio\n" * 20)
    data = (folder / "voice0.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(data[: len(data) // 2])
    sf.write(folder / "quiet.wav", np.zeros(SR, dtype=np.float32), SR)
    return folder


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def local_records(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    folder = folder_of_recordings(tmp)
    out = tmp / "local.jsonl"
    assert main(["predict", str(folder), "-o", str(out), "--timeline"]) == 1
    return folder, lines(out)


@pytest.mark.slow
def test_ray_engine_gives_exactly_the_local_records(local_records, tmp_path, capsys):
    folder, expected = local_records
    out = tmp_path / "ray.jsonl"
    code, _, err = run(capsys, folder, "-o", out, "--timeline", "--engine", "ray",
                       "--workers", "2", "--batch-size", "2")
    assert code == 1 and "3 of 10 inputs failed" in err and "Traceback" not in err
    got = lines(out)
    assert got == expected  # same order, labels, probabilities, timelines, errors
    errors_seen = [r["error"] for r in got if "error" in r]
    assert len(errors_seen) == 3 and any(e.startswith("empty file") for e in errors_seen)
    assert not os.path.exists(scale.journal_path(str(out)))  # done: no journal left
    # parquet: one row per record, the whole record kept
    import pyarrow.parquet as pq

    table_out = tmp_path / "ray.parquet"
    code, _, _ = run(capsys, folder, "-o", table_out, "--timeline", "--engine", "ray")
    table = pq.read_table(table_out)
    assert [json.loads(r) for r in table.column("record").to_pylist()] == expected
    assert table.column("path").to_pylist() == [r["path"] for r in expected]
    first = next(r for r in expected if "probabilities" in r and r["probabilities"])
    label = next(iter(first["probabilities"]))
    row = table.column("path").to_pylist().index(first["path"])
    assert table.column(label).to_pylist()[row] == first["probabilities"][label]


@pytest.mark.slow
def test_a_worker_that_dies_mid_batch_loses_and_duplicates_nothing(
        local_records, tmp_path, capsys, monkeypatch):
    folder, expected = local_records
    victim = str((folder / "voice3.wav").resolve())
    monkeypatch.setenv("EMOVOX_TEST_DIE_ON", victim)
    out = tmp_path / "ray.jsonl"
    code, _, err = run(capsys, folder, "-o", out, "--timeline", "--engine", "ray",
                       "--batch-size", "3")
    assert os.path.exists(victim + ".died")  # the worker did die (once) on that batch
    os.remove(victim + ".died")
    assert code == 1 and "Traceback" not in err
    got = lines(out)
    assert got == expected and len({r["path"] for r in got}) == len(got)


def test_resume_skips_what_the_journal_and_output_hold(tmp_path):
    out = str(tmp_path / "out.jsonl")
    paths = ["a.wav", "b.wav", "c.wav", "d.wav"]
    calls = []

    def work(todo, take):
        calls.append(list(todo))
        for path in todo:  # a retried batch hands a path twice: the first record stays
            take([{"path": path, "label": "sad"}])
            take([{"path": path, "label": "happy"}])

    # a run that stopped: two records journaled, the second cut short by the crash
    with open(scale.journal_path(out), "w") as handle:
        handle.write(json.dumps({"path": "a.wav", "label": "angry"}) + "\n")
        handle.write('{"path": "b.wav", "lab')
    done = scale.run_journaled(paths, out, "jsonl", work)
    assert calls == [["b.wav", "c.wav", "d.wav"]]
    assert [done[p]["label"] for p in paths] == ["angry", "sad", "sad", "sad"]
    journal = scale.read_journal(scale.journal_path(out))
    assert [journal[p]["label"] for p in paths] == ["angry", "sad", "sad", "sad"]
    # a finished output counts as done; --no-resume starts over
    with open(out, "w") as handle:
        handle.write("\n".join(json.dumps(done[p]) for p in paths) + "\n")
    scale.finish(out)
    calls.clear()
    assert scale.run_journaled(paths, out, "jsonl", work) == done and calls == []
    scale.run_journaled(paths, out, "jsonl", work, resume=False)
    assert calls == [paths]


def test_csv_output_reads_back_as_records(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    sf.write(folder / "a.wav", voice(200, 1.5), SR)
    (folder / "bad.wav").write_text("no audio")
    out = tmp_path / "out.csv"
    assert main(["predict", str(folder), "-o", str(out)]) == 1
    back = scale.read_output(str(out), "csv")
    record = Prediction.from_dict(back[str(folder / "a.wav")])
    assert record.label and abs(sum(record.probabilities.values()) - 1) < 1e-4
    assert back[str(folder / "bad.wav")]["error"].startswith("not an audio file")


def test_prediction_records_read_back_as_they_were_written(tmp_path):
    from emovox.inference import Recognizer

    rec = Recognizer.default(threads=1)
    x = np.concatenate([voice(180, 4.0, seed=1), np.zeros(SR, np.float32),
                        voice(240, 3.0, seed=2)])
    p = rec.predict_signal(x, SR, timeline=True, top_k=2)
    doc = json.loads(json.dumps(p.to_dict()))
    assert doc["timeline"] and Prediction.from_dict(doc).to_dict() == doc
    failed = Prediction.failed("x.wav", "empty file").to_dict()
    assert Prediction.from_dict(failed).to_dict() == failed


@pytest.mark.parametrize("args, message", [
    (("--engine", "ray"), "--engine ray writes a file: give -o"),
    (("--engine", "ray", "-o", "{tmp}/x.txt", "--format", "table"), "--engine ray writes jsonl"),
    (("--engine", "ray", "-o", "{tmp}/x.jsonl", "--plot", "{tmp}/p.png"),
     "--plot is not available with --engine ray"),
    (("--engine", "ray", "-o", "{tmp}/x.jsonl", "--group-by", "file"),
     "--group-by is not available with --engine ray"),
    (("--engine", "ray", "-o", "{tmp}/x.jsonl", "--workers", "0"), "--workers must be at least"),
    (("--engine", "ray", "-o", "{tmp}/x.jsonl", "--batch-size", "0"), "--batch-size must be"),
    (("--engine", "ray", "-o", "{tmp}/x.jsonl", "--ray-address", "nonsense"),
     "give HOST:PORT of the head"),
    (("--engine", "ray", "-o", "{tmp}/x.jsonl", "--ray-address", "127.0.0.1:9"),
     "no Ray head answers there"),
    (("--format", "parquet"), "--format parquet writes a file"),
])
def test_ray_options_are_checked_before_any_work(args, message, tmp_path, capsys):
    sf.write(tmp_path / "a.wav", voice(200, 1.0), SR)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, out, err = run(capsys, tmp_path / "a.wav", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.jsonl").exists()


def test_a_missing_ray_extra_is_named(tmp_path, capsys, monkeypatch):
    real = errors.require

    def require(module, extra):
        if module == "ray":
            raise errors.MissingExtraError(module, extra)
        return real(module, extra)

    monkeypatch.setattr(errors, "require", require)
    sf.write(tmp_path / "a.wav", voice(200, 1.0), SR)
    code, _, err = run(capsys, tmp_path / "a.wav", "--engine", "ray", "-o", tmp_path / "x.jsonl")
    assert code == 2 and "emovox[ray]" in err and len(err.strip().splitlines()) == 1


def test_manifest_lists_recordings_relative_to_its_folder(tmp_path, capsys):
    sub = tmp_path / "audio"
    sub.mkdir()
    sf.write(sub / "a.wav", voice(200, 1.5), SR)
    sf.write(tmp_path / "b.wav", voice(300, 1.5), SR)
    manifest = tmp_path / "list.csv"
    manifest.write_text(f"path,speaker\naudio/a.wav,s1\n{tmp_path / 'b.wav'},s2\nmissing.wav,s3\n")
    out = tmp_path / "out.jsonl"
    code, _, err = run(capsys, "--manifest", manifest, "-o", out)
    records = lines(out)
    assert code == 1 and [r["path"] for r in records] == [
        str(tmp_path / "audio/a.wav"), str(tmp_path / "b.wav"), str(tmp_path / "missing.wav")]
    assert records[2]["error"] == "file not found" and "label" in records[0]
    (tmp_path / "bad.csv").write_text("file\nx.wav\n")
    code, _, err = run(capsys, "--manifest", tmp_path / "bad.csv")
    assert code == 2 and "needs a header with a 'path' column" in err
    code, _, err = run(capsys)
    assert code == 2 and "give audio files or folders, or --manifest" in err


def test_bad_inputs_stay_one_line_records_with_the_ray_checks_in_place(tmp_path, capsys):
    # the local engine with the new options present: the old behaviour is unchanged
    expected = bad_inputs(tmp_path)
    out = tmp_path / "out.jsonl"
    code, _, _ = run(capsys, *[tmp_path / name for name in expected], "-o", out)
    records = {os.path.basename(r["path"]): r for r in lines(out)}
    for name, error in expected.items():
        assert (error is None) == ("error" not in records[name]), name


def test_each_process_gets_its_share_of_every_batch():
    # two processes split each batch one process would take; together they take all of it
    for length in (8, 7, 2):
        parts = [distributed.batch_share(length, rank, 2) for rank in range(2)]
        assert sorted(parts[0] + parts[1]) == list(range(length))
        assert abs(len(parts[0]) - len(parts[1])) <= 1
    # a batch smaller than the world is left out by every process alike
    assert [distributed.batch_share(1, rank, 2) for rank in range(2)] == [None, None]
    assert distributed.world() == distributed.World() and not distributed.World().distributed


@pytest.mark.slow
def test_torchrun_cv_trains_together_and_matches_one_process(tone_corpus, tmp_path):
    import subprocess
    import sys

    from conftest import TINY_MODEL

    sets = [x for s in [*TINY_MODEL, "optim.epochs=12", "augment.method=none"]
            for x in ("--set", s)]
    common = ["cv", "--corpus", "manifest", "--root", str(tone_corpus), "--recipe", "mll",
              *sets, "--folds", "1", "--cache", str(tmp_path / "cache"), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "emovox", *common, "--out",
                          str(tmp_path / "one")], env=env, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node",
                          "2", "--master-port", "29517", "-m", "emovox", *common, "--out",
                          str(tmp_path / "two")], env=env, capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-2000:]
    # rank 0 alone wrote and printed; the weights were the same on both processes at the end
    # (else train.py stops with "ended with different weights")
    assert two.stdout.count("results.json") == 1
    folds = [json.loads((tmp_path / d / "folds" / "fold_1.json").read_text())
             for d in ("one", "two")]
    assert abs(folds[0]["ua"] - folds[1]["ua"]) <= 3.0  # (seeds alone move it 50 points here)
    assert folds[1]["n_train"] == folds[0]["n_train"]


def test_readme_block_is_what_the_committed_results_give(load_benchmark):
    bench = load_benchmark("scale_out")
    doc = json.loads(bench.RESULTS.read_text()) if bench.RESULTS.exists() else {}
    text = bench.README.read_text()
    block = text.split(bench.START, 1)[1].split(bench.END, 1)[0].strip()
    assert block == bench.render(doc)
    seeds = doc.get("ddp_seeds", {})
    parts = [v for k, v in doc.items() if k != "ddp_seeds"] + list(seeds.values())
    for part in parts:  # every figure comes from a clean revision
        assert not part["git_revision"].endswith("-dirty")
    if seeds:  # the other seeds' pairs are read out
        assert f"with {len(seeds) + 1} training seeds" in block
        for k, v in seeds.items():
            assert (f"seed {k}: {v['runs']['one_process']['ua']:.1f} and "
                    f"{v['runs']['torchrun_2_processes']['ua']:.1f}") in block
