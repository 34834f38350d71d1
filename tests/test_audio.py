"""Tests for emovox.audio: every fixture is synthesised in tmp_path (no committed audio)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox import audio
from emovox.audio import AudioInfo, info, is_silent, load, prepare, resample
from emovox.errors import AudioError, EmovoxError


def tone(
    seconds: float, rate: int, channels: int = 1, freq: float = 440.0, amp: float = 0.5
) -> np.ndarray:
    """A sine; channel c is scaled by 1 / (c + 1) so the channel mean is easy to predict."""
    t = np.arange(int(round(seconds * rate))) / rate
    wave = amp * np.sin(2 * np.pi * freq * t)
    if channels == 1:
        return wave.astype(np.float32)
    gains = 1.0 / (np.arange(channels) + 1.0)
    return (wave[:, None] * gains[None, :]).astype(np.float32)


def peak_hz(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1.0 / rate)[np.argmax(spectrum)])


def write(path: Path, data: np.ndarray, rate: int, **kwargs: str) -> Path:
    sf.write(str(path), data, rate, **kwargs)
    return path


def expect_error(call, path: object, reason: str) -> str:
    """Run ``call``; assert it raises a one-line AudioError '<path>: ...<reason>...'."""
    with pytest.raises(AudioError) as caught:
        call()
    message = str(caught.value)
    assert isinstance(caught.value, EmovoxError)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    assert reason in message, message
    # converted, not chained: no soundfile or OS exception shows up in a traceback
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__
    return message


def wav_header(frames: int, rate: int, channels: int = 1, bits: int = 8) -> bytes:
    """A canonical 44-byte PCM WAV header declaring ``frames`` frames."""
    block_align = channels * bits // 8
    data_size = frames * block_align
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_size)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block_align, block_align, bits)
        + b"data"
        + struct.pack("<I", data_size)
    )


# --------------------------------------------------------------------------- decoding


@pytest.mark.parametrize(
    ("subtype", "tolerance"),
    [
        ("PCM_U8", 1.5 / 128),
        ("PCM_16", 1e-4),
        ("PCM_24", 1e-6),
        ("PCM_32", 1e-7),
        ("FLOAT", 0.0),
        ("DOUBLE", 0.0),
    ],
)
def test_wav_subtypes_decode_to_float32_in_range(tmp_path, subtype, tolerance):
    data = tone(0.25, 16000)
    path = write(tmp_path / f"{subtype}.wav", data, 16000, subtype=subtype)
    out = load(path)
    assert out.dtype == np.float32 and out.ndim == 1 and out.flags["C_CONTIGUOUS"]
    assert out.shape == data.shape
    np.testing.assert_allclose(out, data, atol=tolerance)
    assert info(path).subtype == subtype


@pytest.mark.parametrize(
    ("suffix", "fmt", "subtype"),
    [("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS"), ("mp3", "MP3", "MPEG_LAYER_III")],
)
def test_compressed_formats(tmp_path, suffix, fmt, subtype):
    data = tone(1.0, 22050)
    path = tmp_path / f"tone.{suffix}"
    try:
        write(path, data, 22050, format=fmt, subtype=subtype)
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError):
        pytest.skip(f"the installed libsndfile cannot write {fmt}")
    out = load(path)
    assert out.dtype == np.float32
    assert abs(len(out) - 16000) <= 0.01 * 16000
    assert abs(peak_hz(out, 16000) - 440.0) <= 2.0
    assert info(path).format == fmt


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_any_rate_is_resampled_keeping_pitch(tmp_path, rate):
    data = tone(1.0, rate)
    path = write(tmp_path / f"r{rate}.wav", data, rate, subtype="PCM_16")
    out = load(path)
    assert len(out) == round(len(data) * 16000 / rate)
    assert abs(peak_hz(out, 16000) - 440.0) <= 1.0
    rms = float(np.sqrt(np.mean(out[1000:-1000] ** 2)))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.01)  # level survives resampling


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_channels_are_averaged(tmp_path, channels):
    data = tone(0.5, 48000, channels=channels)
    path = write(tmp_path / f"c{channels}.wav", data, 48000, subtype="FLOAT")
    native = load(path, sample_rate=48000)
    expected = data if channels == 1 else data.mean(axis=1)
    np.testing.assert_allclose(native, expected, atol=1e-7)
    at_16k = load(path)
    assert len(at_16k) == round(len(data) * 16000 / 48000)
    assert abs(peak_hz(at_16k, 16000) - 440.0) <= 2.0
    assert info(path).channels == channels


def test_other_target_rate(tmp_path):
    path = write(tmp_path / "t.wav", tone(1.0, 16000), 16000)
    out = load(path, sample_rate=8000)
    assert len(out) == 8000
    assert abs(peak_hz(out, 8000) - 440.0) <= 1.0


def test_info_reads_the_header(tmp_path):
    path = write(tmp_path / "i.wav", tone(0.5, 44100, channels=2), 44100, subtype="PCM_24")
    assert info(path) == AudioInfo(
        sample_rate=44100, channels=2, frames=22050, seconds=0.5, format="WAV", subtype="PCM_24"
    )


def test_silence_is_valid_audio(tmp_path):
    path = write(tmp_path / "zeros.wav", np.zeros(8000, np.float32), 16000)
    out = load(path)
    assert len(out) == 8000 and not out.any()
    assert is_silent(out)


def test_unicode_name_and_symlink(tmp_path):
    path = write(tmp_path / "émotion_怒り 01.wav", tone(0.1, 16000), 16000)
    assert len(load(path)) == 1600
    assert len(load(str(path))) == 1600
    link = tmp_path / "link.wav"
    link.symlink_to(path)
    assert len(load(link)) == 1600
    assert info(link).frames == 1600


# --------------------------------------------------------------------------- slicing


@pytest.fixture
def ramp_wav(tmp_path) -> tuple[Path, np.ndarray]:
    """2 s at 8 kHz, sample i = i / 16000, so any slice can be checked exactly."""
    data = (np.arange(16000) / 16000).astype(np.float32)
    return write(tmp_path / "ramp.wav", data, 8000, subtype="FLOAT"), data


def spy_reads(monkeypatch) -> list[int]:
    """Record the frame count of every SoundFile.read call."""
    counts: list[int] = []
    original = sf.SoundFile.read

    def read(self, frames=-1, *args, **kwargs):
        counts.append(frames)
        return original(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", read)
    monkeypatch.setattr(sf, "read", lambda *a, **k: pytest.fail("whole-file sf.read called"))
    return counts


def test_start_and_duration_read_only_the_stretch(ramp_wav, monkeypatch):
    path, data = ramp_wav
    counts = spy_reads(monkeypatch)
    out = load(path, sample_rate=8000, start=0.5, duration=0.25)
    np.testing.assert_array_equal(out, data[4000:6000])
    assert counts == [2000]


def test_start_only_and_duration_only(ramp_wav):
    path, data = ramp_wav
    np.testing.assert_array_equal(load(path, 8000, start=1.5), data[12000:])
    np.testing.assert_array_equal(load(path, 8000, duration=0.1), data[:800])
    # a stretch running past the end is cut at the end of the file
    np.testing.assert_array_equal(load(path, 8000, start=1.9, duration=5.0), data[15200:])
    assert len(load(path, start=0.5, duration=1.0)) == 16000  # resampled stretch


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"start": 2.0}, "start 2 s is at or past the end of the audio (2 s)"),
        ({"start": 10.0}, "past the end"),
        ({"start": -1.0}, "invalid start -1.0"),
        ({"start": float("nan")}, "invalid start nan"),
        ({"duration": 0.0}, "invalid duration 0.0"),
        ({"duration": -2.0}, "invalid duration -2.0"),
        ({"duration": 1e-6}, "no audio samples in the requested stretch"),
        ({"sample_rate": 0}, "invalid sample rate 0"),
        ({"sample_rate": -16000}, "invalid sample rate -16000"),
        ({"sample_rate": 16000.5}, "invalid sample rate 16000.5"),
        ({"sample_rate": True}, "invalid sample rate True"),
        ({"max_seconds": 0}, "invalid max_seconds 0"),
    ],
)
def test_invalid_arguments(ramp_wav, kwargs, reason):
    path, _ = ramp_wav
    expect_error(lambda: load(path, **kwargs), path, reason)


# --------------------------------------------------------------------------- length limit


@pytest.fixture
def two_hour_wav(tmp_path) -> Path:
    """A valid 7200 s, 8 kHz, 8-bit WAV stored as a sparse file (no disk space, no writing)."""
    path = tmp_path / "long.wav"
    frames = 7200 * 8000
    with open(path, "wb") as handle:
        handle.write(wav_header(frames, 8000))
        handle.truncate(44 + frames)
    return path


def test_max_seconds_is_checked_from_the_header(two_hour_wav, monkeypatch):
    counts = spy_reads(monkeypatch)
    message = expect_error(
        lambda: load(two_hour_wav), two_hour_wav, "7200.0 s long, over the 3600 s limit"
    )
    assert message.endswith("(raise max_seconds)")
    expect_error(lambda: load(two_hour_wav, max_seconds=10.0), two_hour_wav, "over the 10 s")
    assert counts == []  # no sample was decoded
    assert info(two_hour_wav).seconds == 7200.0


def test_max_seconds_applies_to_the_stretch_read(two_hour_wav, monkeypatch):
    counts = spy_reads(monkeypatch)
    out = load(two_hour_wav, start=3000.0, duration=0.5)
    assert len(out) == 8000
    assert counts == [4000]
    expect_error(
        lambda: load(two_hour_wav, start=10.0, duration=4000.0),
        two_hour_wav,
        "requested stretch is 4000.0 s long, over the 3600 s limit",
    )


def test_max_seconds_none_disables_the_limit(tmp_path):
    path = write(tmp_path / "t.wav", tone(1.0, 16000), 16000)
    expect_error(lambda: load(path, max_seconds=0.5), path, "1.0 s long, over the 0.5 s limit")
    assert len(load(path, max_seconds=None)) == 16000


# --------------------------------------------------------------------------- file errors


def test_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    expect_error(lambda: load(path), path, "file not found")
    expect_error(lambda: info(path), path, "file not found")
    parent = write(tmp_path / "x.wav", tone(0.1, 16000), 16000)  # a file used as a folder
    expect_error(lambda: load(parent / "y.wav"), parent / "y.wav", "file not found")


def test_directory(tmp_path):
    folder = f"{tmp_path}/"
    expect_error(lambda: load(folder), folder, "is a directory, not an audio file")
    expect_error(lambda: info(folder), folder, "is a directory")


def test_empty_file(tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(b"")
    expect_error(lambda: load(path), path, "empty file (0 bytes)")
    expect_error(lambda: info(path), path, "empty file (0 bytes)")


@pytest.mark.parametrize(
    "content",
    [b"just some notes, not audio\n" * 20, bytes(range(256)) * 8, b"\x00\x01"],
    ids=["text", "binary", "tiny"],
)
def test_not_audio(tmp_path, content):
    path = tmp_path / "x.wav"
    path.write_bytes(content)
    expect_error(lambda: load(path), path, "not an audio file or unsupported format")
    expect_error(lambda: info(path), path, "not an audio file or unsupported format")


def test_truncated_data_chunk(tmp_path):
    path = write(tmp_path / "x.wav", tone(1.0, 16000), 16000, subtype="PCM_16")
    full = path.read_bytes()
    path.write_bytes(full[: len(full) // 2])
    reason = "truncated or corrupt audio (header declares 16000 frames, file holds 7989)"
    expect_error(lambda: load(path), path, reason)
    expect_error(lambda: info(path), path, reason)
    # the header survives but not one sample does
    path.write_bytes(full[:45])
    expect_error(lambda: load(path), path, "header declares 16000 frames, file holds 0")


@pytest.mark.parametrize("size", [4, 11, 12, 20, 30, 40])
def test_file_cut_inside_the_header(tmp_path, size):
    path = write(tmp_path / "x.wav", tone(0.1, 16000), 16000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:size])
    expect_error(lambda: load(path), path, "truncated or corrupt audio (")
    expect_error(lambda: info(path), path, "truncated or corrupt audio (")


def test_truncated_aiff(tmp_path):
    path = write(tmp_path / "x.aiff", tone(1.0, 16000), 16000, subtype="PCM_16")
    full = path.read_bytes()
    path.write_bytes(full[: len(full) // 2])
    expect_error(lambda: load(path), path, "truncated or corrupt audio (header declares 16000")


def test_truncated_flac(tmp_path):
    path = write(tmp_path / "x.flac", tone(1.0, 16000), 16000)
    full = path.read_bytes()
    path.write_bytes(full[: len(full) // 2])
    expect_error(lambda: load(path), path, "truncated or corrupt audio (")


def test_truncated_ogg(tmp_path):
    path = write(tmp_path / "x.ogg", tone(1.0, 16000), 16000, format="OGG", subtype="VORBIS")
    full = path.read_bytes()
    for size in (len(full) // 2, int(len(full) * 0.9)):
        path.write_bytes(full[:size])
        expect_error(lambda: load(path), path, "truncated or corrupt audio (")
    # cut at 90 %: libsndfile sees 0 frames; this must not pass for "no audio samples"
    expect_error(lambda: load(path), path, "stream ends without its final page")


def test_truncated_mp3(tmp_path):
    path = tmp_path / "x.mp3"
    try:
        write(path, tone(1.0, 16000), 16000, format="MP3", subtype="MPEG_LAYER_III")
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError):
        pytest.skip("the installed libsndfile cannot write MP3")
    full = path.read_bytes()
    for size in (len(full) // 2, len(full) // 5):
        path.write_bytes(full[:size])
        expect_error(lambda: load(path), path, "truncated or corrupt audio (")


def test_streaming_wav_with_unknown_data_size_is_not_truncation(tmp_path):
    path = write(tmp_path / "x.wav", tone(0.5, 16000), 16000, subtype="PCM_16")
    raw = bytearray(path.read_bytes())
    at = raw.find(b"data")
    raw[4:8] = raw[at + 4 : at + 8] = struct.pack("<I", 0xFFFFFFFF)
    path.write_bytes(bytes(raw))
    assert len(load(path)) == 8000


def test_no_samples(tmp_path):
    path = write(tmp_path / "x.wav", np.zeros(0, np.float32), 16000)
    expect_error(lambda: load(path), path, "no audio samples")
    assert info(path).frames == 0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, bad):
    data = tone(0.1, 16000)
    data[100] = bad
    path = write(tmp_path / "x.wav", data, 16000, subtype="FLOAT")
    expect_error(lambda: load(path), path, "contains NaN or infinite samples")


def test_permission_denied(tmp_path, monkeypatch):
    path = write(tmp_path / "x.wav", tone(0.1, 16000), 16000)
    if os.geteuid() == 0:  # root reads anything: simulate the refusal instead

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(audio, "open", refuse, raising=False)
    else:
        path.chmod(0)
    expect_error(lambda: load(path), path, "permission denied")
    expect_error(lambda: info(path), path, "permission denied")


def test_broken_symlink(tmp_path):
    link = tmp_path / "gone.wav"
    link.symlink_to(tmp_path / "missing.wav")
    expect_error(lambda: load(link), link, "file not found (broken symbolic link)")


def test_not_a_regular_file(tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    expect_error(lambda: load(fifo), fifo, "not a regular file")


def test_unicode_and_control_characters_in_error_messages(tmp_path):
    path = tmp_path / "声音 ☺.wav"
    expect_error(lambda: load(path), path, "file not found")
    odd = f"{tmp_path}/two\nlines.wav"
    expect_error(lambda: load(odd), odd.replace("\n", "\\n"), "file not found")


# --------------------------------------------------------------------------- arrays


def test_prepare_float_and_int_scaling():
    data = tone(1.0, 16000)
    np.testing.assert_array_equal(prepare(data, 16000), data)
    assert prepare(data, 16000) is not data
    pcm16 = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    np.testing.assert_allclose(prepare(pcm16, 16000), [0.0, 0.5, -1.0, 32767 / 32768])
    pcm8 = np.array([128, 0, 255, 192], dtype=np.uint8)
    np.testing.assert_allclose(prepare(pcm8, 16000), [0.0, -1.0, 127 / 128, 0.5])
    pcm32 = np.array([2**30, -(2**31)], dtype=np.int32)
    np.testing.assert_allclose(prepare(pcm32, 16000), [0.5, -1.0])
    assert prepare(data.astype(np.float64), 16000).dtype == np.float32
    assert prepare([0.0, 0.25], 16000).tolist() == [0.0, 0.25]


def test_prepare_channel_layouts():
    stereo = tone(0.5, 16000, channels=2)  # [frames, channels]
    expected = stereo.mean(axis=1)
    np.testing.assert_allclose(prepare(stereo, 16000), expected, atol=1e-7)
    np.testing.assert_allclose(prepare(stereo.T, 16000), expected, atol=1e-7)
    six = tone(0.5, 16000, channels=6)
    np.testing.assert_allclose(prepare(six.T, 16000), six.mean(axis=1), atol=1e-7)
    square = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)  # read as [frames, channels]
    np.testing.assert_allclose(prepare(square, 16000), [0.5, 0.5])


def test_prepare_resamples():
    data = tone(1.0, 44100, channels=2)
    out = prepare(data, 44100)
    assert out.dtype == np.float32 and len(out) == 16000
    assert abs(peak_hz(out, 16000) - 440.0) <= 1.0
    assert len(prepare(data, 44100, target_rate=22050)) == 22050


@pytest.mark.parametrize(
    ("signal", "kwargs", "reason"),
    [
        (np.zeros(0, np.float32), {}, "no audio samples"),
        (np.zeros((0, 2), np.float32), {}, "no audio samples"),
        (np.float32(0.5), {}, "got 0-D"),
        (np.zeros((2, 3, 4), np.float32), {}, "got 3-D (2, 3, 4)"),
        (np.array([0.0, np.nan]), {}, "contains NaN or infinite samples"),
        (np.array([np.inf, 0.0], np.float32), {}, "contains NaN or infinite samples"),
        (np.zeros(4, np.complex64), {}, "unsupported sample dtype complex64"),
        (np.zeros(4, bool), {}, "unsupported sample dtype bool"),
        (np.array(["a", "b"]), {}, "unsupported sample dtype"),
        (np.zeros(16000, np.float32), {"sample_rate": 0}, "invalid sample rate 0"),
        (np.zeros(16000, np.float32), {"target_rate": -1}, "invalid target rate -1"),
        (np.zeros(16000, np.float32), {"target_rate": 10**9}, "invalid target rate"),
        (np.zeros(16000, np.float32), {"max_seconds": 0.5}, "1.0 s long, over the 0.5 s limit"),
        (np.zeros(1, np.float32), {"sample_rate": 48000}, "too short to resample"),
    ],
)
def test_prepare_errors(signal, kwargs, reason):
    arguments = {"sample_rate": 16000, **kwargs}
    expect_error(lambda: prepare(signal, **arguments), "signal", reason)


def test_prepare_does_not_modify_input():
    data = np.array([[1, 2], [3, 4], [5, 6]], dtype=np.int16)
    before = data.copy()
    prepare(data, 8000)
    np.testing.assert_array_equal(data, before)


def test_resample():
    data = tone(1.0, 48000)
    out = resample(data, 48000, 16000)
    assert out.dtype == np.float32 and len(out) == 16000
    assert abs(peak_hz(out, 16000) - 440.0) <= 1.0
    assert resample(data.astype(np.float64), 48000, 16000).dtype == np.float64
    same = resample(data, 48000, 48000)
    assert same is not data
    np.testing.assert_array_equal(same, data)
    assert resample(tone(1.0, 8000, channels=2), 8000, 16000).shape == (16000, 2)
    expect_error(lambda: resample(data, 0, 16000), "signal", "invalid sample rate 0")
    expect_error(lambda: resample(np.zeros(4, np.int16), 8000, 16000), "signal", "int16")


def test_is_silent():
    assert is_silent(np.zeros(16000, np.float32))
    assert is_silent(np.zeros(0, np.float32))
    assert not is_silent(tone(0.1, 16000))
    quiet = tone(0.1, 16000, amp=10 ** (-70 / 20) * np.sqrt(2))  # RMS = -70 dBFS
    assert is_silent(quiet)
    assert not is_silent(quiet, threshold_db=-80.0)
    assert not is_silent(np.full(100, 1000, dtype=np.int16))  # ints scaled by dtype: -30 dBFS
    assert is_silent(np.full(100, 10, dtype=np.int16))  # -70 dBFS
    expect_error(lambda: is_silent(np.array([np.nan])), "signal", "contains NaN")


@pytest.mark.parametrize("head, named", [
    (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00", "MP4 container"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81", "WebM/Matroska"),
    (b"\xff\xf1\x50\x80\x02\x1f\xfc\x21\x00\x49\x90\x02", "raw AAC"),
])
def test_common_containers_libsndfile_cannot_read_are_named(tmp_path, head, named):
    path = tmp_path / "voice.m4a"
    path.write_bytes(head + bytes(4000))
    with pytest.raises(audio.AudioError) as err:
        audio.load(path)
    message = str(err.value)
    assert named in message and "ffmpeg" in message and "\n" not in message
