"""URDU: emotional Urdu speech from television talk shows (Latif et al. 2018).

Layout followed (the release at github.com/siddiquelatif/URDU-Dataset)::

    <root>/Angry/SM1_F1_A01.wav
    <root>/Happy/SF1_F10_H010.wav
    <root>/Neutral/SF9_F1_N01.wav
    <root>/Sad/SM6_F4_S0100.wav

One folder per emotion (``Angry Happy Neutral Sad``, :data:`emovox.labels.URDU`; matched
case-insensitively, files may sit in speaker subfolders below it, as an early README describes).
Extensions ``.wav`` and ``.flac`` (any case). The release has 400 files, 100 per emotion, from 38
speakers (27 male, 11 female), 2-3 s each.

File names are ``S<G><n>_F<k>_<E><m>`` (the authors' "SGX_FXX_EYY"):

- ``S<G><n>``: speaker; ``G`` is the gender (``M`` male, ``F`` female) and ``n`` the speaker
  number *within that gender* (SM1-SM27, SF1-SF11), so the gender letter is part of the speaker
  id: ``SM1`` and ``SF1`` are two different people (``urdu/SM1``, ``urdu/SF1``).
- ``F<k>``: the k-th file of that speaker within the emotion folder (``F1``, ``F10``; no padding).
- ``<E><m>``: emotion letter (A angry, H happy, N neutral, S sad) and the file's running number
  within the emotion, written with a leading 0 (``A01`` ... ``A010`` ... ``A0100``).

The label comes from the emotion folder; a file whose emotion letter disagrees with its folder is
skipped and counted. Ids are ``urdu/<stem>``; ``extra`` holds ``raw_label`` (the folder name),
``speaker_file`` (k) and ``emotion_file`` (m) as integers.

Licence: research use only (the authors' README: "Anyone can use this data only for research
purposes"). Citation: Latif S, Qayyum A, Usman M, Qadir J (2018), Cross lingual speech emotion
recognition: Urdu vs. Western languages, Proc. FIT 2018, 88-93; arXiv:1812.10411.
"""

from __future__ import annotations

import os
import re

from emovox import labels
from emovox.corpora._common import (
    ClassSpec,
    Skips,
    audio_files,
    corpus_root,
    finish,
    resolve_classes,
)
from emovox.types import Utterance

NAME = "urdu"
LAYOUT = "Angry/ Happy/ Neutral/ Sad/ holding S<G><n>_F<k>_<E><m>.wav (e.g. Angry/SM1_F1_A01.wav)"
LICENCE = (
    "Research use only. Latif S, Qayyum A, Usman M, Qadir J (2018), Cross lingual speech "
    "emotion recognition: Urdu vs. Western languages, FIT 2018; arXiv:1812.10411."
)

_FIELDS = re.compile(r"^S([MF])(\d+)_F(\d+)_([AHNS])(\d+)$")
_FOLDERS = {name.lower(): name for name in labels.URDU}


def load(root: str | os.PathLike[str], *, classes: ClassSpec = None) -> list[Utterance]:
    """Scan an URDU copy.

    Args:
        root: Folder holding ``Angry/``, ``Happy/``, ``Neutral/`` and ``Sad/``.
        classes: Keep only these canonical classes (names, a subset name, ``"all"``/``None``).

    Returns:
        Utterances sorted by id.

    Raises:
        CorpusError: If the root is missing or holds no URDU file.
        ConfigError: On an unknown class name.
    """
    wanted = resolve_classes(classes)
    base = corpus_root(root, NAME, LAYOUT)
    skips = Skips()
    found: list[Utterance] = []
    for path in audio_files(base):
        match = _FIELDS.match(path.stem)
        if match is None:
            skips.add("name not S<G><n>_F<k>_<E><m>", path)
            continue
        gender, number, speaker_file, letter, emotion_file = match.groups()
        # The innermost emotion folder wins; the root itself may be one (e.g. <root> = Sad/).
        folders = (base.name, *path.relative_to(base).parent.parts)
        folder = next(
            (_FOLDERS[f.lower()] for f in reversed(folders) if f.lower() in _FOLDERS), None
        )
        if folder is None:
            skips.add("not inside an Angry/Happy/Neutral/Sad folder", path)
            continue
        if folder[0] != letter:
            skips.add("emotion letter disagrees with folder", path)
            continue
        found.append(
            Utterance(
                id=f"{NAME}/{path.stem}",
                path=str(path),
                corpus=NAME,
                speaker=f"{NAME}/S{gender}{int(number)}",
                label=labels.URDU[folder],
                gender="male" if gender == "M" else "female",
                extra={
                    "raw_label": folder,
                    "speaker_file": int(speaker_file),
                    "emotion_file": int(emotion_file),
                },
            )
        )
    return finish(NAME, base, LAYOUT, found, skips, wanted)
