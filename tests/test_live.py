"""`emovox listen`: rolling predictions from raw PCM, bounded latency, running statistics."""

import importlib.util
import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from emovox.cli import main
from emovox.errors import ConfigError
from emovox.inference import Recognizer
from emovox.live import (
    AudioBuffer,
    LiveRecognizer,
    RunningStats,
    _Decoder,
    format_segment,
    listen,
)
from emovox.types import Segment
from test_inference import SR, gap, tiny_checkpoint, voice


@pytest.fixture(scope="session")
def model(tmp_path_factory, tone_corpus):
    return str(tiny_checkpoint(tmp_path_factory, tone_corpus))


def stream():
    """4 s: a high voice, a low voice, 1 s of silence."""
    return np.concatenate([voice(320, 1.5, 1), voice(120, 1.5, 2), gap(1.0)])


def listen_cmd(model, *extra):
    return [sys.executable, "-m", "emovox", "listen", "--stdin", "--model", model,
            "--window", "1", "--hop", "0.5", "--threads", "1", *extra]


def test_piped_pcm_gives_one_line_per_hop_and_exits_at_eof(model):
    pcm = (stream() * 32767).astype("<i2").tobytes()
    proc = subprocess.run(listen_cmd(model, "--jsonl", "--no-drop"), input=pcm,
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [round(d["end"], 2) for d in lines] == [0.5 * k for k in range(1, 9)]
    assert lines[0]["start"] == 0.0 and lines[3]["start"] == 1.0  # 1 s windows once full
    assert lines[1]["label"] == "happy" and lines[4]["label"] == "sad"
    assert lines[-1]["label"] == "silence" and lines[-1]["speech"] is False
    assert b"Traceback" not in proc.stderr


def test_stereo_float_at_another_rate_in_dropping_mode(model):
    signal = np.repeat(stream()[::2, None], 2, axis=1)  # 8 kHz stereo
    proc = subprocess.run(listen_cmd(model, "--rate", "8000", "--channels", "2",
                                     "--format", "f32le"),
                          input=signal.astype("<f4").tobytes(), capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert 1 <= len(lines) <= 8  # all audio arrives at once: windows may be skipped
    assert all(line.split()[1] == "s" for line in lines)
    if len(lines) < 8:
        assert b"skipped" in proc.stderr


def test_microphone_without_sounddevice_names_the_extra(model, capsys):
    if importlib.util.find_spec("sounddevice") is not None:
        pytest.skip("sounddevice is installed")
    assert main(["listen", "--model", model]) == 2
    assert "pip install 'emovox[live]'" in capsys.readouterr().err


def test_decoder_handles_partial_frames_channels_and_rates():
    pcm = (np.arange(-6, 6, dtype="<i2") * 1000).reshape(-1, 2)  # 6 stereo frames
    data = pcm.tobytes()
    decode = _Decoder("s16le", 2, SR, SR)
    parts = [decode(data[:5]), decode(data[5:13]), decode(data[13:])]
    np.testing.assert_allclose(np.concatenate(parts), pcm.mean(axis=1) / 32768, atol=1e-7)
    resample = _Decoder("f32le", 1, 8000, SR)
    x = np.sin(np.arange(8000) / 10).astype("<f4")
    out = np.concatenate([resample(x[:3000].tobytes()), resample(x[3000:].tobytes()),
                          resample(b"", last=True)])
    assert abs(out.size - 16000) <= 2
    with pytest.raises(ConfigError, match="unknown PCM format"):
        _Decoder("mp3", 1, SR, SR)


def test_audio_buffer_drops_or_waits():
    ring = AudioBuffer(10, drop=True)
    ring.write(np.arange(25, dtype=np.float32))
    assert ring.received == 25
    np.testing.assert_array_equal(ring.read(0, 25), np.arange(15, 25))
    blocking = AudioBuffer(10, drop=False)
    blocking.write(np.arange(10, dtype=np.float32))
    writer = threading.Thread(target=blocking.write, args=(np.arange(10, 15, dtype=np.float32),))
    writer.start()
    time.sleep(0.05)
    assert blocking.received == 10  # full: the writer waits
    blocking.release(5)
    writer.join(timeout=2)
    assert blocking.received == 15
    np.testing.assert_array_equal(blocking.read(5, 15), np.arange(5, 15))
    blocking.close()
    assert not blocking.wait_for(16) and blocking.wait_for(15)


def test_running_stats_follow_the_stream():
    running = RunningStats((np.zeros((1, 2)), np.ones((1, 2))), seconds=1.0)
    rng = np.random.default_rng(0)
    for _ in range(50):
        running.update(5 + 2 * rng.normal(size=(100, 2)), seconds=0.5)
    mean, std = running.stats()
    np.testing.assert_allclose(mean, 5.0, atol=0.3)
    np.testing.assert_allclose(std, 2.0, atol=0.3)
    with pytest.raises(ConfigError):
        RunningStats((np.zeros(1), np.ones(1)), seconds=0)


def test_live_recognizer_options_and_silence(model):
    rec = Recognizer.from_checkpoint(model, window=1.0, hop=0.5)
    live = LiveRecognizer(rec)
    assert live.normalization == "running"  # the tiny model uses per-speaker statistics
    assert LiveRecognizer(rec, normalization="global").running is None
    seg = live.analyse(gap(1.0), 0.0, 1.0, 0.5)
    assert seg == Segment(0.0, 1.0, "silence", {}, False)
    assert format_segment(seg) == "     1.0 s  silence"
    seg = live.analyse(voice(320, 1.0), 0.0, 1.0, 0.5)
    assert seg.speech and seg.label == "happy"
    assert format_segment(seg).split()[2:4] == ["happy", f"{seg.probabilities['happy']:.2f}"]
    rec.mode = "utterance"
    with pytest.raises(ConfigError, match="running normalisation"):
        LiveRecognizer(rec, normalization="running")
    with pytest.raises(ConfigError):
        LiveRecognizer(rec, window=1.0, hop=2.0)


def test_listen_skips_to_the_newest_window_when_behind(model):
    rec = Recognizer.from_checkpoint(model, window=1.0, hop=0.5)
    live = LiveRecognizer(rec, normalization="global")
    ring = AudioBuffer(10 * SR, drop=True)
    ring.write(stream())  # 4 s arrive at once, as from a stalled reader
    ring.close()
    segments, warnings = [], []
    count = listen(live, ring, segments.append, warnings.append)
    assert count == len(segments) == 1 and segments[0].end == 4.0
    assert warnings == ["processing is slower than real time: skipped 7 windows (3.5 s of audio)"]


def test_a_file_redirected_to_stdin_is_analysed_whole(model, tmp_path):
    pcm = tmp_path / "talk.raw"
    pcm.write_bytes((stream() * 32767).astype("<i2").tobytes())
    with open(pcm, "rb") as source:  # like `emovox listen --stdin < talk.raw`
        proc = subprocess.run(listen_cmd(model, "--jsonl"), stdin=source, capture_output=True,
                              timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(proc.stdout.decode().splitlines()) == 8 and b"skipped" not in proc.stderr


def test_sixteen_bit_input_read_as_float_is_refused_in_one_line(model):
    pcm = (stream() * 32767).astype("<i2").tobytes()
    proc = subprocess.run(listen_cmd(model, "--format", "f32le"), input=pcm,
                          capture_output=True, timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "not f32le audio" in err and "--format s16le" in err
    assert "nan" not in proc.stdout.decode() and "Warning" not in err and "Traceback" not in err
