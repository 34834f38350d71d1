"""MSP-Podcast: naturalistic emotional speech from podcasts (UT Dallas, MSP lab).

Layout followed (the releases with CSV label files, 1.6 and later; audio found at any depth
under the root)::

    <root>/Labels/labels_consensus.csv
    <root>/Labels/labels_detailed.csv          (optional; one row per rater and segment)
    <root>/Audios/MSP-PODCAST_0001_0008.wav
    <root>/Transcripts/MSP-PODCAST_0001_0008.txt   (optional; recent releases)
    ...

The label folder may be spelt ``Labels``, ``labels`` or ``label`` and the consensus file
``labels_concensus.csv`` (releases up to 1.9 misspelt it). JSON label files
(``labels_consensus.json``, ``labels_detailed.json`` of older releases) are not read: without
``labels_detailed.csv`` the segments get no distribution, and a release with JSON labels only
is best converted to a manifest CSV (:mod:`emovox.corpora.manifest`).

``labels_consensus.csv`` has a header and one row per segment with the columns ``FileName``
(``MSP-PODCAST_0001_0008.wav``), ``EmoClass`` (the consensus category), ``EmoAct``, ``EmoVal``,
``EmoDom`` (the mean arousal, valence and dominance ratings, 1-7: very calm to very active, very
negative to very positive, very weak to very strong), ``SpkrID``, ``Gender`` and ``Split_Set``
(the official partitions: Train, Development, Test1, Test2, and Test3 in recent releases).
``EmoClass`` letters (:data:`emovox.labels.MSP_PODCAST`): A angry, C contempt, D disgust, F
fear, H happy, N neutral, O other, S sad, U surprise; X (no agreement) is dropped unless
``keep_no_agreement`` (then the label is ``None`` and only the distribution and the ratings
remain). A row with an empty ``EmoClass`` (an unlabelled partition) is skipped.

``labels_detailed.csv`` has one row per rater and segment, in one of the two layouts the
releases used:

- ``FileName,EmoDetail`` (releases 1.7 to 1.12), ``EmoDetail`` being
  ``WORKER00014; Angry; Frustrated,Annoyed; A:2.0; V:3.0; D:4.0;`` (rater, primary emotion,
  secondary emotions, the rater's own ratings);
- ``FileName,WorkerID,EmoClass_Major,EmoClass_Second,EmoAct,EmoVal,EmoDom`` (release 2.0;
  ``Workers`` instead of ``WorkerID`` in 1.6).

The rater's primary emotion (:data:`emovox.labels.MSP_PODCAST_RATER`: Angry, Contempt, Disgust,
Fear, Happy, Neutral, Other, Sad, Surprise; any ``Other-<text>`` is other) is its vote:
``extra["label_distribution"]`` is the share of the segment's raters per primary emotion (one
vote each; the secondary emotions, a multi-select of everything else perceived, are not
counted: a declared choice). A rater listed twice for one segment counts once (the first row).
``extra["raters"]`` is the number of raters counted; a segment without rater rows gets no
distribution. The column layouts follow public parsers of the releases (not checked against a
copy here).

Transcripts: recent releases ship one text file per segment, ``Transcripts/<FileName
stem>.txt`` (the folder directly under the root, any case, also spelt ``Transcript``; files at
any depth below it), holding the segment's words. ``extra["transcript"]`` is that text, lines
stripped and joined by single spaces (UTF-8, else Latin-1); a segment without a file, or with
an empty one, has no transcript. Which tool made the transcripts (people or ASR) depends on the
release; the file is taken as given.

Speakers: ``SpkrID`` is a number; segments whose speaker is not identified (``Unknown`` or
empty) share the speaker ``msp_podcast/unknown``, so a speaker-independent split keeps them
together (a declared choice: they may be several people). ``Gender`` Female / Male, else
``None``.

Protocol: the official ``Split_Set`` partitions, speaker-independent by design, kept in
``extra["split"]``; ``splits=("Train", "Development")`` keeps only those. emovox's fold
protocols have no "official split" yet, so the registry names ``speaker_kfold``.

Ids are ``msp_podcast/<FileName stem>``; ``extra`` holds ``raw_label`` (the letter), ``split``,
``valence``, ``arousal``, ``dominance`` and ``vad_scale`` (``[1.0, 7.0]``) when given,
``label_distribution`` / ``raters`` with the rater file and ``transcript`` with a transcript
file. Any malformed row (a number that is not one, a rating outside 1-7, an unknown category)
raises a one-line :class:`~emovox.errors.CorpusError` naming the file and line.

Licence: academic licence agreement with the MSP lab, UT Dallas (no redistribution).
Citation: Lotfian R, Busso C (2019), Building naturalistic emotionally balanced speech corpus by
retrieving emotional speech from existing podcast recordings, IEEE Trans. Affective Computing
10(4): 471-483.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from emovox import labels
from emovox.corpora._common import (
    TRANSCRIPT,
    ClassSpec,
    Skips,
    audio_files,
    clean_transcript,
    corpus_root,
    finish,
    read_csv_table,
    read_text,
    resolve_classes,
)
from emovox.errors import CorpusError
from emovox.targets import check_vad, distribution_from_votes
from emovox.types import Utterance

NAME = "msp_podcast"
LAYOUT = (
    "Labels/labels_consensus.csv (optional Labels/labels_detailed.csv) and "
    "Audios/MSP-PODCAST_<podcast>_<segment>.wav (e.g. Audios/MSP-PODCAST_0001_0008.wav)"
)
LICENCE = (
    "Academic licence agreement with the MSP lab, UT Dallas (no redistribution). Lotfian R, "
    "Busso C (2019), Building naturalistic emotionally balanced speech corpus by retrieving "
    "emotional speech from existing podcast recordings, IEEE Trans. Affective Computing 10(4): "
    "471-483."
)

#: The scale of MSP-Podcast's arousal / valence / dominance ratings.
VAD_SCALE: tuple[float, float] = (1.0, 7.0)

CONSENSUS_COLUMNS: tuple[str, ...] = (
    "FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set",
)  # fmt: skip
_LABEL_DIRS = ("labels", "label")
_CONSENSUS_FILES = ("labels_consensus.csv", "labels_concensus.csv")
_DETAILED_FILE = "labels_detailed.csv"
_DIMENSIONS = (("EmoVal", "valence"), ("EmoAct", "arousal"), ("EmoDom", "dominance"))
_UNKNOWN_SPEAKERS = {"", "unknown", "nan", "none"}
_TRANSCRIPT_DIRS = ("transcripts", "transcript")


def _rating(text: str, column: str, where: str) -> float | None:
    """A mean rating, or ``None`` when empty or NaN."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise CorpusError(f"{where}: {column} '{text}' is not a number") from None
    return None if math.isnan(value) else value


