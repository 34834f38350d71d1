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
    em2ldl,
    emodb,
    iemocap,
    load_corpus,
    manifest,
    msp_improv,
    msp_podcast,
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
        "transcript": "Dogs are sitting by the door",
    }
    assert first.extra["transcript"] == "Kids are talking by the door"
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
    "3\u00a0\u00a0\t13a05Ea.wav\t40,00\u00a0\t60,00\u00a0\n"
    "4\u00a0\u00a0\tbroken line\n"
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
        "transcript": "Der Lappen liegt auf dem Eisschrank.",
        "version": "a",
        "recognition_rate": 90.0,
        "naturalness": 75.0,
        # 90 % recognised happiness; the other 10 % spread evenly over the six other emotions.
        "label_distribution": pytest.approx({
            "happy": 0.9, "angry": 0.1 / 6, "bored": 0.1 / 6, "disgust": 0.1 / 6,
            "fearful": 0.1 / 6, "sad": 0.1 / 6, "neutral": 0.1 / 6,
        }),
    }
    angry = found["emodb/08a02Wb"]
    assert (angry.gender, angry.label, angry.extra["recognition_rate"]) == (
        "female",
        "angry",
        100.0,
    )
    assert angry.extra["label_distribution"] == {"angry": 1.0}  # zero shares are dropped
    assert found["emodb/16b10Lc"].label == "bored"
    assert found["emodb/16b10Lc"].extra["transcript"] == (
        "Die wird auf dem Platz sein, wo wir sie immer hinlegen."
    )
    assert found["emodb/13a05Ea"].extra["transcript"] == (
        "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück."
    )
    assert found["emodb/13a05Ea"].label == "disgust"
    assert found["emodb/13a05Ea"].extra["label_distribution"] == pytest.approx(
        {"disgust": 0.4, **{e: 0.1 for e in ("angry", "bored", "fearful", "happy", "sad",
                                               "neutral")}}
    )
    # No row in erkennung.txt: neither rate nor distribution.
    assert "recognition_rate" not in found["emodb/16b10Lc"].extra
    assert "label_distribution" not in found["emodb/16b10Lc"].extra
    assert "skipped 3" in corpus_log.records[-1].getMessage()


def test_emodb_transcript_only_for_the_ten_sentences(tmp_path: Path) -> None:
    touch(tmp_path, "wav/11b03Td.wav")
    touch(tmp_path, "wav/11a03Td.wav")  # a text code the corpus does not have
    found = by_id(emodb.load(tmp_path))
    assert found["emodb/11b03Td"].extra["transcript"] == (
        "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht."
    )
    assert "transcript" not in found["emodb/11a03Td"].extra
    assert set(emodb.SENTENCES) == {"a01", "a02", "a04", "a05", "a07",
                                    "b01", "b02", "b03", "b09", "b10"}


def test_emodb_rate_outside_percent_is_a_one_line_error(emodb_root: Path) -> None:
    (emodb_root / "erkennung.txt").write_bytes(
        (ERKENNUNG + "4\u00a0\t03a01Fa.wav\t120,00\t75,00\n").encode("latin-1")
    )
    with pytest.raises(CorpusError) as excinfo:
        emodb.load(emodb_root)
    assert_one_line_corpus_error(excinfo, "erkennung.txt:6", "recognition rate 120")


def test_emodb_files_directly_in_root_without_listening_test(emodb_root: Path) -> None:
    (emodb_root / "erkennung.txt").unlink()
    utts = emodb.load(emodb_root / "wav")
    assert len(utts) == 4
    assert all("recognition_rate" not in u.extra for u in utts)
    assert all("label_distribution" not in u.extra for u in utts)


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
    assert dict(surprise.extra) == {
        "raw_label": "ps", "word": "dog", "transcript": "Say the word dog",
    }
    assert found["tess/OAF_back_angry"].extra["transcript"] == "Say the word back"
    assert misnamed.extra["transcript"] == "Say the word bite"
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


def test_savee_has_no_transcript(savee_root: Path) -> None:
    # The sentence numbers are known, their words are not shipped with the audio.
    assert all("transcript" not in u.extra for u in savee.load(savee_root))


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

# processedResults/tabulatedVotes.csv as in the CREMA-D repository: the first (unnamed) column is
# 100000 * queryType + clipNum (1 voice only, 2 face only, 3 audio-visual); 27 columns.
VOTES_HEADER = (
    '"","A","D","F","H","N","S","fileName","numResponses","agreement","emoVote","meanEmoResp",'
    '"meanAngerResp","meanDisgustResp","meanFearResp","meanHappyResp","meanNeutralResp",'
    '"meanSadResp","medianEmoResp","meanEmoRespNorm","meanAngerRespNorm","meanDisgustRespNorm",'
    '"meanFearRespNorm","meanHappyRespNorm","meanNeutralRespNorm","meanSadRespNorm",'
    '"medianEmoRespNorm"\n'
)
MEANS = ",50,50,-1,-1,-1,-1,-1,50,50,-1,-1,-1,-1,-1,-1,50"


def votes_row(row_id: int, a: int, d: int, f: int, h: int, n: int, s: int, name: str) -> str:
    total = a + d + f + h + n + s
    return f'"{row_id}",{a},{d},{f},{h},{n},{s},"{name}",{total},0.5,"A"{MEANS}\n'


