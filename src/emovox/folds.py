"""Speaker-independent cross-validation protocols, exactly as the literature defines them.

Every protocol splits a corpus into folds whose test speakers (or sessions) never appear in
training. A validation split for model selection is always drawn from the training speakers:
by default the speakers of the *next* test group in cyclic order, so validation is as
speaker-disjoint as the test. Disjointness is asserted every time folds are built
(:func:`check_fold`); there is no random utterance split anywhere in emovox.

Protocols (``PROTOCOLS``):

- ``ravdess6``: 6 folds of 4 actors, actors 1-4, 5-8, ..., 21-24 (the EmoBox / MLL protocol).
- ``emodb_loso``: leave-one-speaker-out, 10 folds.
- ``savee_loso``: leave-one-speaker-out, 4 folds.
- ``tess_loso``: leave-one-speaker-out, 2 folds.
- ``iemocap_loso``: leave-one-session-out, 5 folds (both speakers of a session are tested).
- ``msp_improv_loso``: leave-one-session-out, 6 folds.
- ``cremad_kfold`` and ``speaker_kfold``: speaker k-fold (default k=5), speakers dealt to folds
  round-robin after a seeded shuffle within each gender, so folds are gender-balanced.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ProtocolError
from .types import Utterance

Groups = list[list[str]]


@dataclass(frozen=True)
class Fold:
    """One train/validation/test split; the three speaker sets are disjoint.

    Attributes:
        index: Fold number, from 1.
        train: Training utterances (validation speakers excluded).
        valid: Validation utterances, from speakers that are neither trained nor tested on.
        test: Test utterances.
    """

    index: int
    train: tuple[Utterance, ...]
    valid: tuple[Utterance, ...]
    test: tuple[Utterance, ...]

    @property
    def train_speakers(self) -> list[str]:
        """Sorted speakers of the training split."""
        return _speakers(self.train)

    @property
    def valid_speakers(self) -> list[str]:
        """Sorted speakers of the validation split."""
        return _speakers(self.valid)

    @property
    def test_speakers(self) -> list[str]:
        """Sorted speakers of the test split."""
        return _speakers(self.test)

    @property
    def train_pool(self) -> tuple[Utterance, ...]:
        """Training plus validation utterances (for methods that need no model selection)."""
        return self.train + self.valid

    def to_dict(self, ids: bool = True) -> dict[str, Any]:
        """Return the fold as JSON-ready values (utterance ids included when ``ids``)."""
        out: dict[str, Any] = {
            "fold": self.index,
            "test_speakers": self.test_speakers,
            "train_speakers": self.train_speakers,
            "valid_speakers": self.valid_speakers,
            "n_train": len(self.train),
            "n_valid": len(self.valid),
            "n_test": len(self.test),
        }
        if ids:
            out["test"] = [u.id for u in self.test]
            out["train"] = [u.id for u in self.train]
            out["valid"] = [u.id for u in self.valid]
        return out


def _speakers(utts: Iterable[Utterance]) -> list[str]:
    return sorted({u.speaker for u in utts})


def _speaker_number(speaker: str) -> int:
    match = re.search(r"(\d+)$", speaker)
    if not match:
        raise ProtocolError(f"speaker '{speaker}' has no actor number; ravdess6 needs RAVDESS data")
    return int(match.group(1))


def _ravdess_groups(utts: Sequence[Utterance], k: int | None, seed: int) -> Groups:
    by_group: dict[int, set[str]] = defaultdict(set)
    for u in utts:
        number = _speaker_number(u.speaker)
        if not 1 <= number <= 24:
            raise ProtocolError(f"speaker '{u.speaker}' is not a RAVDESS actor (01-24)")
        by_group[(number - 1) // 4].add(u.speaker)
    return [sorted(by_group[g]) for g in sorted(by_group)]


def _leave_one_speaker_out(utts: Sequence[Utterance], k: int | None, seed: int) -> Groups:
    return [[s] for s in _speakers(utts)]


def _leave_one_session_out(utts: Sequence[Utterance], k: int | None, seed: int) -> Groups:
    by_session: dict[str, set[str]] = defaultdict(set)
    for u in utts:
        if u.session is None:
            raise ProtocolError(f"utterance '{u.id}' has no session; a session protocol needs one")
        by_session[u.session].add(u.speaker)
    owners: dict[str, str] = {}
    for session, speakers in by_session.items():
        for s in speakers:
            if owners.setdefault(s, session) != session:
                raise ProtocolError(
                    f"speaker '{s}' appears in sessions '{owners[s]}' and '{session}'"
                )
    return [sorted(by_session[s]) for s in sorted(by_session, key=_natural_key)]


def _natural_key(text: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _speaker_kfold(utts: Sequence[Utterance], k: int | None, seed: int) -> Groups:
    k = 5 if k is None else k
    gender = {u.speaker: u.gender or "" for u in utts}
    speakers = sorted(gender)
    if k < 2:
        raise ProtocolError(f"speaker k-fold needs k >= 2 (got {k})")
    if len(speakers) < k:
        raise ProtocolError(f"speaker {k}-fold needs at least {k} speakers, found {len(speakers)}")
    rng = random.Random(seed)
    order: list[str] = []
    for g in sorted(set(gender.values())):
        members = [s for s in speakers if gender[s] == g]
        rng.shuffle(members)
        order.extend(members)
    groups: Groups = [[] for _ in range(k)]
    for i, s in enumerate(order):
        groups[i % k].append(s)
    return [sorted(g) for g in groups]


@dataclass(frozen=True)
class Protocol:
    """A named way to split a corpus into speaker-independent folds."""

    name: str
    description: str
    grouping: Callable[[Sequence[Utterance], int | None, int], Groups]


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("ravdess6", "6 folds of 4 actors (1-4, 5-8, ..., 21-24)", _ravdess_groups),
        Protocol("emodb_loso", "leave-one-speaker-out (10 folds)", _leave_one_speaker_out),
        Protocol("savee_loso", "leave-one-speaker-out (4 folds)", _leave_one_speaker_out),
        Protocol("tess_loso", "leave-one-speaker-out (2 folds)", _leave_one_speaker_out),
        Protocol("iemocap_loso", "leave-one-session-out (5 folds)", _leave_one_session_out),
        Protocol("msp_improv_loso", "leave-one-session-out (6 folds)", _leave_one_session_out),
        Protocol("cremad_kfold", "speaker k-fold, gender-balanced (k=5)", _speaker_kfold),
        Protocol("speaker_kfold", "speaker k-fold, gender-balanced (k=5)", _speaker_kfold),
    )
}


#: Protocols whose folds must also be session-disjoint.
SESSION_PROTOCOLS = frozenset({"iemocap_loso", "msp_improv_loso"})


def make_folds(
    utterances: Sequence[Utterance],
    protocol: str,
    *,
    k: int | None = None,
    seed: int = 0,
    validation: str = "next_group",
    select: Iterable[int] | None = None,
) -> list[Fold]:
    """Split utterances into the protocol's speaker-independent folds.

    Args:
        utterances: The corpus (any order; folds keep utterances sorted by id).
        protocol: A name in :data:`PROTOCOLS`.
        k: Number of folds for the k-fold protocols (ignored by the others).
        seed: Seed of the speaker shuffle of the k-fold protocols.
        validation: ``"next_group"`` (validation speakers are the next fold's test group, in
            cyclic order) or ``"none"`` (empty validation split).
        select: Fold numbers (from 1) to return; all when ``None``.

    Returns:
        The folds, numbered from 1, each checked with :func:`check_fold`.

    Raises:
        ProtocolError: Unknown protocol or fold number, too few speakers, or overlapping splits.
    """
    if protocol not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol '{protocol}' (known: {', '.join(PROTOCOLS)})")
    if validation not in ("next_group", "none"):
        raise ProtocolError(f"unknown validation rule '{validation}' (use next_group or none)")
    if not utterances:
        raise ProtocolError("no utterances to split")
    ids = [u.id for u in utterances]
    if len(set(ids)) != len(ids):
        raise ProtocolError("utterance ids are not unique")
    groups = PROTOCOLS[protocol].grouping(utterances, k, seed)
    if len(groups) < 2:
        raise ProtocolError(
            f"protocol '{protocol}' needs at least 2 speaker groups, found {len(groups)}"
        )
    wanted = set(range(1, len(groups) + 1)) if select is None else set(select)
    bad = sorted(i for i in wanted if not 1 <= i <= len(groups))
    if bad:
        raise ProtocolError(f"no fold {bad[0]}: protocol '{protocol}' has folds 1-{len(groups)}")
    ordered = sorted(utterances, key=lambda u: u.id)
    folds = []
    for i, test_group in enumerate(groups):
        if i + 1 not in wanted:
            continue
        test_set = set(test_group)
        valid_set: set[str] = set()
        if validation == "next_group" and len(groups) > 2:
            valid_set = set(groups[(i + 1) % len(groups)])
        fold = Fold(
            index=i + 1,
            train=tuple(u for u in ordered if u.speaker not in test_set | valid_set),
            valid=tuple(u for u in ordered if u.speaker in valid_set),
            test=tuple(u for u in ordered if u.speaker in test_set),
        )
        check_fold(fold, total=len(ordered), by_session=protocol in SESSION_PROTOCOLS)
        folds.append(fold)
    return folds


def check_fold(fold: Fold, total: int | None = None, by_session: bool = False) -> None:
    """Assert that a fold's train, validation and test splits share no speaker or utterance.

    Args:
        fold: The fold to check.
        total: If given, the number of utterances the three splits must cover together.
        by_session: Also require the splits to share no recording session.

    Raises:
        ProtocolError: If any speaker or utterance is on two sides, a split is empty, or
            utterances are missing.
    """
    sides = {"train": fold.train, "valid": fold.valid, "test": fold.test}
    speakers = {name: {u.speaker for u in utts} for name, utts in sides.items()}
    sessions = {name: {u.session for u in utts if u.session} for name, utts in sides.items()}
    for a, b in (("train", "test"), ("train", "valid"), ("valid", "test")):
        shared = speakers[a] & speakers[b]
        if by_session and sessions[a] & sessions[b]:
            session = sorted(sessions[a] & sessions[b])[0]
            raise ProtocolError(f"fold {fold.index}: session {session} is in both {a} and {b}")
        if shared:
            raise ProtocolError(
                f"fold {fold.index}: speaker {sorted(shared)[0]} is in both {a} and {b}"
            )
    if not fold.train or not fold.test:
        raise ProtocolError(f"fold {fold.index}: empty train or test split")
    n = len(fold.train) + len(fold.valid) + len(fold.test)
    if len({u.id for utts in sides.values() for u in utts}) != n:
        raise ProtocolError(f"fold {fold.index}: an utterance is in two splits")
    if total is not None and n != total:
        raise ProtocolError(f"fold {fold.index}: splits cover {n} of {total} utterances")


def folds_checksum(folds: Sequence[Fold]) -> str:
    """Return a SHA-256 over every fold's sorted train/valid/test ids (to reproduce splits)."""
    payload = [
        [f.index, sorted(u.id for u in f.train), sorted(u.id for u in f.valid),
         sorted(u.id for u in f.test)]
        for f in folds
    ]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


def folds_to_json(folds: Sequence[Fold], *, corpus: str, protocol: str) -> dict[str, Any]:
    """Return the JSON document ``emovox folds --format json`` prints.

    Shape: ``{"corpus", "protocol", "checksum", "n_utterances", "folds": [{"fold": 1,
    "test_speakers", "train_speakers", "valid_speakers", "test", "train", "valid", ...}]}``.
    """
    return {
        "corpus": corpus,
        "protocol": protocol,
        "checksum": folds_checksum(folds),
        "n_utterances": len(folds[0].train) + len(folds[0].valid) + len(folds[0].test)
        if folds
        else 0,
        "folds": [f.to_dict() for f in folds],
    }