def read_consensus(path: Path) -> list[tuple[int, dict[str, str]]]:
    """Parse ``labels_consensus.csv``: (line number, row) per segment, cells stripped.

    Raises:
        CorpusError: If the file is unreadable, lacks a column, or a row has too few fields.
    """
    header, rows = read_csv_table(path, NAME)
    missing = [c for c in CONSENSUS_COLUMNS if c not in header]
    if missing:
        raise CorpusError(f"{path}:1: lacks the column(s) {', '.join(missing)} (expected "
                          f"{','.join(CONSENSUS_COLUMNS)})")
    out: list[tuple[int, dict[str, str]]] = []
    for number, _, row in rows:
        out.append((number, {name: row[i].strip() for i, name in enumerate(header)}))
    return out


def _primary(text: str, where: str) -> str:
    name = text.strip()
    emotion = labels.MSP_PODCAST_RATER.get(name)
    if emotion is None and name.startswith("Other"):
        emotion = "other"
    if emotion is None:
        raise CorpusError(f"{where}: unknown primary emotion '{name}' (known: "
                          f"{', '.join(labels.MSP_PODCAST_RATER)}, Other-<text>)")
    return emotion


def read_detailed(path: Path) -> dict[str, tuple[dict[str, float], int]]:
    """Parse ``labels_detailed.csv``: FileName -> (label distribution, number of raters).

    Raises:
        CorpusError: If the file is unreadable or has neither layout, or a row is malformed
            (one line, ``<file>:<line>: ...``).
    """
    header, rows = read_csv_table(path, NAME)
    if "FileName" not in header:
        raise CorpusError(f"{path}:1: lacks the FileName column")
    worker_column = next((c for c in ("WorkerID", "Workers") if c in header), None)
    if "EmoDetail" in header:
        worker_column = None  # the rater is the first field of EmoDetail
    elif worker_column is None or "EmoClass_Major" not in header:
        raise CorpusError(f"{path}:1: expected the columns FileName,EmoDetail or FileName,"
                          f"WorkerID,EmoClass_Major,... (found {','.join(header)})")
    index = {name: i for i, name in enumerate(header)}
    votes: dict[str, dict[str, float]] = {}
    raters: dict[str, set[str]] = {}
    for _, where, row in rows:
        name = row[index["FileName"]].strip()
        if worker_column is None:
            # EmoDetail: WORKER00014; Angry; Frustrated,Annoyed; A:2.0; V:3.0; D:4.0;
            fields = row[index["EmoDetail"]].split(";")
            if len(fields) < 3:
                raise CorpusError(f"{where}: EmoDetail is not '<worker>; <primary>; "
                                  f"<secondary>; A:x; V:x; D:x;'")
            worker, primary = fields[0].strip(), fields[1]
        else:
            worker, primary = row[index[worker_column]].strip(), row[index["EmoClass_Major"]]
        if not worker:
            raise CorpusError(f"{where}: no rater id")
        emotion = _primary(primary, where)
        seen = raters.setdefault(name, set())
        if worker in seen:
            continue  # the same rater twice for one segment: counted once
        seen.add(worker)
        counts = votes.setdefault(name, {})
        counts[emotion] = counts.get(emotion, 0.0) + 1.0
    return {
        name: (distribution_from_votes(counts, f"{path}: {name}"), len(raters[name]))
        for name, counts in votes.items()
    }