TABULATED = (
    VOTES_HEADER
    + votes_row(100001, 6, 2, 0, 0, 1, 1, "1001_DFA_ANG_XX")  # voice only: read
    + votes_row(100002, 0, 0, 0, 3, 6, 0, "1002_IEO_HAP_HI")
    + votes_row(100003, 0, 0, 1, 0, 0, 0, "1091_TSI_SAD_LO")
    + votes_row(200001, 9, 0, 0, 0, 0, 1, "1001_DFA_ANG_XX")  # face only: ignored
    + votes_row(300001, 10, 0, 0, 0, 0, 0, "1001_DFA_ANG_XX")  # audio-visual: ignored
    + votes_row(300002, 0, 0, 0, 9, 0, 0, "1050_IEO_NEU_MD")  # no voice-only row
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
    (root / "processedResults").mkdir()
    (root / "processedResults/tabulatedVotes.csv").write_text(TABULATED, encoding="utf-8")
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
        "transcript": "Don't forget a jacket",
        "intensity": "unspecified",
        "age": 51,
        # The voice-only votes 6 A, 2 D, 1 N, 1 S of 10 (the face and audio-visual rows differ).
        "label_distribution": pytest.approx(
            {"angry": 0.6, "disgust": 0.2, "neutral": 0.1, "sad": 0.1}
        ),
        "raters": 10,
    }
    assert found["cremad/1002_IEO_HAP_HI"].extra["intensity"] == "high"
    assert found["cremad/1002_IEO_HAP_HI"].extra["transcript"] == "It's eleven o'clock"
    assert found["cremad/1091_TSI_SAD_LO"].extra["transcript"] == "The surface is slick"
    assert found["cremad/1002_IEO_HAP_HI"].extra["label_distribution"] == pytest.approx(
        {"happy": 1 / 3, "neutral": 2 / 3}
    )
    # The crowd heard fear in a clip acted as sad: the distribution says so, the label does not.
    sad = found["cremad/1091_TSI_SAD_LO"]
    assert (sad.label, sad.extra["label_distribution"], sad.extra["raters"]) == (
        "sad", {"fearful": 1.0}, 1
    )
    assert found["cremad/1091_TSI_SAD_LO"].gender == "female"
    assert found["cremad/1050_IEO_NEU_MD"].gender is None
    assert "label_distribution" not in found["cremad/1050_IEO_NEU_MD"].extra  # no voice row
    assert "skipped 3" in corpus_log.records[-1].getMessage()


def test_cremad_without_demographics_and_from_audiowav(cremad_root: Path) -> None:
    from_audiowav = cremad.load(cremad_root / "AudioWAV")
    assert from_audiowav[0].gender == "male"
    assert from_audiowav[0].extra["label_distribution"]["angry"] == pytest.approx(0.6)
    (cremad_root / "VideoDemographics.csv").unlink()
    (cremad_root / "processedResults/tabulatedVotes.csv").unlink()
    utts = cremad.load(cremad_root)
    assert {u.gender for u in utts} == {None}
    assert all("label_distribution" not in u.extra for u in utts)


@pytest.mark.parametrize(
    ("votes", "fragments"),
    [
        (VOTES_HEADER + votes_row(100001, 6, -2, 0, 0, 1, 1, "1001_DFA_ANG_XX"),
         ["tabulatedVotes.csv:2", "D='-2'", "not a count"]),
        (VOTES_HEADER + votes_row(100001, 0, 0, 0, 0, 0, 0, "1001_DFA_ANG_XX"),
         ["tabulatedVotes.csv:2", "no votes"]),
        (VOTES_HEADER + votes_row(100001, 1, 0, 0, 0, 0, 0, "1001_DFA_ANG_XX")
         + votes_row(100009, 0, 1, 0, 0, 0, 0, "1001_DFA_ANG_XX"),
         ["tabulatedVotes.csv:3", "second voice-only row"]),
        (VOTES_HEADER + votes_row(100001, 1, 0, 0, 0, 0, 0, "x").replace('"100001"', '"clip"'),
         ["tabulatedVotes.csv:2", "row id 'clip'"]),
        (VOTES_HEADER.replace('"S",', '"Surprise",'), ["tabulatedVotes.csv:1", "column(s) S"]),
    ],
)
def test_cremad_malformed_votes_are_one_line_errors(
    cremad_root: Path, votes: str, fragments: list[str]
) -> None:
    (cremad_root / "processedResults/tabulatedVotes.csv").write_text(votes, encoding="utf-8")
    with pytest.raises(CorpusError) as excinfo:
        cremad.load(cremad_root)
    assert_one_line_corpus_error(excinfo, *fragments)


def test_cremad_bad_demographics_is_an_error(cremad_root: Path) -> None:
    (cremad_root / "VideoDemographics.csv").write_text("id,gender\n1001,m\n", encoding="utf-8")
    with pytest.raises(CorpusError) as excinfo:
        cremad.load(cremad_root)
    assert_one_line_corpus_error(excinfo, "VideoDemographics.csv", "Sex")


# --------------------------------------------------------------------------------------------
# IEMOCAP

EMO_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"


