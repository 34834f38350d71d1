"""RAVDESS, speech part: the Ryerson Audio-Visual Database of Emotional Speech and Song.

Layout followed (the original Zenodo release, ``Audio_Speech_Actors_01-24.zip``)::

    <root>/Actor_01/03-01-01-01-01-01-01.wav
    ...
    <root>/Actor_24/03-01-08-02-02-02-24.wav

``root`` is the folder holding the ``Actor_XX`` folders (e.g. the unzipped
``Audio_Speech_Actors_01-24``); files are found at any depth below it, so a parent folder that
also holds the song or video parts works too. Extensions ``.wav`` and ``.flac`` (any case).

File names are seven two-digit fields ``MM-VC-EE-II-SS-RR-AA``:

- ``MM`` modality: 01 full audio-video, 02 video-only, 03 audio-only. Only 03 is kept.
- ``VC`` vocal channel: 01 speech, 02 song. Only 01 is kept (the song part is skipped).
- ``EE`` emotion: 01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust,
  08 surprised (:data:`emovox.labels.RAVDESS`).
- ``II`` intensity: 01 normal, 02 strong (neutral has no strong take).
- ``SS`` statement: 01 "Kids are talking by the door", 02 "Dogs are sitting by the door".
- ``RR`` repetition: 01 or 02.
- ``AA`` actor 01-24: odd numbers are male, even numbers female.

The speech part has 1440 files (24 actors x 60). Some original files are stereo (emovox.audio
downmixes on load). Ids are ``ravdess/<stem>``, speakers ``ravdess/<AA>``; ``extra`` holds
``raw_label`` (the ``EE`` code), ``intensity``, ``statement``, ``repetition`` and
``transcript``, the statement's words as the corpus documents them (``SS`` 01 gives
``"Kids are talking by the door"``).

Licence: CC BY-NC-SA 4.0 (non-commercial, share-alike, attribution; a model trained on it must
say so). Citation: Livingstone SR, Russo FA (2018), The Ryerson Audio-Visual Database of
Emotional Speech and Song (RAVDESS), PLoS ONE 13(5): e0196391.
"""

from __future__ import annotations

import os
import re

from emovox import labels
from emovox.corpora._common import (
    TRANSCRIPT,
    ClassSpec,
    Skips,
    audio_files,
    corpus_root,
    finish,
    resolve_classes,
)
from emovox.types import Utterance

NAME = "ravdess"
LAYOUT = (
    "Actor_01/ ... Actor_24/ holding MM-VC-EE-II-SS-RR-AA.wav or .flac, "
    "e.g. Actor_12/03-01-05-01-02-01-12.wav"
)
LICENCE = (
    "CC BY-NC-SA 4.0. Livingstone SR, Russo FA (2018), The Ryerson Audio-Visual Database of "
    "Emotional Speech and Song (RAVDESS), PLoS ONE 13(5): e0196391."
)

_FIELDS = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_INTENSITY = {"01": "normal", "02": "strong"}
#: Statement code -> the words spoken (the corpus's own documentation, no final period).
_STATEMENT = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}


def load(root: str | os.PathLike[str], *, classes: ClassSpec = None) -> list[Utterance]:
    """Scan a RAVDESS speech copy.

    Args:
        root: Folder holding ``Actor_01`` ... ``Actor_24``.
        classes: Keep only these canonical classes (names, a subset name, ``"all"``/``None``).

    Returns:
        Utterances sorted by id.

    Raises:
        CorpusError: If the root is missing or holds no RAVDESS speech file.
        ConfigError: On an unknown class name.

    Example:
        >>> from emovox.corpora import ravdess
        >>> utts = ravdess.load("data/ravdess")  # doctest: +SKIP
        >>> utts[0].speaker, utts[0].gender  # doctest: +SKIP
        ('ravdess/01', 'male')
    """
    wanted = resolve_classes(classes)
    base = corpus_root(root, NAME, LAYOUT)
    skips = Skips()
    found: list[Utterance] = []
    for path in audio_files(base):
        match = _FIELDS.match(path.stem)
        if match is None:
            skips.add("name not MM-VC-EE-II-SS-RR-AA", path)
            continue
        modality, channel, emotion, intensity, statement, repetition, actor = match.groups()
        if modality in ("01", "02"):
            skips.add("video modality (01/02)", path)
            continue
        if channel == "02":
            skips.add("song (vocal channel 02)", path)
            continue
        if (
            modality != "03"
            or channel != "01"
            or emotion not in labels.RAVDESS
            or intensity not in _INTENSITY
            or statement not in _STATEMENT
            or repetition not in ("01", "02")
            or not 1 <= int(actor) <= 24
        ):
            skips.add("field value out of range", path)
            continue
        found.append(
            Utterance(
                id=f"{NAME}/{path.stem}",
                path=str(path),
                corpus=NAME,
                speaker=f"{NAME}/{actor}",
                label=labels.RAVDESS[emotion],
                gender="male" if int(actor) % 2 == 1 else "female",
                extra={
                    "raw_label": emotion,
                    "intensity": _INTENSITY[intensity],
                    "statement": statement,
                    "repetition": repetition,
                    TRANSCRIPT: _STATEMENT[statement],
                },
            )
        )
    return finish(NAME, base, LAYOUT, found, skips, wanted)
