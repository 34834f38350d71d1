"""Helpers shared by the corpus loaders: root checks, file scanning, class filtering, summary.

Every loader follows the same steps: check the root (:func:`corpus_root`), list candidate audio
files (:func:`audio_files`), parse each name into an :class:`~emovox.types.Utterance` or record
why it was skipped (:class:`Skips`), then hand everything to :func:`finish`, which removes
duplicate ids, filters by class, sorts by id, logs a one-line summary and raises a one-line
:class:`~emovox.errors.CorpusError` when nothing usable was found.
"""

from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from emovox.errors import ConfigError, CorpusError
from emovox.labels import parse_classes
from emovox.types import Utterance

logger = logging.getLogger("emovox.corpora")

#: Audio extensions every loader accepts, compared case-insensitively. The originals are WAV;
#: FLAC copies (e.g. the shared development data) keep the original stems.
AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac")

#: Folder names never scanned: hidden folders and the resource forks macOS zips carry.
_IGNORED_DIRS = ("__MACOSX",)

ClassSpec = str | Sequence[str] | None


def is_audio(path: Path) -> bool:
    """Return True for a visible file whose extension is ``.wav`` or ``.flac`` (any case)."""
    return path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")


def corpus_root(root: str | os.PathLike[str], corpus: str, layout: str) -> Path:
    """Return ``root`` as a Path after checking that it is an existing directory.

    Raises:
        CorpusError: If the root is missing or not a directory; the message names the layout.
    """
    path = Path(root).expanduser()
    if not path.exists():
        raise CorpusError(f"{corpus}: root '{path}' does not exist (expected: {layout})")
    if not path.is_dir():
        raise CorpusError(f"{corpus}: root '{path}' is not a directory (expected: {layout})")
    return path


def audio_files(root: Path) -> list[Path]:
    """List every audio file under ``root`` at any depth, sorted, skipping hidden entries."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _IGNORED_DIRS)
        base = Path(folder)
        found.extend(base / name for name in files if is_audio(base / name))
    return sorted(found)


def resolve_classes(classes: ClassSpec) -> tuple[str, ...] | None:
    """Parse a ``classes`` option: ``None`` or ``"all"`` keep everything.

    Args:
        classes: A subset name from :data:`emovox.labels.SUBSETS`, ``"a,b,c"``, a sequence of
            canonical names, ``"all"`` or ``None``.

    Returns:
        The canonical class names, or ``None`` for no filtering.

    Raises:
        ConfigError: On an unknown subset or emotion name.
    """
    if isinstance(classes, str) and classes.strip().lower() == "all":
        return None
    try:
        return parse_classes(classes)
    except ValueError as exc:
        raise ConfigError(f"classes: {exc}") from None


class Skips:
    """Counts files or entries a loader skipped, by reason, with one example of each."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def add(self, reason: str, example: str | os.PathLike[str]) -> None:
        """Record one skipped item."""
        self.counts[reason] += 1
        self.examples.setdefault(reason, Path(example).name)

    @property
    def total(self) -> int:
        """Number of skipped items."""
        return sum(self.counts.values())

    def summary(self) -> str:
        """One line: ``"3 song (e.g. 03-02-...), 1 name not matching (e.g. x.wav)"``."""
        return ", ".join(
            f"{n} {reason} (e.g. {self.examples[reason]})"
            for reason, n in sorted(self.counts.items())
        )


def finish(
    corpus: str,
    root: Path,
    layout: str,
    found: Iterable[Utterance],
    skips: Skips,
    classes: tuple[str, ...] | None,
) -> list[Utterance]:
    """Deduplicate, filter by class, sort by id and log what was kept and skipped.

    Args:
        corpus: Corpus name used in messages.
        root: The scanned root.
        layout: The expected layout, named in errors.
        found: Parsed utterances in scan order (the first of two equal ids wins).
        skips: What the scan skipped.
        classes: Canonical classes to keep, or ``None`` for all.

    Returns:
        The utterances sorted by id.

    Raises:
        CorpusError: If nothing matched the layout, or nothing is left after class filtering.
    """
    unique: dict[str, Utterance] = {}
    for utt in found:
        if utt.id in unique:
            # The same recording twice (a WAV and a FLAC copy, or a nested duplicate folder in
            # a redistribution): keep the first in sorted path order.
            skips.add("duplicate id", utt.path)
            continue
        unique[utt.id] = utt
    if not unique:
        note = f"; skipped {skips.total}: {skips.summary()}" if skips.total else ""
        raise CorpusError(f"{corpus}: no matching file under '{root}'{note} (expected: {layout})")
    kept = list(unique.values())
    if classes is not None:
        wanted = set(classes)
        present = sorted({u.label for u in kept if u.label is not None})
        kept = [u for u in kept if u.label in wanted]
        if not kept:
            raise CorpusError(
                f"{corpus}: no utterance of classes {','.join(classes)} under '{root}' "
                f"(labels present: {','.join(present) or 'none'})"
            )
    kept.sort(key=lambda u: u.id)
    message = f"{corpus}: {len(kept)} utterances from '{root}'"
    if classes is not None and len(kept) < len(unique):
        message += f"; {len(unique) - len(kept)} outside classes {','.join(classes)}"
    if skips.total:
        message += f"; skipped {skips.total}: {skips.summary()}"
    logger.info(message)
    return kept


#: The ``extra`` key of what was said (:func:`clean_transcript`).
TRANSCRIPT = "transcript"


def clean_transcript(text: str | None) -> str | None:
    """A transcript as stored in ``extra["transcript"]``, or ``None`` when there is none.

    The words are kept as the corpus states them (case, punctuation and markup such as
    ``[LAUGHTER]`` untouched); each line is stripped and line breaks become single spaces.
    Empty or blank text gives ``None``: a transcript is never ``""``.
    """
    if text is None:
        return None
    joined = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return joined or None


def read_text(path: Path, corpus: str) -> str:
    """The text of a corpus's own text file: UTF-8 (a BOM is dropped), else Latin-1.

    Raises:
        CorpusError: If the file cannot be read (one line naming it).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{corpus}: cannot read '{path}': {exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_csv_table(path: Path, corpus: str,
                   ) -> tuple[list[str], list[tuple[int, str, list[str]]]]:
    """A published CSV table: its header (cells stripped) and its non-blank rows.

    Each row comes as ``(line number, "<file>:<line>", cells)`` and has at least as many
    fields as the header.

    Raises:
        CorpusError: An unreadable or empty file, or a row with fewer fields than the header
            (one line, naming the file and line).
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CorpusError(f"{corpus}: cannot read '{path}': {exc}") from None
    if not rows:
        raise CorpusError(f"{path}: empty file")
    header = [h.strip() for h in rows[0]]
    body = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path}:{number}"
        if len(row) < len(header):
            raise CorpusError(f"{where}: {len(row)} fields, the header has {len(header)}")
        body.append((number, where, row))
    return header, body