def emo_line(start: str, end: str, utt: str, code: str, vad: str,
             raters: str = "C-E2:\tNeutral;\t()\n") -> str:
    # The summary line, then per-rater lines as in the release: categorical (C-), then
    # attribute (A-, not read).
    return (
        f"[{start} - {end}]\t{utt}\t{code}\t[{vad}]\n"
        + raters
        + "A-E3:\tval 3; act 2; dom  2;\t()\n"
        "A-F1:\tval 3; act 2; dom  1;\t(mildly aggravated but staying polite, attitude)\n\n"
    )


# Three evaluators, one of whom chose two categories, and the actor's self-evaluation.
MIXED_RATERS = (
    "C-E1:\tFrustration; Anger;\t()\n"
    "C-E2:\tAnger;\t(threatening, belligerent)\n"
    "C-E4:\tNeutral state;\t()\n"
    "C-M1:\tHappiness;\t(curious)\n"
)


@pytest.fixture
def iemocap_root(tmp_path: Path) -> Path:
    root = tmp_path / "IEMOCAP_full_release"
    evaluation = root / "Session1/dialog/EmoEvaluation"
    evaluation.mkdir(parents=True)
    (evaluation / "Ses01F_impro01.txt").write_text(
        EMO_HEADER
        + emo_line("6.2901", "8.2357", "Ses01F_impro01_F000", "neu", "2.5000, 2.5000, 2.5000")
        + emo_line("10.0100", "11.3925", "Ses01F_impro01_M001", "exc", "4.0000, 3.5000, 3.0000",
                   "C-E1:\tExcited;\t()\nC-E3:\tHappiness; Excited;\t()\n")
        + emo_line("14.8872", "18.0175", "Ses01F_impro01_F002", "xxx", "2.5000, 3.5000, 3.5000")
        + emo_line("19.2900", "20.7875", "Ses01F_impro01_M003", "ang", "1.5000, 4.0000, 4.5000",
                   MIXED_RATERS)
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
    # What was said, as in the release: one line per turn, including turns without a label
    # (M000) and ones whose audio is missing; F004 has no words, M001's line is absent.
    transcriptions = root / "Session1/dialog/transcriptions"
    transcriptions.mkdir(parents=True)
    (transcriptions / "Ses01F_impro01.txt").write_text(
        "Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.\n"
        "Ses01F_impro01_M000 [007.5712-010.4750]: Do you have your forms?\n"
        "Ses01F_impro01_F002 [014.8872-018.0175]: Is there a problem?\n"
        "this line is not a turn\n"
        "\n"
        "Ses01F_impro01_M003 [019.2900-020.7875]:   Who told you to get in this line? "
        "[LAUGHTER]  \n"
        "Ses01F_impro01_F004 [021.3257-024.7400]: \n"
        "Ses01F_impro01_M005 [025.0000-026.5000]: Fine.\n",
        encoding="utf-8",
    )
    (transcriptions / "._Ses01F_impro01.txt").write_bytes(b"\x00\x05\x16\x07")

    evaluation = root / "Session2/dialog/EmoEvaluation"
    evaluation.mkdir(parents=True)
    (evaluation / "Ses02M_script01_1.txt").write_text(
        EMO_HEADER
        + emo_line("1.0000", "2.5000", "Ses02M_script01_1_F000", "sad", "2.0, 2.0, 2.0")
        + emo_line("3.0000", "4.5000", "Ses02M_script01_1_M001", "hap", "4.0, 3.0, 3.0",
                   "C-F1:\tHappiness;\t()\n"),  # only a self-evaluation: no distribution
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
        "vad_scale": [1.0, 5.0],
        "dialog": "Ses01F_impro01",
        "improvised": True,
        "dialog_start": 6.2901,
        "dialog_end": 8.2357,
        "transcript": "Excuse me.",
        "label_distribution": {"neutral": 1.0},
        "raters": 1,
    }
    excited = found["iemocap/Ses01F_impro01_M001"]
    assert (excited.label, excited.raw_label) == ("happy", "exc")
    assert (excited.extra["valence"], excited.extra["arousal"], excited.extra["dominance"]) == (
        4.0,
        3.5,
        3.0,
    )
    # merge_excited: Excited votes count for happy, like the label.
    assert excited.extra["label_distribution"] == {"happy": 1.0}
    assert excited.extra["raters"] == 2
    # E1 splits its vote over Frustration and Anger (1/2 each), E2 Anger, E4 Neutral state;
    # the male actor's self-evaluation (C-M1: Happiness) does not count.
    angry = found["iemocap/Ses01F_impro01_M003"]
    assert angry.extra["label_distribution"] == pytest.approx(
        {"angry": 0.5, "frustrated": 1 / 6, "neutral": 1 / 3}
    )
    assert angry.extra["raters"] == 3
    assert "label_distribution" not in found["iemocap/Ses02M_script01_1_M001"].extra
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


def test_iemocap_transcripts(iemocap_root: Path) -> None:
    found = by_id(iemocap.load(iemocap_root, classes="all"))
    assert found["iemocap/Ses01F_impro01_F000"].extra["transcript"] == "Excuse me."
    # Stripped, the corpus's markup kept.
    assert found["iemocap/Ses01F_impro01_M003"].extra["transcript"] == (
        "Who told you to get in this line? [LAUGHTER]"
    )
    # A turn missing from the file, a turn without words, a session without transcriptions.
    for utt in ("Ses01F_impro01_M001", "Ses01F_impro01_F004", "Ses02M_script01_1_F000"):
        assert "transcript" not in found[f"iemocap/{utt}"].extra
    # Without the folder every turn still loads, with no transcript.
    for path in (iemocap_root / "Session1/dialog/transcriptions").iterdir():
        path.unlink()
    (iemocap_root / "Session1/dialog/transcriptions").rmdir()
    utts = iemocap.load(iemocap_root, classes="all")
    assert len(utts) == len(found)
    assert all("transcript" not in u.extra for u in utts)


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
    assert unmerged_all["iemocap/Ses01F_impro01_M001"].extra["label_distribution"] == (
        pytest.approx({"excited": 0.75, "happy": 0.25})
    )

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

    label_file = iemocap_root / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    original = label_file.read_text(encoding="utf-8")
    for bad, fragments in (
        # Line 4 is C-E2 of the first utterance.
        (("C-E2:\tNeutral;", "C-E2:\tBliss;"), ["Ses01F_impro01.txt:4", "category 'Bliss'"]),
        (("C-E2:\tNeutral;", "C-E2:\t;"), ["Ses01F_impro01.txt:4", "without a category"]),
        (("C-E2:\tNeutral;", "C-X2:\tNeutral;"), ["Ses01F_impro01.txt:4", "unknown rater 'C-X'"]),
        (("% [START", "C-E1:\tAnger;\t()\n% [START"), ["Ses01F_impro01.txt:1", "before any"]),
        (("2.5000, 2.5000, 2.5000", "2.5000, 5.5000, 2.5000"),
         ["Ses01F_impro01.txt:3", "arousal 5.5 is outside the declared scale 1..5"]),
    ):
        label_file.write_text(original.replace(*bad, 1), encoding="utf-8")
        with pytest.raises(CorpusError) as excinfo:
            iemocap.load(iemocap_root)
        assert_one_line_corpus_error(excinfo, *fragments)
    label_file.write_text(original, encoding="utf-8")

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
rater-05; Sad; Depressed, Disappointed; A:2.0; V:1.0; D:2.0; N:3.0;
rater-02; Angry; ; A:4.0; V:2.0; D:4.0; N:3.0;
rater-07; Other; Frustrated; A:4.0; V:2.0; D:3.0; N:NaN;

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
        "vad_scale": [1.0, 5.0],
        # Raters 01, 02 Angry, 05 Sad, 07 Other; rater-02's repeated line counts once.
        "label_distribution": {"angry": 0.5, "sad": 0.25, "other": 0.25},
        "raters": 4,
    }
    read = found["msp_improv/MSP-IMPROV-S01A-M01-R-MF01"]
    assert (read.speaker, read.gender, read.label, read.extra["condition_name"]) == (
        "msp_improv/M01",
        "male",
        "neutral",
        "read",
    )
    assert read.extra["label_distribution"] == {"neutral": 1.0}
    happy = found["msp_improv/MSP-IMPROV-S02H-F03-T-FM02"]
    assert happy.session == "msp_improv/session3" and "naturalness" not in happy.extra
    assert (happy.extra["label_distribution"], happy.extra["raters"]) == ({"happy": 1.0}, 1)
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
    # No rater line for this recording: ratings, no distribution.
    assert "label_distribution" not in utt.extra and utt.extra["vad_scale"] == [1.0, 5.0]


