"""EM2LDL: a multilingual (English, Mandarin, Cantonese) speech corpus for mixed emotions.

Layout followed (the public repository ``github.com/xingfengli/EM2LDL`` holds the labels and
the official split; the audio is distributed separately)::

    <root>/labels/labels_distributions_Info.csv
    <root>/models/train_val_test/train_ids.csv    (optional: the official split, also
    <root>/models/train_val_test/val_ids.csv       val_ids.csv and test_ids.csv)
    <root>/.../0001_intj_ce.wav                   (the audio, at any depth)

``labels_distributions_Info.csv`` (format read from the repository's ``labels/`` folder and its
``labels_readme.md``): a header and one row per utterance with the columns ``AudioID`` (1,
2, ...), the 32 emotion categories of Plutchik's wheel in this order (spelt as in the file):
ecstacy, joy, serenity, love, admiration, trust, acceptance, submission, terror, fear,
apprehension, awe, amazement, surprise, distraction, disapproval, grief, sadness, pensiveness,
remorse, loathing, disgust, boredom, contempt, rage, anger, annoyance, aggresiveness, vigilance,
anticipation, interest, optimism, each the share of the 20 raters' labels given to it (rounded,
the row sums to 1), then ``speaker ID`` (``speaker1``), ``gender`` (male, female), ``age`` (free
text, e.g. ``Youth``, ``22岁``, ``中年``), ``ageClass`` (Youth, Non-Youth), ``mbtiSingle`` and
``mbtiDouble`` (personality letters, e.g. ``i`` / ``in``, or ``none``) and ``lang`` (a language
code such as ``ce``, ``mc``, ``me``; the repository does not spell them out, so they are kept
verbatim). The categories map to canonical names with :data:`emovox.labels.EM2LDL` (joy, fear,
surprise, sadness, disgust, boredom and anger onto emovox's happy, fearful, surprised, sad,
disgust, bored and angry; the other 25 are canonical names of their own, e.g. ``ecstasy``,
``aggressiveness``).

``extra["label_distribution"]`` is the row's distribution, checked as published (no share
negative, the row sums to 1; an unknown category column, a share that is not a number or a row
that does not sum to 1 raises a one-line :class:`~emovox.errors.CorpusError` naming the file and
line). The single ``label`` is the category with the largest share, a declared choice for the
code that needs one class (the corpus itself has no single label); a tie goes to the category
that comes first in the file's column order, and ``extra["label_tied"]`` is then True.
``raw_label`` is that column's name.

Audio names: the repository publishes only demonstration clips (``audio_demos/0001_intj_ce.WAV``,
``0003_mbti_ce.WAV``: the zero-padded AudioID, the speaker's MBTI type or ``mbti``, the
language code). The full release's audio layout is **not documented publicly**, so the loader
matches any ``.wav``/``.flac`` whose name starts with the AudioID digits (``0001_intj_ce.wav``,
``0001.wav``) and skips the others; rows without audio are skipped and counted.

The official speaker-independent split (70/10/20 by speaker: ``models/train_val_test/*.csv``,
header ``audio_id``, zero-padded ids) is kept in ``extra["split"]`` (train, val, test) when the
files are present. The paper also reports gender, age-group and personality cross-validations,
which the ``gender``, ``age_group`` and ``mbti_double`` fields allow. emovox's fold protocols
have no "official split" yet, so the registry names ``speaker_kfold``.

Ids are ``em2ldl/<audio stem>``, speakers ``em2ldl/<speaker ID>``; ``extra`` holds
``raw_label``, ``label_distribution``, ``label_tied``, ``age``, ``age_group``, ``mbti_single``,
``mbti_double``, ``lang`` and, with the split files, ``split``.

Licence: see the repository (research use; the audio comes from online platforms).
Citation: Li X et al. (2025), EM2LDL: A Multilingual Speech Corpus for Mixed Emotion
Recognition through Label Distribution Learning.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from emovox import labels
from emovox.corpora._common import (
    ClassSpec,
    Skips,
    audio_files,
    corpus_root,
    finish,
    read_csv_table,
    resolve_classes,
)
from emovox.errors import CorpusError
from emovox.targets import check_distribution
from emovox.types import Utterance

NAME = "em2ldl"
LAYOUT = (
    "labels/labels_distributions_Info.csv (optional models/train_val_test/*_ids.csv) and "
    "audio named <AudioID>_..., e.g. 0001_intj_ce.wav, at any depth"
)
LICENCE = (
    "See github.com/xingfengli/EM2LDL (research use). Li X et al. (2025), EM2LDL: A "
    "Multilingual Speech Corpus for Mixed Emotion Recognition through Label Distribution "
    "Learning."
)

LABELS_FILE = "labels_distributions_Info.csv"
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Columns other than the categories: column name -> ``extra`` key (``None``: not in extra).
METADATA: dict[str, str | None] = {
    "AudioID": None,
    "speaker ID": None,
    "gender": None,
    "age": "age",
    "ageClass": "age_group",
    "mbtiSingle": "mbti_single",
    "mbtiDouble": "mbti_double",
    "lang": "lang",
}
_AUDIO = re.compile(r"^(\d+)(?:_.*)?$")


def read_labels(path: Path) -> dict[int, tuple[int, dict[str, str], dict[str, float]]]:
    """Parse the labels file: AudioID -> (line number, metadata cells, label distribution).

    The distribution is over canonical names, in the file's column order.

    Raises:
        CorpusError: A missing or unknown column, or a malformed row (one line,
            ``<file>:<line>: ...``).
    """
    header, rows = read_csv_table(path, NAME)
    unknown = [h for h in header if h not in METADATA and h not in labels.EM2LDL]
    if unknown:
        raise CorpusError(f"{path}:1: unknown emotion category column(s) {', '.join(unknown)} "
                          f"(known: {', '.join(labels.EM2LDL)})")
    missing = [h for h in ("AudioID", "speaker ID", *labels.EM2LDL) if h not in header]
    if missing:
        raise CorpusError(f"{path}:1: lacks the column(s) {', '.join(missing)}")
    categories = [(i, h) for i, h in enumerate(header) if h in labels.EM2LDL]
    result: dict[int, tuple[int, dict[str, str], dict[str, float]]] = {}
    for number, where, row in rows:
        cells = {h: row[i].strip() for i, h in enumerate(header) if h in METADATA}
        try:
            audio_id = int(cells["AudioID"])
        except ValueError:
            raise CorpusError(f"{where}: AudioID '{cells['AudioID']}' is not a number") from None
        if audio_id in result:
            raise CorpusError(f"{where}: AudioID {audio_id} is given twice")
        if not cells["speaker ID"]:
            raise CorpusError(f"{where}: no speaker ID")
        shares = {labels.EM2LDL[h]: row[i].strip() for i, h in categories}
        distribution = check_distribution(shares, where)
        ordered = {e: distribution[e] for e in shares if e in distribution}
        result[audio_id] = (number, cells, ordered)
    return result


def read_splits(folder: Path) -> dict[int, str]:
    """The official split: AudioID -> train / val / test, from ``<split>_ids.csv`` files.

    Raises:
        CorpusError: An id that is not a number, or one listed in two splits.
    """
    result: dict[int, str] = {}
    for split in SPLITS:
        path = folder / f"{split}_ids.csv"
        if not path.is_file():
            continue
        _, rows = read_csv_table(path, NAME)
        for _, where, row in rows:
            try:
                audio_id = int(row[0].strip())
            except ValueError:
                raise CorpusError(f"{where}: audio id '{row[0]}' is not a number") from None
            if audio_id in result:
                raise CorpusError(f"{where}: audio id {row[0].strip()} is already in "
                                  f"the {result[audio_id]} split")
            result[audio_id] = split
    return result


def _find(base: Path, *candidates: str) -> Path | None:
    return next((base / c for c in candidates if (base / c).exists()), None)


def load(root: str | os.PathLike[str], *, classes: ClassSpec = None) -> list[Utterance]:
    """Scan an EM2LDL copy.

    Args:
        root: Folder holding ``labels/labels_distributions_Info.csv`` and the audio.
        classes: Keep only utterances whose largest share is one of these canonical classes
            (names, a subset name, ``"all"``/``None``).

    Returns:
        Utterances sorted by id.

    Raises:
        CorpusError: If the root is missing, has no labels file, a label or split file is
            malformed, or no labelled utterance has its audio.
        ConfigError: On an unknown class name.
    """
    wanted = resolve_classes(classes)
    base = corpus_root(root, NAME, LAYOUT)
    labels_path = _find(base, f"labels/{LABELS_FILE}", LABELS_FILE)
    if labels_path is None:
        raise CorpusError(f"{NAME}: no labels/{LABELS_FILE} under '{base}' (expected: {LAYOUT})")
    rows = read_labels(labels_path)
    split_folder = _find(base, "models/train_val_test", "train_val_test")
    splits = read_splits(split_folder) if split_folder is not None else {}
    skips = Skips()
    found: list[Utterance] = []
    used: set[int] = set()
    for path in audio_files(base):
        match = _AUDIO.match(path.stem)
        if match is None:
            skips.add("name not <AudioID>_...", path)
            continue
        audio_id = int(match.group(1))
        if audio_id not in rows:
            skips.add("no label row", path)
            continue
        if audio_id in used:
            skips.add("second file for one AudioID", path)
            continue
        used.add(audio_id)
        _, cells, distribution = rows[audio_id]
        top = max(distribution.values())
        modes = [e for e, share in distribution.items() if share == top]
        label = modes[0]
        raw = next(h for h, e in labels.EM2LDL.items() if e == label)
        extra: dict[str, object] = {
            "raw_label": raw,
            "label_distribution": distribution,
            "label_tied": len(modes) > 1,
        }
        for column, key in METADATA.items():
            if key is not None and column in cells:
                extra[key] = cells[column]
        if audio_id in splits:
            extra["split"] = splits[audio_id]
        gender = cells.get("gender", "").lower()
        found.append(
            Utterance(
                id=f"{NAME}/{path.stem}",
                path=str(path),
                corpus=NAME,
                speaker=f"{NAME}/{cells['speaker ID']}",
                label=label,
                gender=gender if gender in ("female", "male") else None,
                extra=extra,
            )
        )
    for audio_id in sorted(set(rows) - used):
        skips.add("missing audio", f"AudioID {audio_id}")
    return finish(NAME, base, LAYOUT, found, skips, wanted)
