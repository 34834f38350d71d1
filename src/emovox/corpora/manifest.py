"""A generic corpus described by a CSV manifest: bring your own data.

Format (UTF-8, a BOM is fine, comma-separated, first line is the header)::

    path,label,speaker,gender,session,start,end,valence,arousal,dominance
    clips/a.wav,angry,spk01,female,s1,,,,,
    long/call.wav,neutral,spk02,,,0.0,4.5,,,
    long/call.wav,,spk03,,,4.5,9.0,3.5,2.0,4.0

Required columns: ``path``, ``label``, ``speaker``. Optional: ``gender``, ``session``,
``start``, ``end`` (seconds), ``valence``, ``arousal``, ``dominance`` (numbers) with
``vad_scale`` (their scale, e.g. ``1..5``), a label distribution: one ``p_<emotion>``
column per emotion (``p_angry,p_sad,...``) or one ``label_distribution`` column holding JSON
(``{"angry": 0.6, "sad": 0.4}``), and ``transcript`` (or ``text``): what was said. Column
names are matched case-insensitively; any other column is kept in ``extra`` as text.

- ``path``: the audio file, relative to the CSV's folder or absolute; it must exist.
- ``label``: a canonical emotion name or alias (``anger``, ``sadness``...; see
  :func:`emovox.labels.canonical`). It may be empty only when at least one of valence, arousal,
  dominance is given (a dimensional-only row, ``label=None``).
- ``speaker``: required, namespaced as ``<corpus>/<speaker>``; ``session`` likewise.
- ``gender``: empty, ``female``/``f`` or ``male``/``m`` (any case).
- ``start`` / ``end``: a segment of a longer file; both optional, non-negative, ``end`` after
  ``start``. ``Utterance.duration`` is ``end - start`` when ``end`` is given.
- ``valence`` / ``arousal`` / ``dominance``: numbers on the row's ``vad_scale`` when one is
  given (a value outside it is an error); without a scale, training uses the range of its
  recordings.
- ``p_<emotion>`` / ``label_distribution``: shares (or raters' proportions) that sum to 1, none
  negative, over known emotions (:mod:`emovox.targets`); empty ``p_`` cells of a row that has
  others count as 0; a row with all of them empty has no distribution. Used for training with
  ``data.targets = "distribution"``. With an empty ``label`` the row's label is the
  distribution's most likely emotion (ties: the first in canonical order).
- ``transcript`` / ``text``: the words of the row's audio (or segment) as written, stripped
  (a line break inside a quoted cell becomes a space), in ``extra["transcript"]`` (used by
  audio + text training); an empty cell means no transcript. A file with both columns is an
  error (give it once).

``root`` is the CSV file itself or a folder holding ``manifest.csv``. Ids are
``<corpus>/<path stem>``; when several rows share one audio file, every one of them gets
``#<start>`` appended (``custom/call#4.5``). Two rows with the same id are an error. Any invalid
row raises a one-line :class:`~emovox.errors.CorpusError` of the form
``<file>:<line>: <problem>``.

Licence: your own data; the licence of the audio you list applies.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from emovox.corpora._common import (
    TRANSCRIPT,
    ClassSpec,
    Skips,
    clean_transcript,
    finish,
    resolve_classes,
)
from emovox.errors import ConfigError, CorpusError
from emovox.labels import canonical, ordered
from emovox.targets import check_distribution, check_vad, parse_scale
from emovox.types import Utterance

NAME = "manifest"
FILENAME = "manifest.csv"
REQUIRED: tuple[str, ...] = ("path", "label", "speaker")
OPTIONAL: tuple[str, ...] = (
    "gender", "session", "start", "end", "valence", "arousal", "dominance", "vad_scale",
    "label_distribution", "transcript", "text",
)  # fmt: skip
#: The columns that may hold a row's transcript (one of them per file).
TRANSCRIPT_COLUMNS: tuple[str, ...] = ("transcript", "text")
LAYOUT = (
    "a CSV file (or a folder holding manifest.csv) with header path,label,speaker and optional "
    "gender,session,start,end,valence,arousal,dominance,transcript; paths relative to the CSV's "
    "folder"
)
LICENCE = "Your own data: the licence of the audio you list applies."

_CORPUS_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_GENDERS = {"female": "female", "f": "female", "male": "male", "m": "male"}
_DIMENSIONS = ("valence", "arousal", "dominance")


def _manifest_file(root: str | os.PathLike[str]) -> Path:
    path = Path(root).expanduser()
    if path.is_dir():
        path = path / FILENAME
        if not path.is_file():
            raise CorpusError(f"{NAME}: no {FILENAME} in '{path.parent}' (expected: {LAYOUT})")
        return path
    if not path.exists():
        raise CorpusError(f"{NAME}: '{path}' does not exist (expected: {LAYOUT})")
    return path


def _number(value: str, column: str, where: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise CorpusError(f"{where}: {column} '{value}' is not a number") from None
    if not math.isfinite(number):
        raise CorpusError(f"{where}: {column} '{value}' is not a finite number")
    return number


def _seconds_tag(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def load(
    root: str | os.PathLike[str],
    *,
    classes: ClassSpec = None,
    corpus: str = "custom",
) -> list[Utterance]:
    """Read a CSV manifest.

    Args:
        root: The CSV file, or a folder holding ``manifest.csv``.
        classes: Keep only these canonical classes (names, a subset name, ``"all"``/``None``);
            rows without a label are dropped when a class filter is given.
        corpus: Corpus name used in ids, speakers and sessions (lower case, digits, ``_``,
            ``-``).

    Returns:
        Utterances sorted by id.

    Raises:
        CorpusError: If the file is missing or any row is invalid (message: file and line).
        ConfigError: On a bad corpus name or an unknown class name.

    Example:
        >>> from emovox.corpora import manifest
        >>> utts = manifest.load("my_data/manifest.csv", corpus="callcenter")  # doctest: +SKIP
    """
    if not _CORPUS_NAME.match(corpus):
        raise ConfigError(f"corpus: name '{corpus}' must be lower-case letters, digits, '_' or '-'")
    wanted = resolve_classes(classes)
    csv_path = _manifest_file(root)
    folder = csv_path.parent
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise CorpusError(f"{csv_path}:1: empty file (expected: {LAYOUT})")
            columns = [name.strip().lower() for name in header]
            for name in REQUIRED:
                if name not in columns:
                    raise CorpusError(f"{csv_path}:1: missing column '{name}' (expected: {LAYOUT})")
            duplicated = [name for name, n in Counter(columns).items() if n > 1]
            if duplicated:
                raise CorpusError(f"{csv_path}:1: duplicate column '{duplicated[0]}'")
            if all(name in columns for name in TRANSCRIPT_COLUMNS):
                raise CorpusError(f"{csv_path}:1: give the transcript once (a 'transcript' or "
                                  f"a 'text' column, not both)")
            rows = []
            for values in reader:
                if not any(v.strip() for v in values):
                    continue
                where = f"{csv_path}:{reader.line_num}"
                if any(v.strip() for v in values[len(columns) :]):
                    raise CorpusError(
                        f"{where}: {len(values)} fields, the header has {len(columns)}"
                    )
                values = (values + [""] * len(columns))[: len(columns)]
                rows.append((where, dict(zip(columns, (v.strip() for v in values), strict=True))))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CorpusError(f"{csv_path}: cannot read the manifest: {exc}") from None
    if not rows:
        raise CorpusError(f"{csv_path}: no rows after the header (expected: {LAYOUT})")

    parsed = [_parse_row(where, row, folder, corpus) for where, row in rows]
    shared = Counter(audio.resolve() for audio, _, _ in parsed)
    found: list[Utterance] = []
    seen: dict[str, str] = {}
    for audio, where, fields in parsed:
        utt_id = f"{corpus}/{audio.stem}"
        if shared[audio.resolve()] > 1:
            utt_id += f"#{_seconds_tag(fields['start'])}"
        if utt_id in seen:
            raise CorpusError(f"{where}: duplicate id '{utt_id}' (first at {seen[utt_id]})")
        seen[utt_id] = where
        found.append(Utterance(id=utt_id, path=str(audio), corpus=corpus, **fields))
    return finish(corpus, csv_path, LAYOUT, found, Skips(), wanted)


def _distribution(row: dict[str, str], where: str) -> dict[str, float]:
    """The row's label distribution from its ``p_<emotion>`` cells or its JSON column."""
    shares = {name[2:]: value for name, value in row.items() if name.startswith("p_")}
    text = row.get("label_distribution", "")
    if text and any(shares.values()):
        raise CorpusError(f"{where}: give the label distribution once (p_<emotion> columns or "
                          f"label_distribution), not both")
    if text:
        try:
            given = json.loads(text)
        except json.JSONDecodeError:
            raise CorpusError(f"{where}: label_distribution is not JSON (e.g. "
                              f"{{\"angry\": 0.6, \"sad\": 0.4}})") from None
        if not isinstance(given, dict):
            raise CorpusError(f"{where}: label_distribution must be a JSON object "
                              f"(emotion -> share)")
        return check_distribution(given, where)
    if not any(shares.values()):
        return {}
    return check_distribution({name: value or 0.0 for name, value in shares.items()}, where)