def test_msp_improv_errors(tmp_path: Path) -> None:
    touch(tmp_path, "Audio/session1/S01A/S/MSP-IMPROV-S01A-F01-S-FM01.wav")
    with pytest.raises(CorpusError) as excinfo:
        msp_improv.load(tmp_path)
    assert_one_line_corpus_error(excinfo, "Evaluation.txt", msp_improv.LAYOUT)
    (tmp_path / "Evaluation.txt").write_text("nothing useful\n", encoding="utf-8")
    with pytest.raises(CorpusError) as excinfo:
        msp_improv.load(tmp_path)
    assert_one_line_corpus_error(excinfo, "consensus")


@pytest.mark.parametrize(
    ("old", "new", "fragments"),
    [
        ("rater-05; Sad;", "rater-05; Bored;", ["Evaluation.txt:4", "unknown rater category"]),
        ("rater-05; Sad; Depressed, Disappointed; A:2.0;", "rater-05 said sad",
         ["Evaluation.txt:4", "neither a consensus line nor a rater line"]),
        ("-MF01.avi; N; A:2.500000;", "-MF01.avi; N; A:2.5;;", ["Evaluation.txt:8", "malformed"]),
        ("V:1.500000", "V:5.500000", ["Evaluation.txt:1", "valence 5.5 is outside", "1..5"]),
        ("V:1.600000; D:2.000000", "V:1.600000; D:0.000000",
         ["Evaluation.txt:18", "dominance 0 is outside"]),
    ],
)
def test_msp_improv_malformed_evaluation_is_a_one_line_error(
    msp_root: Path, old: str, new: str, fragments: list[str]
) -> None:
    assert EVALUATION.count(old) == 1
    (msp_root / "Evaluation.txt").write_text(EVALUATION.replace(old, new), encoding="utf-8")
    touch(msp_root, "Audio/session2/S04N/S/MSP-IMPROV-S04N-F02-S-FF01.wav")
    touch(msp_root, "Audio/session4/S05S/T/MSP-IMPROV-S05S-M04-T-MF01.wav")
    with pytest.raises(CorpusError) as excinfo:
        msp_improv.load(msp_root, classes="all")
    assert_one_line_corpus_error(excinfo, *fragments)


