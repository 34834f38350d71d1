"""RAVDESS and EmoDB loaders against the real corpora in ../shared/data (skipped when absent)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from emovox.corpora import emodb, load_corpus, ravdess

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

pytestmark = pytest.mark.corpus


def _root(name: str) -> Path:
    root = DATA / name
    if not root.is_dir():
        pytest.skip(f"real corpus not available: {root}")
    return root


def test_ravdess_real_counts() -> None:
    utts = ravdess.load(_root("ravdess"))
    assert len(utts) == 1440
    assert len({u.id for u in utts}) == 1440
    speakers = {u.speaker: u.gender for u in utts}
    assert len(speakers) == 24
    assert Counter(speakers.values()) == {"male": 12, "female": 12}
    assert all(int(s.split("/")[1]) % 2 == (g == "male") for s, g in speakers.items())
    counts = Counter(u.label for u in utts)
    assert counts.pop("neutral") == 96
    assert counts == {
        e: 192 for e in ("calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    }
    assert Counter(u.extra["intensity"] for u in utts) == {"normal": 768, "strong": 672}
    assert [u.id for u in utts] == sorted(u.id for u in utts)
    # Every file says one of the two statements, half each.
    angry = next(u for u in utts if u.id == "ravdess/03-01-05-01-02-01-12")
    assert angry.extra["transcript"] == "Dogs are sitting by the door"
    assert Counter(u.extra["transcript"] for u in utts) == {
        "Kids are talking by the door": 720, "Dogs are sitting by the door": 720,
    }


def test_emodb_real_counts() -> None:
    utts = load_corpus("emodb", _root("emodb"))
    assert len(utts) == 535
    assert len({u.speaker for u in utts}) == 10
    assert {u.speaker: u.gender for u in utts} == {
        f"emodb/{code}": gender for code, gender in emodb.SPEAKERS.items()
    }
    assert Counter(u.label for u in utts) == {
        "angry": 127,
        "bored": 81,
        "disgust": 46,
        "fearful": 69,
        "happy": 71,
        "neutral": 79,
        "sad": 62,
    }
    # erkennung.txt covers every released file.
    assert all(0.0 <= u.extra["recognition_rate"] <= 100.0 for u in utts)
    # Every file says one of the ten documented sentences.
    happy = next(u for u in utts if u.id == "emodb/03a01Fa")
    assert happy.extra["transcript"] == "Der Lappen liegt auf dem Eisschrank."
    assert {u.extra["transcript"] for u in utts} == set(emodb.SENTENCES.values())


def test_emodb_real_listening_test_soft_targets() -> None:
    utts = load_corpus("emodb", _root("emodb"))
    # erkennung.txt gives every one of the 535 released files a rate, hence a distribution.
    assert sum("label_distribution" in u.extra for u in utts) == 535
    others = len(emodb.ANSWERS) - 1
    one_hot = 0
    for u in utts:
        rate = u.extra["recognition_rate"] / 100.0
        distribution = u.extra["label_distribution"]
        assert distribution[u.label] == pytest.approx(rate)
        assert sum(distribution.values()) == pytest.approx(1.0)
        if rate == 1.0:
            one_hot += 1
            assert distribution == {u.label: 1.0}
        else:
            assert set(distribution) == set(emodb.ANSWERS)
            assert all(share == pytest.approx((1.0 - rate) / others)
                       for name, share in distribution.items() if name != u.label)
    # The release kept files recognised by at least 80 % of the listeners; 184 by all of them.
    assert min(u.extra["recognition_rate"] for u in utts) >= 80.0
    assert one_hot == 184
    happy = next(u for u in utts if u.id == "emodb/03a01Fa")
    assert happy.extra["label_distribution"]["happy"] == pytest.approx(0.9)
