"""The recognizer on a tiny model trained on the synthetic tone corpus (fast, offline).

``tiny_checkpoint`` trains that model once per test session (log-mel frontend, per-speaker
normalisation, so the group statistics paths are exercised) and is shared with
test_predict_cli.py and test_live.py through the session's base temporary folder.
"""

import json
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import TINY_MODEL
from emovox import audio, inference
from emovox.errors import ConfigError, EmovoxError
from emovox.inference import Recognizer, find_audio, plot_timelines, read_speakers
from emovox.ops import Moments
from emovox.types import Prediction, Segment

SR = 16000
FAST = [*TINY_MODEL, "optim.epochs=5", "augment.method=none", "data.normalization=speaker"]


def tiny_checkpoint(tmp_path_factory, tone_corpus, name="tiny", overrides=()):
    """Train (once per session) a small checkpoint on the tone corpus; return its path."""
    from emovox.bundle import save_checkpoint
    from emovox.config import load_recipe
    from emovox.corpora import load_corpus
    from emovox.train import fit

    path = tmp_path_factory.getbasetemp() / f"emovox-{name}-model" / "model.pt"
    if not path.exists():
        recipe = "whisper_logreg" if name == "logreg" else "mll"
        options = FAST[:1] if name == "logreg" else FAST
        config = load_recipe(recipe, [*options, *overrides])
        utts = load_corpus("manifest", tone_corpus)
        save_checkpoint(fit(config, utts, [], progress=False), path)
    return path