# --------------------------------------------------------------------------------------------
# MSP-Podcast

CONSENSUS = (
    "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set\n"
    "MSP-PODCAST_0001_0008.wav,A,5.4,2.2,5.6,127,Male,Train\n"
    "MSP-PODCAST_0001_0010.wav,N,3.8,4.0,4.2,127,Male,Train\n"
    "MSP-PODCAST_0002_0003.wav,C,4.0,3.0,5.0,Unknown,Unknown,Test1\n"
    "MSP-PODCAST_0003_0001.wav,X,3.0,3.0,3.0,25,Female,Development\n"
    "MSP-PODCAST_0003_0002.wav,U,5.0,,NaN,25,Female,Development\n"
    "MSP-PODCAST_0004_0001.wav,,,,,,,Test3\n"
    "MSP-PODCAST_0004_0002.wav,H,4.0,5.0,4.0,31,Female,Train\n"
)
# labels_detailed.csv in the 1.7-1.12 layout (FileName,EmoDetail) ...
DETAILED_EMODETAIL = (
    "FileName,EmoDetail\n"
    '"MSP-PODCAST_0001_0008.wav","WORKER00014; Angry; Frustrated,Annoyed; A:6.0; V:2.0; D:6.0;"\n'
    '"MSP-PODCAST_0001_0008.wav","WORKER00021; Angry; ; A:5.0; V:2.0; D:5.0;"\n'
    '"MSP-PODCAST_0001_0008.wav","WORKER00033; Contempt; Angry; A:5.0; V:3.0; D:6.0;"\n'
    '"MSP-PODCAST_0001_0008.wav","WORKER00014; Angry; Frustrated,Annoyed; A:6.0; V:2.0; D:6.0;"\n'
    '"MSP-PODCAST_0001_0008.wav","WORKER00052; Other-Sarcastic; ; A:5.0; V:2.0; D:5.0;"\n'
    '"MSP-PODCAST_0003_0001.wav","WORKER00014; Happy; Amused; A:3.0; V:4.0; D:3.0;"\n'
    '"MSP-PODCAST_0003_0001.wav","WORKER00021; Sad; ; A:3.0; V:2.0; D:3.0;"\n'
    '"MSP-PODCAST_0003_0002.wav","WORKER00021; Surprise; ; A:5.0; V:4.0; D:4.0;"\n'
)
# ... and in the 2.0 layout (1.6: Workers instead of WorkerID).
DETAILED_COLUMNS = (
    "FileName,WorkerID,EmoClass_Major,EmoClass_Second,EmoAct,EmoVal,EmoDom\n"
    'MSP-PODCAST_0001_0008.wav,WORKER00014,Angry,"Frustrated,Annoyed",6,2,6\n'
    "MSP-PODCAST_0001_0008.wav,WORKER00021,Angry,,5,2,5\n"
    "MSP-PODCAST_0001_0008.wav,WORKER00033,Contempt,Angry,5,3,6\n"
    'MSP-PODCAST_0001_0008.wav,WORKER00014,Angry,"Frustrated,Annoyed",6,2,6\n'
    "MSP-PODCAST_0001_0008.wav,WORKER00052,Other-Sarcastic,,5,2,5\n"
    "MSP-PODCAST_0003_0001.wav,WORKER00014,Happy,Amused,3,4,3\n"
    "MSP-PODCAST_0003_0001.wav,WORKER00021,Sad,,3,2,3\n"
    "MSP-PODCAST_0003_0002.wav,WORKER00021,Surprise,,5,4,4\n"
)


@pytest.fixture
def podcast_root(tmp_path: Path) -> Path:
    root = tmp_path / "MSP-PODCAST-Publish-1.11"
    (root / "Labels").mkdir(parents=True)
    (root / "Labels/labels_consensus.csv").write_text(CONSENSUS, encoding="utf-8")
    (root / "Labels/labels_detailed.csv").write_text(DETAILED_EMODETAIL, encoding="utf-8")
    for stem in ("0001_0008", "0001_0010", "0002_0003", "0003_0001", "0003_0002", "0004_0001"):
        touch(root, f"Audios/MSP-PODCAST_{stem}.wav")  # 0004_0002 has no audio
    touch(root, "Audios/notes.wav")  # not in the consensus file: ignored
    return root


@pytest.mark.parametrize("detailed", [DETAILED_EMODETAIL, DETAILED_COLUMNS,
                                      DETAILED_COLUMNS.replace("WorkerID", "Workers")])