def _parse_row(
    where: str, row: dict[str, str], folder: Path, corpus: str
) -> tuple[Path, str, dict[str, Any]]:
    """Validate one row; return (audio path, location, Utterance keyword fields)."""
    if not row["path"]:
        raise CorpusError(f"{where}: empty path")
    audio = Path(row["path"]).expanduser()
    if not audio.is_absolute():
        audio = folder / audio
    if not audio.is_file():
        raise CorpusError(f"{where}: audio file '{audio}' not found")
    if not row["speaker"]:
        raise CorpusError(f"{where}: empty speaker")

    gender_text = row.get("gender", "").lower()
    if gender_text and gender_text not in _GENDERS:
        raise CorpusError(f"{where}: gender '{row['gender']}' is not female, male or empty")
    gender = _GENDERS.get(gender_text)

    start = _number(row["start"], "start", where) if row.get("start") else 0.0
    end = _number(row["end"], "end", where) if row.get("end") else None
    if start < 0:
        raise CorpusError(f"{where}: negative start {start:g}")
    if end is not None and end <= start:
        raise CorpusError(f"{where}: end {end:g} is not after start {start:g}")

    extra: dict[str, Any] = {"raw_label": row["label"] or None}
    for name in _DIMENSIONS:
        if row.get(name):
            extra[name] = _number(row[name], name, where)
    if row.get("vad_scale"):
        scale = parse_scale(row["vad_scale"], where)
        check_vad(extra, scale, where)
        extra["vad_scale"] = list(scale)
    distribution = _distribution(row, where)
    if distribution:
        extra["label_distribution"] = distribution
    for name in TRANSCRIPT_COLUMNS:
        words = clean_transcript(row.get(name))
        if words is not None:
            extra[TRANSCRIPT] = words
    if row["label"]:
        try:
            label: str | None = canonical(row["label"])
        except ValueError as exc:
            raise CorpusError(f"{where}: {exc}") from None
    elif distribution:
        label = max(ordered(distribution), key=lambda name: distribution[name])
    elif any(name in extra for name in _DIMENSIONS):
        label = None
    else:
        raise CorpusError(f"{where}: empty label and no label distribution, valence, arousal "
                          f"or dominance")
    for name, value in row.items():
        if name not in REQUIRED and name not in OPTIONAL and not name.startswith("p_") \
                and value:
            extra[name] = value

    fields: dict[str, Any] = {
        "speaker": f"{corpus}/{row['speaker']}",
        "label": label,
        "gender": gender,
        "session": f"{corpus}/{row['session']}" if row.get("session") else None,
        "start": start,
        "duration": None if end is None else end - start,
        "extra": extra,
    }
    return audio, where, fields
