import json

import pytest

from emovox.errors import ProtocolError
from emovox.folds import (
    PROTOCOLS,
    Fold,
    check_fold,
    folds_checksum,
    folds_to_json,
    make_folds,
)
from emovox.types import Utterance


def utt(corpus, speaker, n, gender=None, session=None, label="neutral"):
    return Utterance(
        id=f"{corpus}/{speaker}-{n:03d}",
        path=f"/x/{speaker}-{n}.wav",
        corpus=corpus,
        speaker=f"{corpus}/{speaker}",
        label=label,
        gender=gender,
        session=session,
    )


def ravdess_like(per_actor=3):
    return [
        utt("ravdess", f"{a:02d}", i, "male" if a % 2 else "female")
        for a in range(1, 25)
        for i in range(per_actor)
    ]


def all_disjoint(fold):
    s = [set(fold.train_speakers), set(fold.valid_speakers), set(fold.test_speakers)]
    return not (s[0] & s[1] or s[0] & s[2] or s[1] & s[2])


def test_ravdess6_groups_actors_by_four():
    utts = ravdess_like()
    folds = make_folds(utts, "ravdess6")
    assert [f.index for f in folds] == [1, 2, 3, 4, 5, 6]
    for k, fold in enumerate(folds):
        expected = [f"ravdess/{a:02d}" for a in range(4 * k + 1, 4 * k + 5)]
        assert fold.test_speakers == expected
        # validation = the next group, from the training speakers, never the test speakers
        nxt = (k + 1) % 6
        assert fold.valid_speakers == [f"ravdess/{a:02d}" for a in range(4 * nxt + 1, 4 * nxt + 5)]
        assert all_disjoint(fold)
        assert len(fold.train) + len(fold.valid) + len(fold.test) == len(utts)
    tested = [u.id for f in folds for u in f.test]
    assert sorted(tested) == sorted(u.id for u in utts)  # every utterance tested exactly once


def test_ravdess6_rejects_non_ravdess_speakers():
    with pytest.raises(ProtocolError, match="RAVDESS"):
        make_folds([utt("ravdess", "30", 0), utt("ravdess", "01", 0)], "ravdess6")


def test_loso_one_speaker_per_fold():
    utts = [utt("emodb", s, i) for s in ["03", "08", "09", "10"] for i in range(2)]
    folds = make_folds(utts, "emodb_loso")
    assert [f.test_speakers for f in folds] == [[f"emodb/{s}"] for s in ["03", "08", "09", "10"]]
    assert all(len(f.valid_speakers) == 1 and all_disjoint(f) for f in folds)


def test_two_group_protocol_has_no_validation_split():
    utts = [utt("tess", s, i) for s in ["OAF", "YAF"] for i in range(3)]
    folds = make_folds(utts, "tess_loso")
    assert len(folds) == 2 and all(f.valid == () for f in folds)


def test_session_protocol_is_session_disjoint():
    utts = [
        utt("iemocap", f"Ses0{s}{g}", i, session=f"iemocap/Session{s}")
        for s in range(1, 6)
        for g in "FM"
        for i in range(2)
    ]
    folds = make_folds(utts, "iemocap_loso")
    assert len(folds) == 5
    assert folds[0].test_speakers == ["iemocap/Ses01F", "iemocap/Ses01M"]
    for f in folds:
        sessions = [{u.session for u in part} for part in (f.train, f.valid, f.test)]
        assert not (sessions[0] & sessions[2] or sessions[0] & sessions[1])


def test_session_protocol_natural_order_and_speaker_in_two_sessions():
    utts = [utt("msp", f"S{s}", 0, session=f"msp/session{s}") for s in (1, 2, 10)]
    folds = make_folds(utts, "msp_improv_loso")
    assert [f.test[0].session for f in folds] == ["msp/session1", "msp/session2", "msp/session10"]
    bad = utts + [utt("msp", "S1", 5, session="msp/session2")]
    with pytest.raises(ProtocolError, match="appears in sessions"):
        make_folds(bad, "msp_improv_loso")
    with pytest.raises(ProtocolError, match="no session"):
        make_folds([utt("msp", "S1", 0)], "msp_improv_loso")


def test_speaker_kfold_balanced_and_seeded():
    utts = [
        utt("crema", str(1000 + s), i, "female" if s % 2 else "male")
        for s in range(20)
        for i in range(2)
    ]
    a = make_folds(utts, "speaker_kfold", k=5, seed=1)
    b = make_folds(utts, "speaker_kfold", k=5, seed=1)
    c = make_folds(utts, "speaker_kfold", k=5, seed=2)
    assert folds_checksum(a) == folds_checksum(b) != folds_checksum(c)
    for f in a:
        genders = [u.gender for u in f.test]
        assert len(f.test_speakers) == 4 and genders.count("female") == genders.count("male")
    with pytest.raises(ProtocolError, match="at least 30 speakers"):
        make_folds(utts, "speaker_kfold", k=30)


def test_fold_selection_and_errors():
    utts = ravdess_like(1)
    assert [f.index for f in make_folds(utts, "ravdess6", select=[1, 3])] == [1, 3]
    with pytest.raises(ProtocolError, match="no fold 7"):
        make_folds(utts, "ravdess6", select=[7])
    with pytest.raises(ProtocolError, match="unknown protocol"):
        make_folds(utts, "random_split")
    with pytest.raises(ProtocolError, match="not unique"):
        make_folds(utts + utts[:1], "ravdess6")


def test_check_fold_catches_leaks():
    a, b, c = utt("x", "A", 0), utt("x", "B", 0), utt("x", "A", 1)
    with pytest.raises(ProtocolError, match="speaker x/A is in both train and test"):
        check_fold(Fold(1, train=(a,), valid=(), test=(c,)))
    with pytest.raises(ProtocolError, match="covers|cover"):
        check_fold(Fold(1, train=(a,), valid=(), test=(b,)), total=5)


def test_every_protocol_keeps_each_speaker_on_one_side():
    # Speakers spread over sessions, as in IEMOCAP-like corpora: a protocol that split by
    # utterance or by session alone would put a speaker on both sides.
    utts = [utt("c", f"{s:02d}", i, "male" if s % 2 else "female", session=f"S{s % 5 + 1}")
            for s in range(1, 25) for i in range(6)]
    ran = 0
    for name in PROTOCOLS:
        try:
            folds = make_folds(utts, name)
        except ProtocolError:
            continue  # not applicable to this corpus's layout
        ran += 1
        for fold in folds:
            test = {u.speaker for u in fold.test}
            assert test and not test & {u.speaker for u in (*fold.train, *fold.valid)}, name
        covered = sorted(u.id for f in folds for u in f.test)
        assert covered == sorted(u.id for u in utts), name  # every utterance tested once
    assert ran >= 4


def test_json_shape_and_checksum():
    utts = ravdess_like(2)
    folds = make_folds(utts, "ravdess6")
    doc = json.loads(json.dumps(folds_to_json(folds, corpus="ravdess", protocol="ravdess6")))
    assert doc["folds"][0]["fold"] == 1
    assert set(doc["folds"][0]) >= {"test_speakers", "train_speakers", "test", "train", "valid"}
    assert doc["n_utterances"] == 48
    assert doc["checksum"] == folds_checksum(make_folds(list(reversed(utts)), "ravdess6"))