def test_msp_podcast_fields(podcast_root: Path, detailed: str, corpus_log) -> None:
    (podcast_root / "Labels/labels_detailed.csv").write_text(detailed, encoding="utf-8")
    found = by_id(msp_podcast.load(podcast_root))
    assert list(found) == [
        "msp_podcast/MSP-PODCAST_0001_0008",
        "msp_podcast/MSP-PODCAST_0001_0010",
        "msp_podcast/MSP-PODCAST_0002_0003",
        "msp_podcast/MSP-PODCAST_0003_0002",
    ]
    angry = found["msp_podcast/MSP-PODCAST_0001_0008"]
    assert (angry.speaker, angry.gender, angry.label) == ("msp_podcast/127", "male", "angry")
    assert dict(angry.extra) == {
        "raw_label": "A",
        "split": "Train",
        "valence": 2.2,
        "arousal": 5.4,
        "dominance": 5.6,
        "vad_scale": [1.0, 7.0],
        # Primary emotions of 4 raters (WORKER00014's repeated row counts once); the secondary
        # emotions are not votes.
        "label_distribution": {"angry": 0.5, "contempt": 0.25, "other": 0.25},
        "raters": 4,
    }
    unknown = found["msp_podcast/MSP-PODCAST_0002_0003"]
    assert (unknown.speaker, unknown.gender, unknown.label) == (
        "msp_podcast/unknown", None, "contempt"
    )
    assert "label_distribution" not in unknown.extra  # no rater rows
    surprised = found["msp_podcast/MSP-PODCAST_0003_0002"]
    assert surprised.label == "surprised"
    assert (surprised.extra["arousal"], "valence" in surprised.extra,
            "dominance" in surprised.extra) == (5.0, False, False)  # empty and NaN: missing
    message = corpus_log.records[-1].getMessage()
    assert "1 no agreement (X)" in message and "1 missing audio" in message
    assert "1 no consensus label" in message


def test_msp_podcast_transcripts(podcast_root: Path) -> None:
    # Recent releases: Transcripts/<FileName stem>.txt, one file per segment.
    transcripts = podcast_root / "Transcripts"
    transcripts.mkdir()
    (transcripts / "MSP-PODCAST_0001_0008.txt").write_text(
        "I told you, I don't want to talk about it anymore.\n", encoding="utf-8"
    )
    (transcripts / "MSP-PODCAST_0001_0010.txt").write_text("  \n", encoding="utf-8")  # empty
    (transcripts / "MSP-PODCAST_0003_0002.txt").write_bytes(
        "Wait, the caf\u00e9 closed?".encode("latin-1")
    )
    (transcripts / "._MSP-PODCAST_0002_0003.txt").write_bytes(b"\x00\x05\x16\x07")
    found = by_id(msp_podcast.load(podcast_root))
    assert found["msp_podcast/MSP-PODCAST_0001_0008"].extra["transcript"] == (
        "I told you, I don't want to talk about it anymore."
    )
    assert found["msp_podcast/MSP-PODCAST_0003_0002"].extra["transcript"] == (
        "Wait, the caf\u00e9 closed?"
    )
    # An empty file, no file (and a macOS resource fork): no transcript.
    assert "transcript" not in found["msp_podcast/MSP-PODCAST_0001_0010"].extra
    assert "transcript" not in found["msp_podcast/MSP-PODCAST_0002_0003"].extra
    transcripts.rename(podcast_root / "transcripts")
    found = by_id(msp_podcast.load(podcast_root))
    assert found["msp_podcast/MSP-PODCAST_0001_0008"].extra["transcript"].startswith("I told")


def test_msp_podcast_options(podcast_root: Path) -> None:
    development = msp_podcast.load(podcast_root, splits=("development", "TEST1"))
    assert [u.extra["split"] for u in development] == ["Test1", "Development"]
    ambiguous = by_id(msp_podcast.load(podcast_root, keep_no_agreement=True))
    no_agreement = ambiguous["msp_podcast/MSP-PODCAST_0003_0001"]
    assert (no_agreement.label, no_agreement.raw_label) == (None, "X")
    assert no_agreement.extra["label_distribution"] == {"happy": 0.5, "sad": 0.5}
    assert len(msp_podcast.load(podcast_root, keep_no_agreement=True, classes="angry")) == 1
    (podcast_root / "Labels/labels_detailed.csv").unlink()
    assert all("label_distribution" not in u.extra for u in msp_podcast.load(podcast_root))


def test_msp_podcast_older_label_folder_and_misspelt_consensus(tmp_path: Path) -> None:
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels/labels_concensus.csv").write_text(CONSENSUS, encoding="utf-8")
    touch(tmp_path, "Audio/MSP-PODCAST_0004_0002.wav")
    (utt,) = msp_podcast.load(tmp_path)
    assert (utt.label, utt.speaker, utt.gender) == ("happy", "msp_podcast/31", "female")


