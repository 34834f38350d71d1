"""Corpus loaders on synthetic trees that follow each corpus's real naming exactly."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.corpora import (
    CORPORA,
    cremad,
    emodb,
    iemocap,
    load_corpus,
    manifest,
    msp_improv,
    ravdess,
    savee,
    tess,
    urdu,
)
from emovox.errors import ConfigError, CorpusError
from emovox.labels import EMOTIONS, SUBSETS


def _encode(fmt: str) -> bytes:
    signal = 0.1 * np.random.default_rng(0).standard_normal(1600).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, signal, 16000, format=fmt, subtype="PCM_16")
    return buffer.getvalue()


# 0.1 s of noise, encoded once; every synthetic file gets the same bytes.
WAV = _encode("WAV")
FLAC = _encode("FLAC")


def touch(root: Path, relative: str) -> Path:
    """Write a tiny valid audio file (WAV or FLAC by extension, any case) or an empty file."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    path.write_bytes(WAV if suffix == ".wav" else FLAC if suffix == ".flac" else b"")
    return path


def by_id(utterances):
    return {u.id: u for u in utterances}


def assert_one_line_corpus_error(excinfo, *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.fixture
def corpus_log(caplog):
    caplog.set_level(logging.INFO, logger="emovox.corpora")
    return caplog


# --------------------------------------------------------------------------------------------
# RAVDESS


@pytest.fixture
def ravdess_root(tmp_path: Path) -> Path:
    root = tmp_path / "Audio_Speech_Actors_01-24"
    for name in (
        "Actor_01/03-01-01-01-01-01-01.wav",  # neutral, male
        "Actor_01/03-01-05-02-02-01-01.wav",  # angry, strong
        "Actor_02/03-01-02-01-01-01-02.flac",  # calm, female
        "Actor_02/03-01-08-01-01-02-02.WAV",  # surprised, upper-case extension
        "Actor_01/03-02-03-01-01-01-01.wav",  # song: skipped
        "Actor_01/01-01-05-01-01-01-01.wav",  # full audio-video: skipped
        "Actor_02/02-01-05-01-01-01-02.wav",  # video-only: skipped
        "Actor_01/notes.wav",  # not a RAVDESS name: skipped
        "Actor_01/01-01-05-01-01-01-01.mp4",  # not audio: ignored
        "Actor_01/readme.txt",
    ):
        touch(root, name)
    return root


def test_ravdess_fields(ravdess_root: Path, corpus_log) -> None:
    utts = ravdess.load(ravdess_root)
    assert [u.id for u in utts] == [
        "ravdess/03-01-01-01-01-01-01",
        "ravdess/03-01-02-01-01-01-02",
        "ravdess/03-01-05-02-02-01-01",
        "ravdess/03-01-08-01-01-02-02",
    ]
    first, calm, angry, surprised = utts
    assert (first.speaker, first.gender, first.label) == ("ravdess/01", "male", "neutral")
    assert (calm.speaker, calm.gender, calm.label) == ("ravdess/02", "female", "calm")
    assert calm.path.endswith(".flac")
    assert surprised.label == "surprised" and surprised.path.endswith(".WAV")
    assert angry.corpus == "ravdess" and angry.session is None
    assert dict(angry.extra) == {
        "raw_label": "05",
        "intensity": "strong",
        "statement": "02",
        "repetition": "01",
    }
    assert angry.raw_label == "05"
    message = corpus_log.records[-1].getMessage()
    assert "4 utterances" in message and "skipped 4" in message
    assert "1 song" in message and "2 video" in message


def test_ravdess_root_may_be_a_parent(ravdess_root: Path) -> None:
    assert len(ravdess.load(ravdess_root.parent)) == 4
    assert len(ravdess.load(ravdess_root / "Actor_01")) == 2


def test_ravdess_classes(ravdess_root: Path) -> None:
    assert [u.label for u in ravdess.load(ravdess_root, classes=("angry",))] == ["angry"]
    assert [u.label for u in ravdess.load(ravdess_root, classes="angry,calm")] == [
        "calm",
        "angry",
    ]
    labels = {u.label for u in ravdess.load(ravdess_root, classes="default7")}
    assert labels == {"neutral", "angry", "surprised"}
    assert len(ravdess.load(ravdess_root, classes="all")) == 4
    with pytest.raises(ConfigError):
        ravdess.load(ravdess_root, classes="furious")
    with pytest.raises(CorpusError) as excinfo:
        ravdess.load(ravdess_root, classes=("sad",))
    assert_one_line_corpus_error(excinfo, "sad")


def test_ravdess_duplicate_copies_are_loaded_once(ravdess_root: Path, corpus_log) -> None:
    touch(ravdess_root, "Actor_01/03-01-01-01-01-01-01.flac")
    touch(ravdess_root, "copy/Actor_01/03-01-01-01-01-01-01.wav")
    utts = ravdess.load(ravdess_root)
    assert len(utts) == 4
    assert "2 duplicate id" in corpus_log.records[-1].getMessage()


def test_ravdess_only_song_files_is_an_error(tmp_path: Path) -> None:
    touch(tmp_path, "Actor_01/03-02-03-01-01-01-01.wav")
    with pytest.raises(CorpusError) as excinfo:
        ravdess.load(tmp_path)
    assert_one_line_corpus_error(excinfo, "no matching file", "song", ravdess.LAYOUT)


# --------------------------------------------------------------------------------------------
# EmoDB

ERKENNUNG = (
    "Nr.\tSatz\terkannt\tnatuerlich\n"
    "1\u00a0\u00a0\t03a01Fa.wav\t90,00\u00a0\u00a0\u00a0\t75,00\u00a0\u00a0\n"
    "2\u00a0\u00a0\t08a02Wb.wav\t100,00\u00a0\t95,00\u00a0\n"
    "3\u00a0\u00a0\tbroken line\n"
)


@pytest.fixture
def emodb_root(tmp_path: Path) -> Path:
    root = tmp_path / "emodb"
    for name in (
        "wav/03a01Fa.wav",  # speaker 03 male, happiness
        "wav/08a02Wb.flac",  # speaker 08 female, anger
        "wav/16b10Lc.wav",  # speaker 16 female, boredom
        "wav/13a05Ea.wav",  # speaker 13 female, disgust
        "wav/99a01Wa.wav",  # unknown speaker: skipped
        "wav/03a01Xa.wav",  # unknown emotion letter: skipped
        "wav/03a01Fa_copy.wav",  # not SSTTTEV: skipped
    ):
        touch(root, name)
    (root / "erkennung.txt").write_bytes(ERKENNUNG.encode("latin-1"))
    return root


def test_emodb_fields(emodb_root: Path, corpus_log) -> None:
    utts = emodb.load(emodb_root)
    found = by_id(utts)
    assert list(found) == ["emodb/03a01Fa", "emodb/08a02Wb", "emodb/13a05Ea", "emodb/16b10Lc"]
    happy = found["emodb/03a01Fa"]
    assert (happy.speaker, happy.gender, happy.label) == ("emodb/03", "male", "happy")
    assert dict(happy.extra) == {
        "raw_label": "F",
        "text": "a01",
        "version": "a",
        "recognition_rate": 90.0,
        "naturalness": 75.0,
    }
    angry = found["emodb/08a02Wb"]
    assert (angry.gender, angry.label, angry.extra["recognition_rate"]) == (
        "female",
        "angry",
        100.0,
    )
    assert found["emodb/16b10Lc"].label == "bored"
    assert found["emodb/13a05Ea"].label == "disgust"
    assert "recognition_rate" not in found["emodb/16b10Lc"].extra
    assert "skipped 3" in corpus_log.records[-1].getMessage()


def test_emodb_files_directly_in_root_without_listening_test(emodb_root: Path) -> None:
    (emodb_root / "erkennung.txt").unlink()
    utts = emodb.load(emodb_root / "wav")
    assert len(utts) == 4
    assert all("recognition_rate" not in u.extra for u in utts)


def test_emodb_listening_test_found_beside_wav_and_garbage_ignored(emodb_root: Path) -> None:
    assert emodb.load(emodb_root / "wav")[0].extra["recognition_rate"] == 90.0
    (emodb_root / "erkennung.txt").write_bytes(b"\xff\xfe garbage \x00\n")
    assert len(emodb.load(emodb_root)) == 4


def test_emodb_classes(emodb_root: Path) -> None:
    assert [u.label for u in emodb.load(emodb_root, classes="default7")] == [
        "happy",
        "angry",
        "disgust",
    ]


# --------------------------------------------------------------------------------------------
# TESS


@pytest.fixture
def tess_root(tmp_path: Path) -> Path:
    root = tmp_path / "TESS Toronto emotional speech set data"
    for name in (
        "OAF_angry/OAF_back_angry.wav",
        "OAF_Fear/OAF_back_fear.wav",
        "OAF_Pleasant_surprise/OAF_back_ps.wav",
        "OAF_neutral/OA_bite_neutral.wav",  # the real release's misnamed file
        "OAF_Sad/OAF_back_sad.flac",
        "YAF_pleasant_surprised/YAF_dog_ps.wav",
        "YAF_disgust/YAF_dog_disgust.wav",
        "YAF_happy/YAF_dog_happy.wav",
        "YAF_happy/XYZ_dog_happy.wav",  # unknown speaker: skipped
        "YAF_happy/YAF_dog_bored.wav",  # unknown emotion: skipped
        "YAF_happy/YAF.wav",  # not SPEAKER_word_emotion: skipped
    ):
        touch(root, name)
    return root


def test_tess_fields(tess_root: Path, corpus_log) -> None:
    found = by_id(tess.load(tess_root))
    assert list(found) == [
        "tess/OAF_back_angry",
        "tess/OAF_back_fear",
        "tess/OAF_back_ps",
        "tess/OAF_back_sad",
        "tess/OA_bite_neutral",
        "tess/YAF_dog_disgust",
        "tess/YAF_dog_happy",
        "tess/YAF_dog_ps",
    ]
    misnamed = found["tess/OA_bite_neutral"]
    assert (misnamed.speaker, misnamed.label) == ("tess/OAF", "neutral")
    surprise = found["tess/YAF_dog_ps"]
    assert (surprise.speaker, surprise.label, surprise.gender) == (
        "tess/YAF",
        "surprised",
        "female",
    )
    assert dict(surprise.extra) == {"raw_label": "ps", "word": "dog"}
    assert found["tess/OAF_back_fear"].label == "fearful"
    assert {u.gender for u in found.values()} == {"female"}
    assert "skipped 3" in corpus_log.records[-1].getMessage()


def test_tess_classes(tess_root: Path) -> None:
    utts = tess.load(tess_root, classes=("surprised", "sad"))
    assert [u.id for u in utts] == ["tess/OAF_back_ps", "tess/OAF_back_sad", "tess/YAF_dog_ps"]


# --------------------------------------------------------------------------------------------
# SAVEE


@pytest.fixture
def savee_root(tmp_path: Path) -> Path:
    root = tmp_path / "savee"
    for name in (
        "AudioData/DC/a01.wav",
        "AudioData/JE/sa15.wav",
        "AudioData/JK/n30.wav",
        "AudioData/KL/su01.flac",
        "AudioData/KL/d03.wav",
        "AudioData/XX/a01.wav",  # unknown speaker folder: skipped
        "AudioData/DC/info.wav",  # not <code><nn>: skipped
    ):
        touch(root, name)
    return root


def test_savee_original_layout(savee_root: Path, corpus_log) -> None:
    found = by_id(savee.load(savee_root))
    assert list(found) == [
        "savee/DC_a01",
        "savee/JE_sa15",
        "savee/JK_n30",
        "savee/KL_d03",
        "savee/KL_su01",
    ]
    sad = found["savee/JE_sa15"]
    assert (sad.speaker, sad.gender, sad.label) == ("savee/JE", "male", "sad")
    assert dict(sad.extra) == {"raw_label": "sa", "sentence": "15"}
    assert found["savee/KL_su01"].label == "surprised"
    assert found["savee/KL_d03"].label == "disgust"
    assert found["savee/JK_n30"].label == "neutral"
    assert "skipped 2" in corpus_log.records[-1].getMessage()


def test_savee_flattened_layout_gives_the_same_ids(tmp_path: Path) -> None:
    for name in ("ALL/DC_a01.wav", "ALL/JE_sa15.wav", "ALL/KL_f12.wav", "ALL/JK_h02.WAV"):
        touch(tmp_path, name)
    found = by_id(savee.load(tmp_path))
    assert list(found) == ["savee/DC_a01", "savee/JE_sa15", "savee/JK_h02", "savee/KL_f12"]
    assert found["savee/KL_f12"].label == "fearful"
    assert found["savee/JK_h02"].speaker == "savee/JK"


def test_savee_both_layouts_in_one_root_are_not_doubled(savee_root: Path) -> None:
    touch(savee_root, "ALL/DC_a01.wav")
    assert len(savee.load(savee_root)) == 5


# --------------------------------------------------------------------------------------------
# CREMA-D

DEMOGRAPHICS = (
    '"ActorID","Age","Sex","Race","Ethnicity"\n'
    '1001,51,"Male","Caucasian","Not Hispanic"\n'
    '1002,21,"Female","Caucasian","Not Hispanic"\n'
    '1091,29,"Female","Asian","Not Hispanic"\n'
)


@pytest.fixture
def cremad_root(tmp_path: Path) -> Path:
    root = tmp_path / "CREMA-D"
    for name in (
        "AudioWAV/1001_DFA_ANG_XX.wav",
        "AudioWAV/1002_IEO_HAP_HI.wav",
        "AudioWAV/1091_TSI_SAD_LO.flac",
        "AudioWAV/1050_IEO_NEU_MD.wav",  # actor missing from the demographics file
        "AudioWAV/1001_XYZ_ANG_XX.wav",  # unknown sentence: skipped
        "AudioWAV/1001_DFA_CAL_XX.wav",  # unknown emotion: skipped
        "AudioWAV/1001_DFA_ANG.wav",  # not AAAA_SSS_EEE_LL: skipped
        "AudioMP3/1001_DFA_ANG_XX.mp3",  # other format: ignored
    ):
        touch(root, name)
    (root / "VideoDemographics.csv").write_text(DEMOGRAPHICS, encoding="utf-8")
    return root


def test_cremad_fields(cremad_root: Path, corpus_log) -> None:
    found = by_id(cremad.load(cremad_root))
    assert list(found) == [
        "cremad/1001_DFA_ANG_XX",
        "cremad/1002_IEO_HAP_HI",
        "cremad/1050_IEO_NEU_MD",
        "cremad/1091_TSI_SAD_LO",
    ]
    angry = found["cremad/1001_DFA_ANG_XX"]
    assert (angry.speaker, angry.gender, angry.label) == ("cremad/1001", "male", "angry")
    assert dict(angry.extra) == {
        "raw_label": "ANG",
        "sentence": "DFA",
        "intensity": "unspecified",
        "age": 51,
    }
    assert found["cremad/1002_IEO_HAP_HI"].extra["intensity"] == "high"
    assert found["cremad/1091_TSI_SAD_LO"].gender == "female"
    assert found["cremad/1050_IEO_NEU_MD"].gender is None
    assert "skipped 3" in corpus_log.records[-1].getMessage()


def test_cremad_without_demographics_and_from_audiowav(cremad_root: Path) -> None:
    assert cremad.load(cremad_root / "AudioWAV")[0].gender == "male"
    (cremad_root / "VideoDemographics.csv").unlink()
    assert {u.gender for u in cremad.load(cremad_root)} == {None}


def test_cremad_bad_demographics_is_an_error(cremad_root: Path) -> None:
    (cremad_root / "VideoDemographics.csv").write_text("id,gender\n1001,m\n", encoding="utf-8")
    with pytest.raises(CorpusError) as excinfo:
        cremad.load(cremad_root)
    assert_one_line_corpus_error(excinfo, "VideoDemographics.csv", "Sex")


# --------------------------------------------------------------------------------------------
# IEMOCAP

EMO_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"


def emo_line(start: str, end: str, utt: str, code: str, vad: str) -> str:
    # The summary line, then per-rater lines as in the release (ignored by the loader).
    return (
        f"[{start} - {end}]\t{utt}\t{code}\t[{vad}]\n"
        "C-E2:\tNeutral;\t()\n"
        "A-E3:\tval 3; act 2; dom  2;\t()\n\n"
    )


@pytest.fixture
def iemocap_root(tmp_path: Path) -> Path:
    root = tmp_path / "IEMOCAP_full_release"
    evaluation = root / "Session1/dialog/EmoEvaluation"
    evaluation.mkdir(parents=True)
    (evaluation / "Ses01F_impro01.txt").write_text(
        EMO_HEADER
        + emo_line("6.2901", "8.2357", "Ses01F_impro01_F000", "neu", "2.5000, 2.5000, 2.5000")
        + emo_line("10.0100", "11.3925", "Ses01F_impro01_M001", "exc", "4.0000, 3.5000, 3.0000")
        + emo_line("14.8872", "18.0175", "Ses01F_impro01_F002", "xxx", "2.5000, 3.5000, 3.5000")
        + emo_line("19.2900", "20.7875", "Ses01F_impro01_M003", "ang", "1.5000, 4.0000, 4.5000")
        + emo_line("21.3257", "24.7400", "Ses01F_impro01_F004", "fru", "2.0000, 3.0000, 3.0000")
        + emo_line("25.0000", "26.5000", "Ses01F_impro01_M005", "sad", "2.0000, 2.0000, 2.0000"),
        encoding="utf-8",
    )
    # Per-rater files and macOS resource forks must not be read.
    (evaluation / "Categorical").mkdir()
    (evaluation / "Categorical/Ses01F_impro01_e1_cat.txt").write_text(
        "[1.0 - 2.0]\tSes01F_impro01_F009\tang\t[1.0, 1.0, 1.0]\n", encoding="utf-8"
    )
    (evaluation / "._Ses01F_impro01.txt").write_bytes(b"\x00\x05\x16\x07")
    for utt in ("F000", "M001", "F002", "M003", "F004", "F009"):  # M005 has no audio
        touch(root, f"Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_{utt}.wav")
    touch(root, "Session1/sentences/wav/Ses01F_impro01/._Ses01F_impro01_F000.wav")

    evaluation = root / "Session2/dialog/EmoEvaluation"
    evaluation.mkdir(parents=True)
    (evaluation / "Ses02M_script01_1.txt").write_text(
        EMO_HEADER
        + emo_line("1.0000", "2.5000", "Ses02M_script01_1_F000", "sad", "2.0, 2.0, 2.0")
        + emo_line("3.0000", "4.5000", "Ses02M_script01_1_M001", "hap", "4.0, 3.0, 3.0"),
        encoding="utf-8",
    )
    touch(root, "Session2/sentences/wav/Ses02M_script01_1/Ses02M_script01_1_F000.flac")
    touch(root, "Session2/sentences/wav/Ses02M_script01_1/Ses02M_script01_1_M001.wav")
    return root


def test_iemocap_defaults(iemocap_root: Path, corpus_log) -> None:
    found = by_id(iemocap.load(iemocap_root))
    assert list(found) == [
        "iemocap/Ses01F_impro01_F000",
        "iemocap/Ses01F_impro01_M001",
        "iemocap/Ses01F_impro01_M003",
        "iemocap/Ses02M_script01_1_F000",
        "iemocap/Ses02M_script01_1_M001",
    ]
    neutral = found["iemocap/Ses01F_impro01_F000"]
    assert (neutral.speaker, neutral.gender, neutral.session, neutral.label) == (
        "iemocap/Ses01F",
        "female",
        "iemocap/Session1",
        "neutral",
    )
    assert neutral.start == 0.0 and neutral.duration is None
    assert dict(neutral.extra) == {
        "raw_label": "neu",
        "valence": 2.5,
        "arousal": 2.5,
        "dominance": 2.5,
        "dialog": "Ses01F_impro01",
        "improvised": True,
        "dialog_start": 6.2901,
        "dialog_end": 8.2357,
    }
    excited = found["iemocap/Ses01F_impro01_M001"]
    assert (excited.label, excited.raw_label) == ("happy", "exc")
    assert (excited.extra["valence"], excited.extra["arousal"], excited.extra["dominance"]) == (
        4.0,
        3.5,
        3.0,
    )
    scripted = found["iemocap/Ses02M_script01_1_F000"]
    assert (scripted.speaker, scripted.gender, scripted.session) == (
        "iemocap/Ses02F",
        "female",
        "iemocap/Session2",
    )
    assert scripted.extra["improvised"] is False
    message = corpus_log.records[-1].getMessage()
    assert "1 missing audio" in message and "1 no majority label (xxx)" in message


def test_iemocap_speaker_comes_from_the_utterance_not_the_dialog(iemocap_root: Path) -> None:
    # Ses01F_impro01 is a dialog led by the woman of session 1, but its M turns are the man's.
    utt = by_id(iemocap.load(iemocap_root))["iemocap/Ses01F_impro01_M003"]
    assert (utt.speaker, utt.gender, utt.label) == ("iemocap/Ses01M", "male", "angry")
    utt = by_id(iemocap.load(iemocap_root))["iemocap/Ses02M_script01_1_F000"]
    assert (utt.speaker, utt.gender) == ("iemocap/Ses02F", "female")
    speakers = {u.speaker for u in iemocap.load(iemocap_root, classes="all")}
    assert speakers == {"iemocap/Ses01F", "iemocap/Ses01M", "iemocap/Ses02F", "iemocap/Ses02M"}


def test_iemocap_options(iemocap_root: Path) -> None:
    everything = by_id(iemocap.load(iemocap_root, classes="all"))
    assert everything["iemocap/Ses01F_impro01_F004"].label == "frustrated"
    assert "iemocap/Ses01F_impro01_F002" not in everything  # xxx is always dropped
    assert "iemocap/Ses01F_impro01_F009" not in everything  # only in a per-rater file
    assert len(everything) == 6
    assert len(iemocap.load(iemocap_root, classes=None)) == 6

    unmerged = by_id(iemocap.load(iemocap_root, merge_excited=False))
    assert "iemocap/Ses01F_impro01_M001" not in unmerged
    assert "iemocap/Ses02M_script01_1_M001" in unmerged  # hap stays happy
    unmerged_all = by_id(iemocap.load(iemocap_root, classes="all", merge_excited=False))
    assert unmerged_all["iemocap/Ses01F_impro01_M001"].label == "excited"

    improvised = iemocap.load(iemocap_root, improvised_only=True)
    assert {u.extra["dialog"] for u in improvised} == {"Ses01F_impro01"}


def test_iemocap_errors(tmp_path: Path, iemocap_root: Path) -> None:
    touch(tmp_path, "elsewhere/Ses01F_impro01_F000.wav")
    with pytest.raises(CorpusError) as excinfo:
        iemocap.load(tmp_path / "elsewhere")
    assert_one_line_corpus_error(excinfo, "SessionN", iemocap.LAYOUT)

    no_labels = tmp_path / "no_labels"
    touch(no_labels, "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav")
    with pytest.raises(CorpusError) as excinfo:
        iemocap.load(no_labels)
    assert_one_line_corpus_error(excinfo, "EmoEvaluation")

    for wav in (iemocap_root / "Session1/sentences").rglob("*.wav"):
        wav.unlink()
    for audio in (iemocap_root / "Session2/sentences").rglob("*.*"):
        audio.unlink()
    with pytest.raises(CorpusError) as excinfo:
        iemocap.load(iemocap_root)
    assert_one_line_corpus_error(excinfo, "missing audio", iemocap.LAYOUT)


# --------------------------------------------------------------------------------------------
# MSP-IMPROV

EVALUATION = """UTD-IMPROV-S01A-F01-S-FM01.avi; A; A:4.000000; V:1.500000; D:4.000000 ; N:3.000000;
rater-01; Angry; Frustrated; A:4.0; V:1.0; D:4.0; N:3.0;
rater-02; Angry; ; A:4.0; V:2.0; D:4.0; N:3.0;

UTD-IMPROV-S01A-M01-R-MF01.avi; N; A:2.500000; V:3.000000; D:3.000000 ; N:2.000000;
rater-01; Neutral; ; A:2.5; V:3.0; D:3.0; N:2.0;

UTD-IMPROV-S02H-F03-T-FM02.avi; H; A:3.500000; V:4.200000; D:3.100000 ; N:NaN;
rater-03; Happy; Excited; A:3.5; V:4.2; D:3.1; N:NaN;

UTD-IMPROV-S03S-M06-P-MF03.avi; X; A:2.000000; V:2.000000; D:2.000000 ; N:4.000000;

UTD-IMPROV-S04N-F02-S-FF01.avi; O; A:3.000000; V:3.000000; D:3.000000 ; N:4.000000;

UTD-IMPROV-S05S-M04-T-MF01.avi; S; A:1.800000; V:1.600000; D:2.000000 ; N:4.000000;
"""


@pytest.fixture
def msp_root(tmp_path: Path) -> Path:
    root = tmp_path / "MSP-IMPROV"
    root.mkdir()
    (root / "Evaluation.txt").write_text(EVALUATION, encoding="utf-8")
    for name in (
        "Audio/session1/S01A/S/MSP-IMPROV-S01A-F01-S-FM01.wav",
        "Audio/session1/S01A/R/MSP-IMPROV-S01A-M01-R-MF01.wav",
        "Audio/session3/S02H/T/MSP-IMPROV-S02H-F03-T-FM02.flac",
        "Audio/session6/S03S/P/MSP-IMPROV-S03S-M06-P-MF03.wav",  # X: no agreement
        "Audio/session2/S04N/S/MSP-IMPROV-S04N-F02-S-FF01.wav",  # O: other
        "Audio/session5/S06A/T/MSP-IMPROV-S06A-F05-T-FM01.wav",  # no consensus line
        "Audio/session1/S01A/S/MSP-IMPROV-S01A-F01-S.wav",  # truncated name: skipped
        "Video/session1/S01A/S/MSP-IMPROV-S01A-F01-S-FM01.avi",  # not audio: ignored
    ):
        touch(root, name)
    return root


def test_msp_improv_fields(msp_root: Path, corpus_log) -> None:
    found = by_id(msp_improv.load(msp_root))
    assert list(found) == [
        "msp_improv/MSP-IMPROV-S01A-F01-S-FM01",
        "msp_improv/MSP-IMPROV-S01A-M01-R-MF01",
        "msp_improv/MSP-IMPROV-S02H-F03-T-FM02",
    ]
    angry = found["msp_improv/MSP-IMPROV-S01A-F01-S-FM01"]
    assert (angry.speaker, angry.gender, angry.session, angry.label) == (
        "msp_improv/F01",
        "female",
        "msp_improv/session1",
        "angry",
    )
    assert dict(angry.extra) == {
        "raw_label": "A",
        "condition": "S",
        "condition_name": "improvised_target",
        "sentence": "S01",
        "target_emotion": "angry",
        "turn": "FM01",
        "arousal": 4.0,
        "valence": 1.5,
        "dominance": 4.0,
        "naturalness": 3.0,
    }
    read = found["msp_improv/MSP-IMPROV-S01A-M01-R-MF01"]
    assert (read.speaker, read.gender, read.label, read.extra["condition_name"]) == (
        "msp_improv/M01",
        "male",
        "neutral",
        "read",
    )
    happy = found["msp_improv/MSP-IMPROV-S02H-F03-T-FM02"]
    assert happy.session == "msp_improv/session3" and "naturalness" not in happy.extra
    message = corpus_log.records[-1].getMessage()
    assert "1 no agreement (X)" in message and "1 no consensus line" in message


def test_msp_improv_options(msp_root: Path) -> None:
    everything = by_id(msp_improv.load(msp_root, classes="all"))
    assert everything["msp_improv/MSP-IMPROV-S04N-F02-S-FF01"].label == "other"
    assert len(everything) == 4
    improvised = msp_improv.load(msp_root, conditions=("S", "T"))
    assert {u.extra["condition"] for u in improvised} == {"S", "T"}
    with pytest.raises(ConfigError):
        msp_improv.load(msp_root, conditions=("Q",))


def test_msp_improv_sessions_at_root_and_misspelt_label_file(tmp_path: Path) -> None:
    (tmp_path / "Evalution.txt").write_text(EVALUATION, encoding="utf-8")
    touch(tmp_path, "session4/S05S/T/MSP-IMPROV-S05S-M04-T-MF01.wav")
    (utt,) = msp_improv.load(tmp_path)
    assert (utt.label, utt.speaker, utt.session) == (
        "sad",
        "msp_improv/M04",
        "msp_improv/session4",
    )


def test_msp_improv_errors(tmp_path: Path) -> None:
    touch(tmp_path, "Audio/session1/S01A/S/MSP-IMPROV-S01A-F01-S-FM01.wav")
    with pytest.raises(CorpusError) as excinfo:
        msp_improv.load(tmp_path)
    assert_one_line_corpus_error(excinfo, "Evaluation.txt", msp_improv.LAYOUT)
    (tmp_path / "Evaluation.txt").write_text("nothing useful\n", encoding="utf-8")
    with pytest.raises(CorpusError) as excinfo:
        msp_improv.load(tmp_path)
    assert_one_line_corpus_error(excinfo, "consensus")


# --------------------------------------------------------------------------------------------
# URDU


@pytest.fixture
def urdu_root(tmp_path: Path) -> Path:
    root = tmp_path / "URDU-Dataset"
    for name in (
        "Angry/SM1_F1_A01.wav",
        "Angry/SM1_F10_A010.wav",
        "Happy/SF1_F1_H01.wav",
        "Neutral/SF9_F1_N01.flac",
        "Sad/SM6_F4_S0100.wav",
        "Sad/SM23/SM23_F1_S07.wav",  # speaker subfolder inside an emotion folder
        "Sad/SM1_F1_A099.wav",  # letter disagrees with the folder: skipped
        "Other/SM2_F1_A01.wav",  # not in an emotion folder: skipped
        "Angry/SM1-F1-A01.wav",  # not S<G><n>_F<k>_<E><m>: skipped
    ):
        touch(root, name)
    return root


def test_urdu_fields(urdu_root: Path, corpus_log) -> None:
    found = by_id(urdu.load(urdu_root))
    assert list(found) == [
        "urdu/SF1_F1_H01",
        "urdu/SF9_F1_N01",
        "urdu/SM1_F10_A010",
        "urdu/SM1_F1_A01",
        "urdu/SM23_F1_S07",
        "urdu/SM6_F4_S0100",
    ]
    angry = found["urdu/SM1_F10_A010"]
    assert (angry.speaker, angry.gender, angry.label) == ("urdu/SM1", "male", "angry")
    assert dict(angry.extra) == {"raw_label": "Angry", "speaker_file": 10, "emotion_file": 10}
    happy = found["urdu/SF1_F1_H01"]
    assert (happy.speaker, happy.gender, happy.label) == ("urdu/SF1", "female", "happy")
    assert found["urdu/SM6_F4_S0100"].extra["emotion_file"] == 100
    assert found["urdu/SM23_F1_S07"].label == "sad"
    assert found["urdu/SF9_F1_N01"].label == "neutral"
    assert "skipped 3" in corpus_log.records[-1].getMessage()


def test_urdu_root_may_be_one_emotion_folder(urdu_root: Path) -> None:
    assert [u.label for u in urdu.load(urdu_root / "Angry")] == ["angry", "angry"]


# --------------------------------------------------------------------------------------------
# CSV manifest


@pytest.fixture
def manifest_root(tmp_path: Path) -> Path:
    root = tmp_path / "mydata"
    touch(root, "clips/a.wav")
    touch(root, "clips/b.flac")
    touch(root, "long/call.wav")
    touch(tmp_path, "elsewhere/abs.wav")
    (root / "manifest.csv").write_text(
        "Path,label,speaker,gender,session,start,end,valence,arousal,dominance,note\n"
        "clips/a.wav,anger,spk01,F,s1,,,,,,first\n"
        "clips/b.flac,neutral,spk02,male,,,,,,,\n"
        "long/call.wav,sad,spk03,,s2,0,4.5,,,,\n"
        "long/call.wav,,spk04,,s2,4.5,9.25,3.5,2,4,\n"
        f"{tmp_path / 'elsewhere/abs.wav'},happy,spk01,female,,,,,,,\n"
        "\n",
        encoding="utf-8-sig",
    )
    return root


def test_manifest_fields(manifest_root: Path) -> None:
    found = by_id(manifest.load(manifest_root, corpus="calls"))
    assert list(found) == ["calls/a", "calls/abs", "calls/b", "calls/call#0", "calls/call#4.5"]
    first = found["calls/a"]
    assert (first.corpus, first.speaker, first.gender, first.session, first.label) == (
        "calls",
        "calls/spk01",
        "female",
        "calls/s1",
        "angry",
    )
    assert dict(first.extra) == {"raw_label": "anger", "note": "first"}
    assert Path(first.path) == manifest_root / "clips/a.wav"
    assert found["calls/abs"].path == str(manifest_root.parent / "elsewhere/abs.wav")
    assert found["calls/b"].gender == "male" and found["calls/b"].session is None
    segment = found["calls/call#0"]
    assert (segment.start, segment.duration, segment.label) == (0.0, 4.5, "sad")
    dimensional = found["calls/call#4.5"]
    assert dimensional.label is None and dimensional.raw_label is None
    assert (dimensional.start, dimensional.duration) == (4.5, 4.75)
    assert (dimensional.extra["valence"], dimensional.extra["arousal"]) == (3.5, 2.0)
    assert found["calls/abs"].start == 0.0 and found["calls/abs"].duration is None


def test_manifest_root_may_be_the_csv_and_default_corpus(manifest_root: Path) -> None:
    utts = manifest.load(manifest_root / "manifest.csv")
    assert {u.corpus for u in utts} == {"custom"}
    assert utts[0].id.startswith("custom/")


def test_manifest_classes_drop_unlabelled_rows(manifest_root: Path) -> None:
    utts = manifest.load(manifest_root, classes="iemocap4")
    assert sorted(u.label for u in utts) == ["angry", "happy", "neutral", "sad"]


@pytest.mark.parametrize(
    ("rows", "line", "fragment"),
    [
        ("path,speaker\nclips/a.wav,s\n", 1, "missing column 'label'"),
        ("path,label,speaker\nclips/a.wav,furious,s\n", 2, "unknown emotion 'furious'"),
        ("path,label,speaker\nclips/a.wav,,s\n", 2, "empty label"),
        ("path,label,speaker,valence\nclips/a.wav,,s,high\n", 2, "valence 'high'"),
        ("path,label,speaker,start\nclips/a.wav,sad,s,-1\n", 2, "negative start"),
        ("path,label,speaker,start,end\nclips/a.wav,sad,s,3,2\n", 2, "not after start"),
        ("path,label,speaker,start,end\nclips/a.wav,sad,s,2,2\n", 2, "not after start"),
        ("path,label,speaker,end\nclips/a.wav,sad,s,nan\n", 2, "not a finite number"),
        ("path,label,speaker\nclips/a.wav,sad,s\nclips/zz.wav,sad,s\n", 3, "not found"),
        ("path,label,speaker\nclips/a.wav,sad,\n", 2, "empty speaker"),
        ("path,label,speaker\n,sad,s\n", 2, "empty path"),
        ("path,label,speaker,gender\nclips/a.wav,sad,s,x\n", 2, "gender 'x'"),
        ("path,label,speaker\nclips/a.wav,sad,s\nclips/a.wav,sad,s\n", 3, "duplicate id"),
        ("path,label,speaker\nclips/a.wav,sad,s,extra\n", 2, "4 fields"),
        ("path,label,speaker,label\nclips/a.wav,sad,s,sad\n", 1, "duplicate column"),
    ],
)
def test_manifest_row_errors(tmp_path: Path, rows: str, line: int, fragment: str) -> None:
    touch(tmp_path, "clips/a.wav")
    csv_path = tmp_path / "manifest.csv"
    csv_path.write_text(rows, encoding="utf-8")
    with pytest.raises(CorpusError) as excinfo:
        manifest.load(csv_path)
    assert_one_line_corpus_error(excinfo, f"{csv_path}:{line}:", fragment)


def test_manifest_file_errors(tmp_path: Path) -> None:
    with pytest.raises(CorpusError) as excinfo:
        manifest.load(tmp_path)
    assert_one_line_corpus_error(excinfo, "manifest.csv", "path,label,speaker")
    (tmp_path / "manifest.csv").write_text("", encoding="utf-8")
    with pytest.raises(CorpusError) as excinfo:
        manifest.load(tmp_path)
    assert_one_line_corpus_error(excinfo, "empty file")
    (tmp_path / "manifest.csv").write_text("path,label,speaker\n", encoding="utf-8")
    with pytest.raises(CorpusError) as excinfo:
        manifest.load(tmp_path)
    assert_one_line_corpus_error(excinfo, "no rows")
    with pytest.raises(ConfigError):
        manifest.load(tmp_path, corpus="My Corpus")


# --------------------------------------------------------------------------------------------
# Registry and errors shared by every loader

PROTOCOLS = {
    "ravdess6",
    "iemocap_loso",
    "msp_improv_loso",
    "savee_loso",
    "emodb_loso",
    "cremad_kfold",
    "tess_loso",
    "speaker_kfold",
}


def test_registry_fields() -> None:
    assert set(CORPORA) == {
        "ravdess",
        "emodb",
        "tess",
        "savee",
        "cremad",
        "iemocap",
        "msp_improv",
        "urdu",
        "manifest",
    }
    for name, info in CORPORA.items():
        assert info.name == name
        assert info.title and info.licence and info.layout
        assert "\n" not in info.layout and "\n" not in info.licence
        assert info.protocol in PROTOCOLS
        assert callable(info.load)
        if info.default_classes is not None:
            assert set(info.default_classes) <= set(EMOTIONS)
    assert CORPORA["iemocap"].default_classes == SUBSETS["iemocap4"]
    assert CORPORA["msp_improv"].default_classes == SUBSETS["msp_improv4"]
    assert CORPORA["ravdess"].default_classes is None
    with pytest.raises(AttributeError):
        CORPORA["ravdess"].name = "x"  # type: ignore[misc]


def test_load_corpus(ravdess_root: Path) -> None:
    assert len(load_corpus("ravdess", ravdess_root, classes=("angry",))) == 1
    with pytest.raises(CorpusError) as excinfo:
        load_corpus("ravdes", ravdess_root)
    assert_one_line_corpus_error(excinfo, "unknown corpus 'ravdes'", "ravdess", "iemocap")
    with pytest.raises(ConfigError) as config_info:
        load_corpus("ravdess", ravdess_root, merge_excited=True)
    assert "merge_excited" in str(config_info.value) and "classes" in str(config_info.value)


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_wrong_roots_name_the_expected_layout(tmp_path: Path, name: str) -> None:
    info = CORPORA[name]
    afile = tmp_path / "file.txt"
    afile.write_text("not a corpus", encoding="utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    roots = [tmp_path / "missing", empty]
    if name != "manifest":  # a manifest root may be a file (the CSV itself)
        roots.append(afile)
    for root in roots:
        with pytest.raises(CorpusError) as excinfo:
            info.load(root)
        assert_one_line_corpus_error(excinfo, info.layout)
    if name != "manifest":
        # A directory full of unrelated audio.
        touch(tmp_path, "unrelated/hello_world.wav")
        with pytest.raises(CorpusError) as excinfo:
            info.load(tmp_path / "unrelated")
        assert_one_line_corpus_error(excinfo, info.layout)
