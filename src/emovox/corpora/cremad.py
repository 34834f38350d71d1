"""CREMA-D: the Crowd-sourced Emotional Multimodal Actors Dataset (audio part).

Layout followed (the release at github.com/CheyneyComputerScience/CREMA-D)::

    <root>/AudioWAV/1001_DFA_ANG_XX.wav
    <root>/VideoDemographics.csv                  (optional; gives each actor's sex)
    <root>/processedResults/tabulatedVotes.csv    (optional; the crowd's votes per clip)

``root`` may also be the ``AudioWAV`` folder itself (then ``VideoDemographics.csv`` and
``processedResults/`` are looked for beside it). Files are found at any depth; ``AudioMP3`` and
``VideoFlash`` hold other formats and are ignored. Extensions ``.wav`` and ``.flac`` (any case).

File names are ``AAAA_SSS_EEE_LL``:

- ``AAAA`` actor, 1001-1091 (91 actors, 48 male and 43 female).
- ``SSS`` sentence: IEO TIE IOM IWW TAI MTI IWL ITH DFA ITS TSI WSI (12 sentences, spelt out
  in the repository's README: IEO "It's eleven o'clock", ..., WSI "We'll stop in a couple of
  minutes"; :data:`SENTENCE_TEXT`).
- ``EEE`` intended emotion: ANG DIS FEA HAP NEU SAD (:data:`emovox.labels.CREMAD`).
- ``LL`` intended level: LO low, MD medium, HI high, XX unspecified (only sentence IEO was
  recorded at three levels).

``VideoDemographics.csv`` is a quoted CSV with header ``"ActorID","Age","Sex","Race",
"Ethnicity"``; ``Sex`` is ``Male`` or ``Female``. Without it, gender is ``None``.

``processedResults/tabulatedVotes.csv`` (the repository's README documents its columns) has one
row per clip and rating condition: an unnamed first column ``100000 * queryType + clipNum``
(``queryType`` 1 voice only, 2 face only, 3 audio-visual, as built by the repository's
``tabulateVotesV2.r``), the vote counts ``A D F H N S`` (anger, disgust, fear, happy, neutral,
sad; :data:`emovox.labels.CREMAD_VOTES`), ``fileName`` (``1001_DFA_ANG_XX``), then
``numResponses``, ``agreement``, ``emoVote`` and mean intensity levels (not read). Only the
**voice-only** rows (first column 100001-199999) are read, the raters having heard the audio
alone like a model does; the face-only and audio-visual ratings are ignored. With it, ``extra``
gets ``label_distribution`` (the shares of the voice-only votes) and ``raters`` (their number).
``processedResults/summaryTable.csv`` gives only the majority vote per modality, not the
counts, and is not read. A row whose id or counts are not numbers, a clip listed twice, or a
file without the ``A``...``S`` and ``fileName`` columns raises a one-line
:class:`~emovox.errors.CorpusError` naming the file and line.

The release has 7442 clips. Ids are ``cremad/<stem>``, speakers ``cremad/<AAAA>``; ``extra``
holds ``raw_label`` (``EEE``), ``sentence``, ``transcript`` (the sentence's words, as the README
spells them, without a final period), ``intensity`` (low/medium/high/unspecified), with the
demographics file ``age``, and with the votes ``label_distribution`` and ``raters``. Labels
are the actors' intended emotions, not the crowd's perceived ones.

Licence: Open Database License 1.0; contents under the Database Contents License 1.0.
Citation: Cao H, Cooper DG, Keutmann MK, Gur RC, Nenkova A, Verma R (2014), CREMA-D:
Crowd-sourced Emotional Multimodal Actors Dataset, IEEE Trans. Affective Computing 5(4):
377-390.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from emovox import labels
from emovox.corpora._common import (
    TRANSCRIPT,
    ClassSpec,
    Skips,
    audio_files,
    corpus_root,
    finish,
    read_csv_table,
    resolve_classes,
)
from emovox.errors import CorpusError
from emovox.targets import distribution_from_votes
from emovox.types import Utterance

NAME = "cremad"
LAYOUT = (
    "AudioWAV/AAAA_SSS_EEE_LL.wav (e.g. AudioWAV/1001_DFA_ANG_XX.wav), "
    "optional VideoDemographics.csv"
)
LICENCE = (
    "Open Database License 1.0 (contents: Database Contents License 1.0). Cao H, Cooper DG, "
    "Keutmann MK, Gur RC, Nenkova A, Verma R (2014), CREMA-D: Crowd-sourced Emotional "
    "Multimodal Actors Dataset, IEEE Trans. Affective Computing 5(4): 377-390."
)

#: Sentence code -> the words spoken (the repository's README).
SENTENCE_TEXT: dict[str, str] = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
SENTENCES: tuple[str, ...] = tuple(SENTENCE_TEXT)
_LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
_FIELDS = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
DEMOGRAPHICS = "VideoDemographics.csv"
VOTES = "processedResults/tabulatedVotes.csv"
#: ``queryType`` of the voice-only rating condition (row id ``100000 * queryType + clipNum``).
VOICE_ONLY = 1


def read_demographics(path: Path) -> dict[str, tuple[str | None, int | None]]:
    """Parse ``VideoDemographics.csv``: actor id -> (gender, age).

    Raises:
        CorpusError: If the file cannot be read or lacks the ``ActorID`` and ``Sex`` columns.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CorpusError(f"{NAME}: cannot read '{path}': {exc}") from None
    if not rows or "ActorID" not in rows[0] or "Sex" not in rows[0]:
        raise CorpusError(f"{NAME}: '{path}' lacks the ActorID and Sex columns")
    actors: dict[str, tuple[str | None, int | None]] = {}
    for row in rows:
        sex = (row.get("Sex") or "").strip().lower()
        age = (row.get("Age") or "").strip()
        actors[(row.get("ActorID") or "").strip()] = (
            sex if sex in ("female", "male") else None,
            int(age) if age.isdigit() else None,
        )
    return actors


