"""MSP-IMPROV: an acted corpus of dyadic interactions (UT Dallas, MSP lab), original release.

Layout followed (the release with ``Evaluation.txt``; audio found at any depth, so both the
``Audio/sessionN/...`` tree and copies with ``sessionN/`` directly at the root work)::

    <root>/Evaluation.txt
    <root>/Audio/session1/S01A/P/MSP-IMPROV-S01A-F01-P-FM01.wav
    ...
    <root>/Audio/session6/...

``Evalution.txt`` (a misspelling found in circulating copies) is accepted as well. The newer
re-release with ``Labels/labels_concensus.csv`` and a flat ``Audios/`` folder is *not* read;
convert it to a manifest CSV (:mod:`emovox.corpora.manifest`).

Audio names are ``MSP-IMPROV-S<nn><E>-<G><ss>-<C>-<turn>`` (``.wav`` or ``.flac``, any case):

- ``S<nn><E>``: target sentence number ``nn`` and the emotion its scenario was written to
  elicit, ``E`` in A H S N (stored as ``extra["target_emotion"]``; it is *not* the label).
- ``<G><ss>``: the speaker, gender ``F``/``M`` and session ``ss`` (01-06). Each of the six
  sessions pairs one actress and one actor, so ``F01`` is the woman of session 1; the speaker is
  ``msp_improv/F01`` and the session ``msp_improv/session1`` (matching the ``sessionN`` folder).
- ``C`` condition: ``R`` read, ``S`` improvised target sentence, ``T`` improvised other turn,
  ``P`` natural interaction between scenarios.
- ``turn`` (e.g. ``FM01``): kept verbatim as ``extra["turn"]``.

``Evaluation.txt`` has one consensus line per recording, followed by one line per rater::

    UTD-IMPROV-S01A-F01-P-FM01.avi; A; A:3.000000; V:2.500000; D:3.500000 ; N:4.000000;
    rater-01; Angry; Frustrated; A:3.0; V:2.0; D:4.0; N:4.0;

The consensus line gives the video name (prefix ``UTD-IMPROV`` instead of ``MSP-IMPROV``), the
consensus label (:data:`emovox.labels.MSP_IMPROV`: A angry, H happy, S sad, N neutral, O other;
X = no agreement, dropped) and the mean arousal, valence, dominance and naturalness ratings
(1-5, ``NaN`` when missing). Recordings are matched to labels on the part after ``-IMPROV-``.

A rater line gives the rater's id, its category (Angry, Happy, Sad, Neutral or Other,
:data:`emovox.labels.MSP_IMPROV_RATER`), the other emotions it perceived (free text, not read)
and its own ratings (not read). ``extra["label_distribution"]`` is the share of the
recording's raters per category (one vote each); a rater id listed twice for one recording
(public parsers report repeated lines) counts once, the first line. ``extra["raters"]`` is the
number of raters counted; a recording without rater lines gets no distribution. A line after
the first consensus line that is neither a consensus nor a rater line, or a rater line with an
unknown category, raises a one-line :class:`~emovox.errors.CorpusError` naming the file and
line; the mean ratings must lie on the 1-5 scale (``extra["vad_scale"] == [1.0, 5.0]``). The
rater-line format follows public parsers of the release (not checked against a copy here).

The paper reports 8438 recordings (620 R, 652 S, 4381 T, 2785 P). Ids are
``msp_improv/<audio stem>``; ``extra`` holds ``raw_label``, ``condition``, ``condition_name``
(read, improvised_target, improvised_other, natural), ``sentence``, ``target_emotion``, ``turn``,
when not NaN ``arousal``, ``valence``, ``dominance`` (with ``vad_scale``) and ``naturalness``,
and with rater lines ``label_distribution`` and ``raters``. By default the
four classes angry, happy, neutral, sad are kept (``classes="msp_improv4"``).

Licence: academic licence agreement with the MSP lab, UT Dallas (no redistribution).
Citation: Busso C, Parthasarathy S, Burmania A, AbdelWahab M, Sadoughi N, Mower Provost E
(2017), MSP-IMPROV: An acted corpus of dyadic interactions to study emotion perception, IEEE
Trans. Affective Computing 8(1): 67-80.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from emovox import labels
from emovox.corpora._common import (
    ClassSpec,
    Skips,
    audio_files,
    corpus_root,
    finish,
    resolve_classes,
)
from emovox.errors import ConfigError, CorpusError
from emovox.targets import DIMENSIONS, check_vad, distribution_from_votes
from emovox.types import Utterance

NAME = "msp_improv"
LAYOUT = (
    "Evaluation.txt and Audio/sessionN/<SnnE>/<R|S|T|P>/MSP-IMPROV-<SnnE>-<Gss>-<C>-<turn>.wav "
    "(e.g. Audio/session1/S01A/P/MSP-IMPROV-S01A-F01-P-FM01.wav)"
)
LICENCE = (
    "Academic licence agreement with the MSP lab, UT Dallas (no redistribution). Busso C et al. "
    "(2017), MSP-IMPROV: An acted corpus of dyadic interactions to study emotion perception, "
    "IEEE Trans. Affective Computing 8(1): 67-80."
)

#: Recording condition letter -> name.
CONDITIONS: dict[str, str] = {
    "R": "read",
    "S": "improvised_target",
    "T": "improvised_other",
    "P": "natural",
}

_KEY = r"S\d{2}[A-Z]-[FM]\d{2}-[A-Z]-[A-Z]{1,2}\d{2,3}"
_AUDIO = re.compile(r"^MSP-IMPROV-((S\d{2})([A-Z])-([FM])(\d{2})-([A-Z])-([A-Z]{1,2}\d{2,3}))$")
_NUMBER = r"(-?\d+(?:\.\d*)?|NaN|nan)"
_CONSENSUS = re.compile(
    rf"^(?:UTD|MSP)-IMPROV-({_KEY})\.\w+\s*;\s*([A-Z])\s*;\s*A:\s*{_NUMBER}\s*;\s*"
    rf"V:\s*{_NUMBER}\s*;\s*D:\s*{_NUMBER}\s*;\s*N:\s*{_NUMBER}\s*;?"
)
# rater-01; Angry; Frustrated; A:4.0; V:1.0; D:4.0; N:3.0;
_RATER_LINE = re.compile(
    rf"^([^;]+?)\s*;\s*([^;]*?)\s*;(.*?);\s*A:\s*{_NUMBER}\s*;\s*V:\s*{_NUMBER}\s*;\s*"
    rf"D:\s*{_NUMBER}\s*;\s*N:\s*{_NUMBER}\s*;?$"
)
_LABEL_FILES = ("evaluation.txt", "evalution.txt")

#: The scale of MSP-IMPROV's arousal / valence / dominance ratings.
VAD_SCALE: tuple[float, float] = (1.0, 5.0)


@dataclass
class Consensus:
    """One recording's entry in ``Evaluation.txt``.

    Attributes:
        letter: The consensus label letter (A H S N O X).
        ratings: ``arousal``, ``valence``, ``dominance``, ``naturalness`` when not NaN.
        line: Line number of the consensus line.
        votes: Rater category (canonical) -> number of raters.
        raters: Rater ids already counted.
    """

    letter: str
    ratings: dict[str, float]
    line: int
    votes: dict[str, float] = field(default_factory=dict)
    raters: set[str] = field(default_factory=set)


def read_evaluation(path: Path) -> dict[str, Consensus]:
    """Parse ``Evaluation.txt``: recording key (``S01A-F01-P-FM01``) -> its consensus and votes.

    Lines before the first consensus line and blank lines are ignored.

    Raises:
        CorpusError: A later line that is neither a consensus nor a rater line, or a rater
            line with an unknown category (one line, ``<file>:<line>: ...``).
    """
    result: dict[str, Consensus] = {}
    current: Consensus | None = None
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _CONSENSUS.match(line)
        if match is not None:
            key, letter, *numbers = match.groups()
            names = ("arousal", "valence", "dominance", "naturalness")
            ratings = {
                name: float(value)
                for name, value in zip(names, numbers, strict=True)
                if not math.isnan(float(value))
            }
            current = result[key] = Consensus(letter, ratings, number)
            continue
        if current is None:
            continue
        where = f"{path}:{number}"
        if re.match(r"^(?:UTD|MSP)-IMPROV-", line):
            raise CorpusError(f"{where}: malformed consensus line (expected e.g. "
                              f"'UTD-IMPROV-S01A-F01-P-FM01.avi; A; A:3.0; V:2.5; D:3.5 ; N:4.0;')")
        rater = _RATER_LINE.match(line)
        if rater is None:
            raise CorpusError(f"{where}: neither a consensus line nor a rater line "
                              f"'<rater>; <Category>; <others>; A:x; V:x; D:x; N:x;': "
                              f"'{line[:60]}'")
        rater_id, category = rater.group(1), rater.group(2)
        emotion = labels.MSP_IMPROV_RATER.get(category)
        if emotion is None:
            raise CorpusError(f"{where}: unknown rater category '{category}' (known: "
                              f"{', '.join(labels.MSP_IMPROV_RATER)})")
        if rater_id in current.raters:
            continue  # the same rater listed twice for one recording: counted once
        current.raters.add(rater_id)
        current.votes[emotion] = current.votes.get(emotion, 0.0) + 1.0
    return result


def _find_evaluation(base: Path) -> Path | None:
    for child in sorted(base.iterdir()):
        if child.is_file() and child.name.lower() in _LABEL_FILES:
            return child
    return None


def load(
    root: str | os.PathLike[str],
    *,
    classes: ClassSpec = "msp_improv4",
    conditions: Sequence[str] | None = None,
) -> list[Utterance]:
    """Scan an MSP-IMPROV copy.

    Args:
        root: Folder holding ``Evaluation.txt`` and the audio (``Audio/sessionN/...``).
        classes: Canonical classes to keep; ``"msp_improv4"`` by default, ``"all"`` or ``None``
            to keep "other" too (no-agreement ``X`` is always dropped).
        conditions: Keep only these recording conditions (letters R, S, T, P); all by default.

    Returns:
        Utterances sorted by id.

    Raises:
        CorpusError: If the root is missing, has no ``Evaluation.txt``, no labelled recording
            has its audio, a line of ``Evaluation.txt`` is malformed or a mean rating lies
            outside 1-5.
        ConfigError: On an unknown class name or condition letter.
    """
    wanted = resolve_classes(classes)
    keep_conditions = None
    if conditions is not None:
        keep_conditions = {c.upper() for c in conditions}
        unknown = sorted(keep_conditions - set(CONDITIONS))
        if unknown:
            raise ConfigError(
                f"conditions: unknown letter(s) {','.join(unknown)} (known: R, S, T, P)"
            )
    base = corpus_root(root, NAME, LAYOUT)
    evaluation = _find_evaluation(base)
    if evaluation is None:
        raise CorpusError(f"{NAME}: no Evaluation.txt in '{base}' (expected: {LAYOUT})")
    consensus = read_evaluation(evaluation)
    if not consensus:
        raise CorpusError(
            f"{NAME}: no consensus line like 'UTD-IMPROV-S01A-F01-P-FM01.avi; A; A:...; V:...; "
            f"D:... ; N:...;' in '{evaluation}'"
        )
    skips = Skips()
    found: list[Utterance] = []
    for path in audio_files(base):
        match = _AUDIO.match(path.stem)
        if match is None:
            skips.add("name not MSP-IMPROV-SnnE-Gss-C-turn", path)
            continue
        key, sentence, target, gender, session, condition, turn = match.groups()
        if condition not in CONDITIONS or target not in labels.MSP_IMPROV:
            skips.add("unknown condition or target emotion", path)
            continue
        if keep_conditions is not None and condition not in keep_conditions:
            skips.add("condition not selected", path)
            continue
        if key not in consensus:
            skips.add("no consensus line in Evaluation.txt", path)
            continue
        entry = consensus[key]
        letter = entry.letter
        if letter not in labels.MSP_IMPROV:
            skips.add("no agreement (X)" if letter == "X" else "unknown label", path)
            continue
        where = f"{evaluation}:{entry.line}"
        extra: dict[str, object] = dict(entry.ratings)
        if any(name in entry.ratings for name in DIMENSIONS):
            check_vad(entry.ratings, VAD_SCALE, where)
            extra["vad_scale"] = list(VAD_SCALE)
        if entry.raters:
            extra["label_distribution"] = distribution_from_votes(entry.votes, where)
            extra["raters"] = len(entry.raters)
        found.append(
            Utterance(
                id=f"{NAME}/{path.stem}",
                path=str(path),
                corpus=NAME,
                speaker=f"{NAME}/{gender}{session}",
                label=labels.MSP_IMPROV[letter],
                gender="female" if gender == "F" else "male",
                session=f"{NAME}/session{int(session)}",
                extra={
                    "raw_label": letter,
                    "condition": condition,
                    "condition_name": CONDITIONS[condition],
                    "sentence": sentence,
                    "target_emotion": labels.MSP_IMPROV[target],
                    "turn": turn,
                    **extra,
                },
            )
        )
    return finish(NAME, base, LAYOUT, found, skips, wanted)