def find_transcripts(base: Path) -> dict[str, Path]:
    """Segment stem -> its transcript file, from the ``Transcripts`` folder (empty without one).

    Hidden files and folders are ignored; the first file of a stem (sorted paths) wins.
    """
    found: dict[str, Path] = {}
    folders = [c for c in sorted(base.iterdir())
               if c.is_dir() and c.name.lower() in _TRANSCRIPT_DIRS]
    for folder in folders:
        for walk_dir, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                path = Path(walk_dir) / name
                if path.suffix.lower() == ".txt" and not name.startswith("."):
                    found.setdefault(path.stem, path)
    return found


def _find_labels(base: Path) -> tuple[Path | None, Path | None]:
    """(consensus file, detailed file or None) in the label folder (or the root itself)."""
    folders = [base] + [c for c in sorted(base.iterdir())
                        if c.is_dir() and c.name.lower() in _LABEL_DIRS]
    for folder in folders:
        files = {c.name.lower(): c for c in folder.iterdir() if c.is_file()}
        consensus = next((files[n] for n in _CONSENSUS_FILES if n in files), None)
        if consensus is not None:
            return consensus, files.get(_DETAILED_FILE)
    return None, None


def load(
    root: str | os.PathLike[str],
    *,
    classes: ClassSpec = None,
    splits: Sequence[str] | None = None,
    keep_no_agreement: bool = False,
) -> list[Utterance]:
    """Scan an MSP-Podcast copy.

    Args:
        root: Folder holding ``Labels/`` and the audio (``Audios/``).
        classes: Keep only these canonical classes (names, a subset name, ``"all"``/``None``).
        splits: Keep only these official partitions (``Split_Set`` values, any case, e.g.
            ``("Train", "Development")``); all by default.
        keep_no_agreement: Keep the segments without consensus (``X``), with label ``None``
            (only when ``classes`` is ``None``/``"all"``, since a class filter drops them).

    Returns:
        Utterances sorted by id.

    Raises:
        CorpusError: If the root is missing, has no consensus file, a label file is malformed,
            or no labelled segment has its audio.
        ConfigError: On an unknown class name.
    """
    wanted = resolve_classes(classes)
    keep_splits = None if splits is None else {s.strip().lower() for s in splits}
    base = corpus_root(root, NAME, LAYOUT)
    consensus_path, detailed_path = _find_labels(base)
    if consensus_path is None:
        raise CorpusError(f"{NAME}: no Labels/labels_consensus.csv under '{base}' "
                          f"(expected: {LAYOUT})")
    rows = read_consensus(consensus_path)
    detailed = read_detailed(detailed_path) if detailed_path is not None else {}
    audio: dict[str, Path] = {}
    for path in audio_files(base):
        audio.setdefault(path.stem, path)
    transcript_files = find_transcripts(base)
    skips = Skips()
    found: list[Utterance] = []
    for number, row in rows:
        where = f"{consensus_path}:{number}"
        file_name = row["FileName"]
        stem = Path(file_name).stem
        letter = row["EmoClass"]
        if not letter:
            skips.add("no consensus label", file_name)
            continue
        if letter != "X" and letter not in labels.MSP_PODCAST:
            raise CorpusError(f"{where}: unknown EmoClass '{letter}' (known: "
                              f"{' '.join(labels.MSP_PODCAST)} X)")
        if letter == "X" and not keep_no_agreement:
            skips.add("no agreement (X)", file_name)
            continue
        if keep_splits is not None and row["Split_Set"].lower() not in keep_splits:
            skips.add("partition not selected", file_name)
            continue
        wav = audio.get(stem)
        if wav is None:
            skips.add("missing audio", file_name)
            continue
        extra: dict[str, object] = {"raw_label": letter, "split": row["Split_Set"]}
        vad: dict[str, float] = {}
        for column, dimension in _DIMENSIONS:
            value = _rating(row[column], column, where)
            if value is not None:
                vad[dimension] = value
        if vad:
            check_vad(vad, VAD_SCALE, where)
            extra.update(vad)
            extra["vad_scale"] = list(VAD_SCALE)
        if file_name in detailed:
            extra["label_distribution"], extra["raters"] = detailed[file_name]
        if stem in transcript_files:
            words = clean_transcript(read_text(transcript_files[stem], NAME))
            if words is not None:
                extra[TRANSCRIPT] = words
        speaker = row["SpkrID"]
        if speaker.lower() in _UNKNOWN_SPEAKERS:
            speaker = "unknown"
        gender = row["Gender"].lower()
        found.append(
            Utterance(
                id=f"{NAME}/{stem}",
                path=str(wav),
                corpus=NAME,
                speaker=f"{NAME}/{speaker}",
                label=labels.MSP_PODCAST.get(letter),
                gender=gender if gender in ("female", "male") else None,
                extra=extra,
            )
        )
    return finish(NAME, base, LAYOUT, found, skips, wanted)