def voice(f0, seconds, seed=0, level=0.2):
    """A voiced, vowel-like signal like the tone corpus's (harmonics of f0, vibrato, noise)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f = f0 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = np.minimum(1, np.minimum(t, t[-1] - t) * 20)
    return (level * env * x + 0.01 * rng.normal(size=t.size)).astype(np.float32)


def gap(seconds):
    return np.zeros(int(seconds * SR), dtype=np.float32)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tone_corpus):
    return tiny_checkpoint(tmp_path_factory, tone_corpus)


@pytest.fixture(scope="module")
def rec(tiny_model):
    return Recognizer.from_checkpoint(tiny_model, window=1.0, hop=0.5, timeline_after=6.0,
                                      chunk_seconds=2.0)


@pytest.fixture()
def clips(tmp_path):
    """Two high (happy) and two low (sad) voices, 16 kHz mono WAV."""
    paths = []
    for i, f0 in enumerate([330, 300, 120, 110]):
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, voice(f0, 0.8 + 0.1 * i, seed=i), SR)
        paths.append(path)
    return paths


# --- records -----------------------------------------------------------------------------------


def test_prediction_and_segment_serialise_to_plain_json():
    seg = Segment(1.0, 4.0, "happy", {"happy": 0.7, "sad": 0.3}, True)
    pred = Prediction("happy", {"happy": 0.7, "sad": 0.3}, top_k=[("happy", 0.7)],
                      timeline=[seg, Segment(2.0, 5.0, "silence", {}, False)],
                      embedding=np.arange(3, dtype=np.float32), duration=5.0, path="a.wav")
    doc = json.loads(json.dumps(pred.to_dict()))
    assert doc["label"] == "happy" and doc["probabilities"] == {"happy": 0.7, "sad": 0.3}
    assert doc["top_k"] == [["happy", 0.7]] and doc["embedding"] == [0.0, 1.0, 2.0]
    assert doc["timeline"][1] == {"start": 2.0, "end": 5.0, "label": "silence", "speech": False,
                                  "probabilities": {}}
    assert Prediction.failed("b.wav", "file not found").to_dict() == {
        "path": "b.wav", "error": "file not found"}
    with pytest.raises(TypeError):
        pred.probabilities["happy"] = 1.0  # read-only


def test_moments_match_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 7, 4)), rng.normal(size=(3, 5, 4))
    m = Moments()
    m.add(a)
    m.add(b)
    mean, std = m.result()
    both = np.concatenate([a, b], axis=1)
    np.testing.assert_allclose(mean, both.mean(axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(std, both.std(axis=1, keepdims=True), rtol=1e-4)
    assert Moments().result() is None


# --- predictions -------------------------------------------------------------------------------


def test_predict_file_and_files_agree_and_learn_pitch(rec, clips):
    results = rec.predict_files(clips, top_k=2, embeddings=True)
    assert [r.path for r in results] == [str(p) for p in clips]
    assert [r.label for r in results] == ["happy", "happy", "sad", "sad"]
    for r in results:
        assert r.ok and r.speech and set(r.probabilities) == {"happy", "sad"}
        assert sum(r.probabilities.values()) == pytest.approx(1.0)
        assert r.top_k[0][0] == r.label and len(r.top_k) == 2
        assert len(r.embedding) == 16 and r.timeline is None
    alone = rec.predict_file(clips[2])
    assert alone.probabilities["sad"] == pytest.approx(results[2].probabilities["sad"], abs=1e-5)
    assert alone.top_k == () and alone.embedding is None
    json.dumps([r.to_dict() for r in results])


def test_predict_signal_resamples_and_downmixes(rec):
    mono = voice(320, 1.0)
    stereo_44k = np.stack([mono, mono], axis=1)
    import soxr

    stereo_44k = soxr.resample(stereo_44k, SR, 44100).astype(np.float32)
    a = rec.predict_signal(mono, SR)
    b = rec.predict_signal(stereo_44k, 44100)
    c = rec.predict_signal((mono * 32767).astype(np.int16), SR)
    assert a.label == b.label == c.label == "happy" and a.path is None
    assert a.probabilities["happy"] == pytest.approx(b.probabilities["happy"], abs=0.05)


def test_silence_is_reported_not_classified(rec):
    for signal in (gap(2.0), 1e-4 * np.random.default_rng(0).normal(size=2 * SR)):
        result = rec.predict_signal(signal, SR, top_k=2, embeddings=True)
        assert result.label == "silence" and result.speech is False
        assert result.probabilities == {} and result.top_k == () and result.embedding is None
        assert "no speech detected" in result.note
        assert result.to_dict()["note"] == result.note


def test_progress_is_reported(rec, clips):
    seen = []
    rec.predict_files(clips, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (4, 4) and [d for d, _ in seen] == sorted(d for d, _ in seen)


# --- timelines ---------------------------------------------------------------------------------


def scene():
    """1 s silence, 1.5 s high voice, 1.5 s silence, 1.5 s low voice, 1.5 s silence (7 s)."""
    return np.concatenate([gap(1.0), voice(330, 1.5), gap(1.5), voice(115, 1.5, 1), gap(1.5)])


def test_timeline_marks_silence_and_follows_the_voice(rec):
    result = rec.predict_signal(scene(), SR, timeline=True)
    segments = result.timeline
    assert len(segments) == 13  # 7 s, 1 s windows every 0.5 s
    assert segments[0].start == 0.0 and segments[-1].end == pytest.approx(7.0)
    by_start = {s.start: s for s in segments}
    assert not by_start[0.0].speech and by_start[0.0].label == "silence"
    assert by_start[0.0].probabilities == {}
    assert by_start[1.5].speech and by_start[1.5].label == "happy"
    assert by_start[4.5].speech and by_start[4.5].label == "sad"
    assert not by_start[6.0].speech
    voiced = [s for s in segments if s.speech]
    mean = np.mean([s.probabilities["happy"] for s in voiced])
    assert result.probabilities["happy"] == pytest.approx(mean)
    assert result.label in ("happy", "sad")


def test_timeline_is_automatic_for_long_recordings_only(rec, tmp_path):
    long_signal = np.concatenate([scene(), scene()])  # 14 s > timeline_after (6 s)
    assert rec.predict_signal(long_signal, SR).timeline is not None
    assert rec.predict_signal(voice(300, 2.0), SR).timeline is None
    hidden = rec.predict_signal(long_signal, SR, timeline=False)
    shown = rec.predict_signal(long_signal, SR)
    assert hidden.timeline is None
    assert hidden.probabilities["happy"] == pytest.approx(shown.probabilities["happy"])
    medium = np.concatenate([voice(320, 2.0), voice(120, 2.0, 1)])  # 4 s: windows, no timeline
    windowed = rec.predict_signal(medium, SR)
    assert windowed.timeline is None
    assert windowed.probabilities["happy"] == pytest.approx(
        rec.predict_signal(medium, SR, timeline=True).probabilities["happy"])
    silent = rec.predict_signal(gap(10.0), SR)
    assert silent.label == "silence" and all(not s.speech for s in silent.timeline)


def test_timeline_from_a_file_matches_the_in_memory_signal(rec, tmp_path):
    path = tmp_path / "scene.flac"
    sf.write(path, scene(), SR)
    from_file = rec.predict_file(path, timeline=True)
    from_memory = rec.predict_signal(scene(), SR, timeline=True)
    assert [s.label for s in from_file.timeline] == [s.label for s in from_memory.timeline]
    for a, b in zip(from_file.timeline, from_memory.timeline, strict=True):
        for k, v in a.probabilities.items():
            assert v == pytest.approx(b.probabilities[k], abs=1e-3)


def test_chunk_size_barely_changes_local_frame_features(tiny_model):
    small = Recognizer.from_checkpoint(tiny_model, window=1.0, hop=0.5, chunk_seconds=1.0)
    large = Recognizer.from_checkpoint(tiny_model, window=1.0, hop=0.5, chunk_seconds=60.0)
    a = small.predict_signal(scene(), SR, timeline=True)
    b = large.predict_signal(scene(), SR, timeline=True)
    assert [s.label for s in a.timeline] == [s.label for s in b.timeline]
    assert a.probabilities["happy"] == pytest.approx(b.probabilities["happy"], abs=0.02)


def test_one_hour_file_streams_in_bounded_memory(tiny_model, tmp_path):
    """A 1-hour, mostly silent 8 kHz file with two voiced bursts: read in 30 s chunks."""
    path = tmp_path / "hour.wav"
    rate, minute = 8000, 8000 * 60
    burst = voice(320, 2.0)[::2]  # 2 s at 8 kHz
    with sf.SoundFile(path, "w", rate, 1, "PCM_16") as out:
        for m in range(60):
            block = np.zeros(minute, dtype=np.float32)
            if m in (10, 50):
                block[:burst.size] = burst
            out.write(block)
    rec = Recognizer.from_checkpoint(tiny_model, window=2.0, hop=1.0)
    tracemalloc.start()
    try:
        result = rec.predict_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.duration == pytest.approx(3600.0)
    assert len(result.timeline) == 3599 and result.label == "happy"
    voiced = [s.start for s in result.timeline if s.speech]
    assert voiced and all(599 <= t <= 602 or 2999 <= t <= 3002 for t in voiced)
    assert peak < 60 * 2**20  # the whole file at 16 kHz float32 would be 230 MB


# --- normalisation groups ----------------------------------------------------------------------


def manual(rec, signals, stats):
    feats = rec.encode(signals)
    return rec.classify(feats, [stats] * len(feats))[0]


def test_group_by_file_and_folder_use_their_own_statistics(rec, tmp_path):
    signals = {"a/1.wav": voice(330, 1.0, 1), "a/2.wav": voice(130, 1.0, 2),
               "b/3.wav": voice(280, 1.2, 3)}
    for name, signal in signals.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        sf.write(tmp_path / name, signal, SR)
    paths = [tmp_path / n for n in signals]
    signals = {n: audio.load(tmp_path / n) for n in signals}  # as read back (16-bit)
    by_file = rec.predict_files(paths, group_by="file")
    for path, result in zip(paths, by_file, strict=True):
        own = Moments()
        own.add(rec.encode([signals[path.relative_to(tmp_path).as_posix()]])[0])
        expected = manual(rec, [signals[path.relative_to(tmp_path).as_posix()]], own.result())
        assert result.probabilities["happy"] == pytest.approx(expected[0, 0], abs=1e-5)
    by_folder = rec.predict_files(paths, group_by="folder")
    folder_a = Moments()
    for feats in rec.encode([signals["a/1.wav"], signals["a/2.wav"]]):
        folder_a.add(feats)
    expected = manual(rec, [signals["a/1.wav"], signals["a/2.wav"]], folder_a.result())
    assert [r.probabilities["happy"] for r in by_folder[:2]] == pytest.approx(
        expected[:, 0].tolist(), abs=1e-5)
    by_callable = rec.predict_files(paths, group_by=lambda p: Path(p).parent.name)
    assert [r.probabilities for r in by_callable] == [r.probabilities for r in by_folder]
    default = rec.predict_files(paths)
    assert default[1].probabilities != by_folder[1].probabilities


def test_group_by_speaker_reads_a_table_and_reports_unknown_files(rec, tmp_path):
    for i, f0 in enumerate([320, 140, 300]):
        sf.write(tmp_path / f"u{i}.wav", voice(f0, 1.0, i), SR)
    (tmp_path / "speakers.csv").write_text("path,speaker,label\nu0.wav,ann,x\nu1.wav,ann,y\n")
    speakers = read_speakers(tmp_path / "speakers.csv")
    assert speakers == {os.path.abspath(tmp_path / "u0.wav"): "ann",
                        os.path.abspath(tmp_path / "u1.wav"): "ann"}
    paths = [tmp_path / f"u{i}.wav" for i in range(3)]
    results = rec.predict_files(paths, group_by="speaker", speakers=speakers)
    assert results[0].ok and results[1].ok
    assert results[2].error == "no speaker for this file in the speaker table"
    folder = rec.predict_files(paths[:2], group_by="folder")  # same two files, same group
    assert results[0].probabilities["happy"] == pytest.approx(folder[0].probabilities["happy"])
    with pytest.raises(ConfigError, match="speakers mapping"):
        rec.predict_files(paths, group_by="speaker")
    (tmp_path / "bad.csv").write_text("file,who\nu0.wav,ann\n")
    with pytest.raises(EmovoxError, match="'path' and 'speaker'"):
        read_speakers(tmp_path / "bad.csv")


def test_group_statistics_also_cover_long_recordings(rec, tmp_path):
    sf.write(tmp_path / "long.wav", np.concatenate([scene(), scene()]), SR)
    sf.write(tmp_path / "short.wav", voice(140, 1.0), SR)
    results = rec.predict_files([tmp_path / "long.wav", tmp_path / "short.wav"],
                                group_by="folder")
    assert all(r.ok for r in results) and results[0].timeline is not None
    own = rec.predict_files([tmp_path / "long.wav"], group_by="file")[0]
    assert own.ok and own.timeline is not None
    assert rec.predict_signal(scene(), SR, group_by="file").ok


# --- bad input ---------------------------------------------------------------------------------


def bad_inputs(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, voice(300, 1.0), SR)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("this is not audio\n" * 20)
    data = good.read_bytes()
    (tmp_path / "truncated.wav").write_bytes(data[: len(data) // 2])
    sf.write(tmp_path / "one.wav", np.array([0.5], dtype=np.float32), SR)
    sf.write(tmp_path / "nan.wav", np.full(SR, np.nan, dtype=np.float32), SR, subtype="FLOAT")
    (tmp_path / "folder.wav").mkdir()
    os.symlink(tmp_path / "nowhere.wav", tmp_path / "broken.wav")
    os.symlink(good, tmp_path / "link.wav")
    os.mkfifo(tmp_path / "pipe.wav")
    unicode = tmp_path / "Ærø ünïcødé 日本語.wav"
    sf.write(unicode, voice(120, 1.0), SR)
    return {
        "good.wav": None,
        "missing.wav": "file not found",
        "empty.wav": "empty file",
        "text.wav": "not an audio file",
        "truncated.wav": "truncated",
        "one.wav": "too short for emotion recognition (1 sample",
        "nan.wav": "NaN",
        "folder.wav": "is a directory",
        "broken.wav": "broken symbolic link",
        "link.wav": None,
        "pipe.wav": "not a regular file",
        unicode.name: None,
    }


def test_every_bad_input_gets_its_own_record_and_the_batch_goes_on(rec, tmp_path):
    expected = bad_inputs(tmp_path)
    paths = [tmp_path / name for name in expected]
    results = rec.predict_files(paths)
    for (name, error), result in zip(expected.items(), results, strict=True):
        assert result.path == str(tmp_path / name)
        if error is None:
            assert result.ok and result.label in ("happy", "sad"), name
        else:
            assert result.error is not None and error in result.error, (name, result.error)
            assert "\n" not in result.error and str(tmp_path) not in result.error
            assert result.to_dict() == {"path": str(tmp_path / name), "error": result.error}
    assert results[0].probabilities == results[list(expected).index("link.wav")].probabilities
    with pytest.raises(EmovoxError, match="missing.wav: file not found"):
        rec.predict_file(tmp_path / "missing.wav")
    with pytest.raises(EmovoxError, match="signal"):
        rec.predict_signal(np.zeros(0), SR)
    with pytest.raises(EmovoxError, match="too short"):
        rec.predict_signal(np.ones(10), SR)


def test_an_unexpected_failure_stays_with_its_recording(tiny_model, clips, monkeypatch):
    rec = Recognizer.from_checkpoint(tiny_model)
    frontend = rec.frontend
    bad_length = len(audio.load(clips[1]))

    def fragile(signal):
        if len(signal) == bad_length:
            raise RuntimeError("decoder exploded")
        return frontend(signal)

    monkeypatch.setattr(rec, "_torch_module", lambda: None)
    monkeypatch.setattr(rec, "frontend", fragile)
    results = rec.predict_files(clips)
    assert results[1].error == "internal error: RuntimeError: decoder exploded (please report it)"
    assert [r.label for i, r in enumerate(results) if i != 1] == ["happy", "sad", "sad"]


def _check_unreadable(rec, folder):
    sf.write(folder / "locked.wav", voice(300, 1.0), SR)
    (folder / "locked.wav").chmod(0)
    (folder / "sub").mkdir()
    (folder / "sub").chmod(0)
    try:
        found = find_audio([folder])
        assert (str(folder / "sub"), "cannot list folder (Permission denied)") in found
        result = rec.predict_files([folder / "locked.wav"])[0]
        assert result.error == "permission denied"
    finally:
        (folder / "sub").chmod(0o755)
        (folder / "locked.wav").chmod(0o644)


def test_unreadable_file_and_folder(rec, tmp_path):
    if os.geteuid() != 0:
        _check_unreadable(rec, tmp_path)
        return
    # Root reads any file: check as the unprivileged user "nobody", in a forked child (which
    # never reaches torch: both failures happen before any audio is decoded).
    import shutil
    import tempfile
    import traceback

    base = Path(tempfile.mkdtemp())
    base.chmod(0o777)
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit code
            code = 1
            try:
                os.setgid(65534)
                os.setuid(65534)
                _check_unreadable(rec, base)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the check failed as user nobody"
    finally:
        shutil.rmtree(base)


def test_length_limits_are_per_file_errors(tiny_model, tmp_path):
    sf.write(tmp_path / "a.wav", voice(300, 3.0), SR)
    rec = Recognizer.from_checkpoint(tiny_model, window=1.0, hop=0.5, max_seconds=2.0)
    error = rec.predict_files([tmp_path / "a.wav"])[0].error
    assert "over the 2 s limit" in error and "cut it into parts, or raise the limit" in error
    rec = Recognizer.from_checkpoint(tiny_model, min_seconds=5.0)
    assert "at least 5 s needed" in rec.predict_files([tmp_path / "a.wav"])[0].error


def test_a_file_cut_short_of_its_header_fails_in_the_timeline_too(rec, tmp_path):
    sf.write(tmp_path / "long.wav", np.concatenate([scene(), scene()]), SR)
    data = (tmp_path / "long.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) * 2 // 3])
    result = rec.predict_files([tmp_path / "cut.wav"])[0]
    assert "truncated" in result.error


# --- finding files -----------------------------------------------------------------------------


def test_find_audio_walks_folders_once_and_reports_empty_ones(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    for name in ("a/x.WAV", "a/deep/y.flac", "a/notes.txt", "a/.hidden.wav", "a/._x.wav",
                 "z.mp3"):
        (tmp_path / name).write_bytes(b"x")
    os.symlink(tmp_path / "a", tmp_path / "a" / "deep" / "loop")  # a cycle
    os.symlink(tmp_path / "a", tmp_path / "alias")  # the same folder under another name
    found = find_audio([tmp_path / "a", tmp_path / "z.mp3", tmp_path / "empty"])
    assert found == [
        (str(tmp_path / "a" / "x.WAV"), None),
        (str(tmp_path / "a" / "deep" / "y.flac"), None),
        (str(tmp_path / "z.mp3"), None),
        (str(tmp_path / "empty"), "no audio files found in this folder or below "
                                  "(looked for .wav, .wave, .flac, .ogg, .oga, .opus, ...)"),
    ]
    assert find_audio([tmp_path / "a"], recursive=False) == [(str(tmp_path / "a" / "x.WAV"),
                                                               None)]
    assert [p for p, _ in find_audio([tmp_path / "alias"])] == [
        str(tmp_path / "alias" / "x.WAV"), str(tmp_path / "alias" / "deep" / "y.flac")]
    assert find_audio([tmp_path / "nope.wav"]) == [(str(tmp_path / "nope.wav"), None)]


def test_predict_folder(rec, tmp_path, clips):
    results = rec.predict_folder(tmp_path)
    assert [r.path for r in results] == sorted(str(p) for p in clips)
    (tmp_path / "none").mkdir()
    with pytest.raises(EmovoxError, match="no audio files found"):
        rec.predict_folder(tmp_path / "none")
    with pytest.raises(EmovoxError, match="not a folder"):
        rec.predict_folder(clips[0])


# --- construction, other models, plots ---------------------------------------------------------


def test_default_model_missing_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(inference, "DEFAULT_MODEL", "pretrained/not-there.pt")
    with pytest.raises(EmovoxError, match="^the bundled default model is missing from this "
                                          "installation"):
        Recognizer.default()


def test_bad_checkpoint_and_options(tiny_model, tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(EmovoxError, match="not an emovox checkpoint"):
        Recognizer.from_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(EmovoxError, match="checkpoint not found"):
        Recognizer.from_checkpoint(tmp_path / "missing.pt")
    for options in ({"hop": 4.0}, {"window": 0}, {"batch_size": 0}, {"chunk_seconds": 1.0},
                    {"threads": 0}):
        with pytest.raises(ConfigError):
            Recognizer.from_checkpoint(tiny_model, **options)
    with pytest.raises(ConfigError, match="group_by"):
        Recognizer.from_checkpoint(tiny_model).predict_files([], group_by="room")


def test_classic_checkpoint_works_without_embeddings(tmp_path_factory, tone_corpus, clips):
    rec = Recognizer.from_checkpoint(tiny_checkpoint(tmp_path_factory, tone_corpus, "logreg"))
    results = rec.predict_files(clips, embeddings=True)
    assert [r.label for r in results] == ["happy", "happy", "sad", "sad"]
    assert all(r.embedding is None for r in results)
    assert rec.predict_signal(scene(), SR, timeline=True).timeline


def test_quantized_frontend_option(tiny_model, clips):
    rec = Recognizer.from_checkpoint(tiny_model, quantize=True)  # log-mel: nothing to quantize
    assert [r.label for r in rec.predict_files(clips)] == ["happy", "happy", "sad", "sad"]


def test_plot_timelines_writes_a_png(rec, tmp_path):
    result = rec.predict_signal(scene(), SR, timeline=True)
    assert plot_timelines([result, Prediction.failed("x", "bad")], tmp_path / "t.png") == 1
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(EmovoxError, match="nothing to plot"):
        plot_timelines([rec.predict_signal(voice(300, 1.0), SR)], tmp_path / "u.png")
    with pytest.raises(EmovoxError, match="does not exist"):
        plot_timelines([result], tmp_path / "no" / "t.png")


def _figure_of(monkeypatch, predictions):
    """The matplotlib figure plot_timelines would save."""
    from emovox import files

    saved = {}
    monkeypatch.setattr(files, "save_png", lambda fig, path: saved.setdefault("fig", fig))
    plot_timelines(predictions, "unused.png")
    return saved["fig"]


def test_long_timelines_are_a_band_short_ones_also_lines(monkeypatch):
    def timeline(n):
        return tuple(Segment(k * 1.0, k * 1.0 + 3.0, "happy" if k % 3 else "sad",
                             {"happy": 0.7, "sad": 0.3} if k % 3 else {"happy": 0.2, "sad": 0.8})
                     for k in range(n))

    long = Prediction("happy", {"happy": 0.6, "sad": 0.4}, timeline=timeline(600),
                      duration=602.0, path="ten_minutes.wav")
    short = Prediction("sad", {"happy": 0.4, "sad": 0.6}, timeline=timeline(8), duration=10.0,
                       path="short.wav")
    one = Prediction("sad", {"happy": 0.4, "sad": 0.6}, timeline=timeline(1), duration=3.0,
                     path="one.wav")
    fig = _figure_of(monkeypatch, [long, short, one])
    ax_long, ax_short, ax_one = fig.axes[:3]
    assert len(ax_long.lines) == 0 and len(ax_long.patches) == 600  # a band, no tangle
    assert len(ax_short.lines) == 2 and len(ax_short.patches) == 8
    assert len(ax_one.patches) == 1  # a one-window file is not an empty panel
    # the web page's colours
    from matplotlib.colors import to_hex

    happy = [p for p in ax_short.patches if to_hex(p.get_facecolor()) == "#ff7f0e"]
    assert happy and to_hex(ax_short.lines[0].get_color()) in ("#ff7f0e", "#1f77b4")


def test_plot_colours_are_the_web_pages():
    import re

    from emovox.inference import EMOTION_COLORS

    app = (Path(inference.__file__).parent / "web" / "app.js").read_text()
    named = dict(re.findall(r'(\w+): "(#[0-9a-f]{6})"', app.split("const NAMED", 1)[1]
                            .split("};", 1)[0]))
    assert named == EMOTION_COLORS