@pytest.mark.parametrize(
    ("name", "old", "new", "fragments"),
    [
        ("labels_consensus.csv", "0001_0010.wav,N,", "0001_0010.wav,Q,",
         ["labels_consensus.csv:3", "unknown EmoClass 'Q'"]),
        ("labels_consensus.csv", "5.4,2.2,5.6", "5.4,7.5,5.6",
         ["labels_consensus.csv:2", "valence 7.5 is outside the declared scale 1..7"]),
        ("labels_consensus.csv", "5.4,2.2,5.6", "5.4,low,5.6",
         ["labels_consensus.csv:2", "EmoVal 'low' is not a number"]),
        ("labels_consensus.csv", ",Gender,", ",Sex,", ["labels_consensus.csv:1", "Gender"]),
        ("labels_detailed.csv", "WORKER00033; Contempt;", "WORKER00033; Scorn;",
         ["labels_detailed.csv:4", "unknown primary emotion 'Scorn'"]),
        ("labels_detailed.csv", "WORKER00033; Contempt; Angry; A:5.0; V:3.0; D:6.0;", "Contempt",
         ["labels_detailed.csv:4", "EmoDetail is not"]),
        ("labels_detailed.csv", "FileName,EmoDetail", "FileName,Detail",
         ["labels_detailed.csv:1", "expected the columns"]),
    ],
)
def test_msp_podcast_malformed_labels_are_one_line_errors(
    podcast_root: Path, name: str, old: str, new: str, fragments: list[str]
) -> None:
    path = podcast_root / "Labels" / name
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(CorpusError) as excinfo:
        msp_podcast.load(podcast_root)
    assert_one_line_corpus_error(excinfo, *fragments)


# --------------------------------------------------------------------------------------------
# EM2LDL

EM2LDL_CATEGORIES = (
    "ecstacy,joy,serenity,love,admiration,trust,acceptance,submission,terror,fear,apprehension,"
    "awe,amazement,surprise,distraction,disapproval,grief,sadness,pensiveness,remorse,loathing,"
    "disgust,boredom,contempt,rage,anger,annoyance,aggresiveness,vigilance,anticipation,"
    "interest,optimism"
).split(",")
EM2LDL_HEADER = (
    "AudioID," + ",".join(EM2LDL_CATEGORIES)
    + ",speaker ID,gender,age,ageClass,mbtiSingle,mbtiDouble,lang\n"
)


def em2ldl_row(audio_id: int, shares: dict[str, str], meta: str) -> str:
    return (f"{audio_id}," + ",".join(shares.get(c, "0") for c in EM2LDL_CATEGORIES)
            + f",{meta}\n")


EM2LDL_LABELS = (
    EM2LDL_HEADER
    # Rows as in the published file: shares of the raters' labels, rounded to 9 digits.
    + em2ldl_row(1, {"ecstacy": "0.107142857", "joy": "0.178571429", "serenity": "0.071428571",
                     "admiration": "0.071428571", "trust": "0.071428571",
                     "acceptance": "0.035714286", "submission": "0.035714286",
                     "surprise": "0.071428571", "rage": "0.035714286",
                     "aggresiveness": "0.107142857", "anticipation": "0.107142857",
                     "interest": "0.107142857"},
                 "speaker1,male,Youth,Youth,i,in,ce")
    + em2ldl_row(2, {"ecstacy": "0.347826087", "joy": "0.347826087", "serenity": "0.043478261",
                     "trust": "0.043478261", "acceptance": "0.043478261", "fear": "0.043478261",
                     "apprehension": "0.043478261", "anticipation": "0.043478261",
                     "interest": "0.043478261"},
                 "speaker3,male,中年,Non-Youth,none,none,ce")
    + em2ldl_row(3, {"anger": "0.36", "contempt": "0.16", "serenity": "0.12",
                     "vigilance": "0.12", "grief": "0.04", "apprehension": "0.04",
                     "amazement": "0.04", "boredom": "0.04", "rage": "0.04",
                     "aggresiveness": "0.04"},
                 "speaker5,female,22岁,Youth,e,es,me")
    + em2ldl_row(4, {"sadness": "1"}, "speaker5,female,22岁,Youth,e,es,mc")  # no audio
)


@pytest.fixture
def em2ldl_root(tmp_path: Path) -> Path:
    root = tmp_path / "EM2LDL"
    (root / "labels").mkdir(parents=True)
    (root / "labels/labels_distributions_Info.csv").write_text(EM2LDL_LABELS, encoding="utf-8")
    split = root / "models/train_val_test"
    split.mkdir(parents=True)
    (split / "train_ids.csv").write_text("audio_id\n0001\n0002\n", encoding="utf-8")
    (split / "test_ids.csv").write_text("audio_id\n0003\n", encoding="utf-8")
    for name in (
        "audio/0001_intj_ce.wav",
        "audio/0002_mbti_ce.WAV",
        "audio/0003_esfp_me.flac",
        "audio/0009_mbti_ce.wav",  # no label row: skipped
        "audio/readme.wav",  # not <AudioID>_...: skipped
    ):
        touch(root, name)
    return root