def read_votes(path: Path) -> dict[str, tuple[dict[str, float], int]]:
    """Parse ``tabulatedVotes.csv``: clip stem -> (voice-only label distribution, raters).

    Raises:
        CorpusError: If the file cannot be read, lacks the vote or ``fileName`` columns, or a
            voice-only row is malformed (one line, ``<file>:<line>: ...``).
    """
    header, rows = read_csv_table(path, NAME)
    needed = [*labels.CREMAD_VOTES, "fileName"]
    missing = [name for name in needed if name not in header]
    if missing:
        raise CorpusError(f"{path}:1: lacks the column(s) {', '.join(missing)} (expected the "
                          f"header \"\",\"A\",\"D\",\"F\",\"H\",\"N\",\"S\",\"fileName\",...)")
    column = {name: header.index(name) for name in needed}
    votes: dict[str, tuple[dict[str, float], int]] = {}
    for _, where, row in rows:
        try:
            row_id = int(row[0].strip())
        except ValueError:
            raise CorpusError(f"{where}: row id '{row[0]}' is not 100000 * queryType + clipNum") \
                from None
        if row_id // 100000 != VOICE_ONLY:
            continue
        stem = row[column["fileName"]].strip()
        if stem in votes:
            raise CorpusError(f"{where}: '{stem}' has a second voice-only row")
        counts: dict[str, float] = {}
        for code, emotion in labels.CREMAD_VOTES.items():
            cell = row[column[code]].strip()
            if not cell.isdigit():
                raise CorpusError(f"{where}: vote count {code}='{cell}' is not a count")
            counts[emotion] = float(cell)
        votes[stem] = (distribution_from_votes(counts, where), int(sum(counts.values())))
    return votes


def _beside(base: Path, relative: str) -> Path | None:
    """``base/relative``, or beside ``base`` when the root is the ``AudioWAV`` folder."""
    candidates = [base / relative]
    if base.name.lower() == "audiowav":
        candidates.append(base.parent / relative)
    return next((c for c in candidates if c.is_file()), None)


def _find_demographics(base: Path) -> Path | None:
    return _beside(base, DEMOGRAPHICS)


def load(root: str | os.PathLike[str], *, classes: ClassSpec = None) -> list[Utterance]:
    """Scan a CREMA-D copy.

    Args:
        root: Folder holding ``AudioWAV/`` (and optionally ``VideoDemographics.csv`` and
            ``processedResults/tabulatedVotes.csv``).
        classes: Keep only these canonical classes (names, a subset name, ``"all"``/``None``).

    Returns:
        Utterances sorted by id.

    Raises:
        CorpusError: If the root is missing, holds no CREMA-D file, or the demographics or
            votes file is unreadable or malformed.
        ConfigError: On an unknown class name.
    """
    wanted = resolve_classes(classes)
    base = corpus_root(root, NAME, LAYOUT)
    demographics_path = _find_demographics(base)
    actors = read_demographics(demographics_path) if demographics_path is not None else {}
    votes_path = _beside(base, VOTES)
    votes = read_votes(votes_path) if votes_path is not None else {}
    skips = Skips()
    found: list[Utterance] = []
    for path in audio_files(base):
        match = _FIELDS.match(path.stem)
        if match is None:
            skips.add("name not AAAA_SSS_EEE_LL", path)
            continue
        actor, sentence, emotion, level = match.groups()
        if sentence not in SENTENCES or emotion not in labels.CREMAD or level not in _LEVELS:
            skips.add("unknown sentence, emotion or level code", path)
            continue
        gender, age = actors.get(actor, (None, None))
        extra: dict[str, object] = {
            "raw_label": emotion,
            "sentence": sentence,
            TRANSCRIPT: SENTENCE_TEXT[sentence],
            "intensity": _LEVELS[level],
        }
        if age is not None:
            extra["age"] = age
        if path.stem in votes:
            extra["label_distribution"], extra["raters"] = votes[path.stem]
        found.append(
            Utterance(
                id=f"{NAME}/{path.stem}",
                path=str(path),
                corpus=NAME,
                speaker=f"{NAME}/{actor}",
                label=labels.CREMAD[emotion],
                gender=gender,
                extra=extra,
            )
        )
    return finish(NAME, base, LAYOUT, found, skips, wanted)