def test_em2ldl_fields(em2ldl_root: Path, corpus_log) -> None:
    found = by_id(em2ldl.load(em2ldl_root))
    assert list(found) == ["em2ldl/0001_intj_ce", "em2ldl/0002_mbti_ce", "em2ldl/0003_esfp_me"]
    first = found["em2ldl/0001_intj_ce"]
    assert (first.speaker, first.gender, first.label) == ("em2ldl/speaker1", "male", "happy")
    distribution = first.extra["label_distribution"]
    assert len(distribution) == 12 and sum(distribution.values()) == pytest.approx(1.0)
    assert distribution["happy"] == pytest.approx(0.178571429)  # joy
    assert distribution["ecstasy"] == pytest.approx(0.107142857)  # spelt ecstacy in the file
    assert distribution["aggressiveness"] == pytest.approx(0.107142857)
    assert {k: v for k, v in first.extra.items() if k != "label_distribution"} == {
        "raw_label": "joy",
        "label_tied": False,
        "age": "Youth",
        "age_group": "Youth",
        "mbti_single": "i",
        "mbti_double": "in",
        "lang": "ce",
        "split": "train",
    }
    # ecstacy and joy tie at 0.348: the first column in the file's order wins, and says so.
    tied = found["em2ldl/0002_mbti_ce"]
    assert (tied.label, tied.raw_label, tied.extra["label_tied"]) == ("ecstasy", "ecstacy", True)
    assert tied.extra["age"] == "中年"
    angry = found["em2ldl/0003_esfp_me"]
    assert (angry.label, angry.gender, angry.extra["split"]) == ("angry", "female", "test")
    assert angry.extra["label_distribution"]["contempt"] == pytest.approx(0.16)
    message = corpus_log.records[-1].getMessage()
    assert "1 no label row" in message and "1 missing audio" in message
    assert "1 name not <AudioID>_..." in message
    assert [u.label for u in em2ldl.load(em2ldl_root, classes="angry")] == ["angry"]


def test_em2ldl_without_split_files(em2ldl_root: Path) -> None:
    for path in (em2ldl_root / "models/train_val_test").iterdir():
        path.unlink()
    assert all("split" not in u.extra for u in em2ldl.load(em2ldl_root))


def _em2ldl_error(root: Path, text: str, *fragments: str) -> None:
    (root / "labels/labels_distributions_Info.csv").write_text(text, encoding="utf-8")
    with pytest.raises(CorpusError) as excinfo:
        em2ldl.load(root)
    assert_one_line_corpus_error(excinfo, "labels_distributions_Info.csv", *fragments)


def test_em2ldl_malformed_distributions_are_one_line_errors(em2ldl_root: Path) -> None:
    row3 = em2ldl_row(3, {"anger": "0.36", "contempt": "0.16"}, "speaker5,female,22,Youth,e,es,me")
    _em2ldl_error(em2ldl_root, EM2LDL_HEADER + row3, ":2", "sums to 0.52, not 1")
    negative = em2ldl_row(1, {"anger": "1.2", "rage": "-0.2"}, "speaker1,male,Youth,Youth,i,in,ce")
    _em2ldl_error(em2ldl_root, EM2LDL_HEADER + negative, ":2", "share of 'rage' is negative")
    text = em2ldl_row(1, {"anger": "most"}, "speaker1,male,Youth,Youth,i,in,ce")
    _em2ldl_error(em2ldl_root, EM2LDL_HEADER + text, ":2", "share of 'angry' is 'most'")
    unknown = EM2LDL_LABELS.replace(",optimism,", ",hope,", 1)
    _em2ldl_error(em2ldl_root, unknown, ":1", "unknown emotion category column(s) hope")
    twice = EM2LDL_HEADER + em2ldl_row(1, {"joy": "1"}, "s1,male,x,Youth,i,in,ce") * 2
    _em2ldl_error(em2ldl_root, twice, ":3", "AudioID 1 is given twice")
    (em2ldl_root / "labels/labels_distributions_Info.csv").write_text(EM2LDL_LABELS,
                                                                      encoding="utf-8")
    (em2ldl_root / "models/train_val_test/val_ids.csv").write_text("audio_id\n0003\n",
                                                                  encoding="utf-8")
    with pytest.raises(CorpusError) as excinfo:
        em2ldl.load(em2ldl_root)
    assert_one_line_corpus_error(excinfo, "test_ids.csv:2", "already in the val split")


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


@pytest.mark.parametrize("column", ["transcript", "Text"])
def test_manifest_transcripts(tmp_path: Path, column: str) -> None:
    touch(tmp_path, "clips/a.wav")
    touch(tmp_path, "clips/b.wav")
    touch(tmp_path, "long/call.wav")
    (tmp_path / "manifest.csv").write_text(
        f"path,label,speaker,start,end,{column}\n"
        'clips/a.wav,angry,s1,,,"  I said no, and I meant it. "\n'
        "clips/b.wav,sad,s1,,,\n"
        'long/call.wav,neutral,s2,0,4.5,"Hello,\nis anyone there?"\n'
        "long/call.wav,happy,s2,4.5,9,   \n",
        encoding="utf-8",
    )
    found = by_id(manifest.load(tmp_path))
    assert dict(found["custom/a"].extra) == {
        "raw_label": "angry", "transcript": "I said no, and I meant it.",
    }
    assert found["custom/call#0"].extra["transcript"] == "Hello, is anyone there?"
    # An empty (or blank) cell: no transcript, and the column is not kept as text either.
    for utt in ("custom/b", "custom/call#4.5"):
        assert dict(found[utt].extra) == {"raw_label": found[utt].raw_label}


def test_manifest_transcript_given_twice_is_an_error(tmp_path: Path) -> None:
    touch(tmp_path, "clips/a.wav")
    (tmp_path / "manifest.csv").write_text(
        "path,label,speaker,transcript,text\nclips/a.wav,sad,s,oh no,oh no\n", encoding="utf-8"
    )
    with pytest.raises(CorpusError) as excinfo:
        manifest.load(tmp_path)
    assert_one_line_corpus_error(excinfo, "manifest.csv:1:", "transcript", "text")


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
        "msp_podcast",
        "em2ldl",
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
