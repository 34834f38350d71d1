"""SAVEE: the Surrey Audio-Visual Expressed Emotion database (audio part).

Two layouts are followed; files are found at any depth below ``root``:

1. The original release from the University of Surrey::

       <root>/AudioData/DC/a01.wav
       <root>/AudioData/JE/sa15.wav      (the speaker is the enclosing folder)

2. The flattened form of common redistributions (e.g. the Kaggle ``ALL`` folder)::

       <root>/ALL/DC_a01.wav

Extensions ``.wav`` and ``.flac`` (any case).

- Speakers: DC, JE, JK, KL, four male postgraduate students and researchers at Surrey.
- Emotion prefix: ``a`` anger, ``d`` disgust, ``f`` fear, ``h`` happiness, ``n`` neutral,
  ``sa`` sadness, ``su`` surprise (:data:`emovox.labels.SAVEE`), followed by a two-digit
  sentence number (01-15; neutral 01-30).

Each speaker has 120 files (480 in all). Ids are ``savee/<SPEAKER>_<code><nn>`` in both layouts
(``savee/DC_a01``), so a file gets the same id whichever copy it comes from; speakers are
``savee/<SPEAKER>``. ``extra`` holds ``raw_label`` (the prefix) and ``sentence`` (the number).

Licence: free for research use, after registration with the University of Surrey (CVSSP).
Citation: Haq S, Jackson PJB (2009), Speaker-dependent audio-visual emotion recognition, Proc.
AVSP 2009, 53-58.
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

NAME = "savee"
LAYOUT = (
    "AudioData/<DC|JE|JK|KL>/<a|d|f|h|n|sa|su><nn>.wav (e.g. AudioData/DC/a01.wav), "
    "or flattened DC_a01.wav"
)
LICENCE = (
    "Free for research use (registration with the University of Surrey). Haq S, Jackson PJB "
    "(2009), Speaker-dependent audio-visual emotion recognition, AVSP 2009."
)

SPEAKERS: tuple[str, ...] = ("DC", "JE", "JK", "KL")

_CODE = r"(sa|su|a|d|f|h|n)(\d{2})"
_ORIGINAL = re.compile(rf"^{_CODE}$")
_FLAT = re.compile(rf"^(DC|JE|JK|KL)_{_CODE}$")


def load(root: str | os.PathLike[str], *, classes: ClassSpec = None) -> list[Utterance]:
    """Scan a SAVEE copy (original ``AudioData/<speaker>/`` folders or flattened names).

    Args:
        root: Folder holding ``AudioData/`` (or the speaker folders, or the flattened files).
        classes: Keep only these canonical classes (names, a subset name, ``"all"``/``None``).

    Returns:
        Utterances sorted by id.

    Raises:
        CorpusError: If the root is missing or holds no SAVEE file.
        ConfigError: On an unknown class name.
    """
    wanted = resolve_classes(classes)
    base = corpus_root(root, NAME, LAYOUT)
    skips = Skips()
    found: list[Utterance] = []
    for path in audio_files(base):
        flat = _FLAT.match(path.stem)
        original = _ORIGINAL.match(path.stem)
        if flat is not None:
            speaker, code, number = flat.groups()
        elif original is not None and path.parent.name in SPEAKERS:
            speaker = path.parent.name
            code, number = original.groups()
        else:
            skips.add("name not <SPEAKER>/<code><nn> or <SPEAKER>_<code><nn>", path)
            continue
        found.append(
            Utterance(
                id=f"{NAME}/{speaker}_{code}{number}",
                path=str(path),
                corpus=NAME,
                speaker=f"{NAME}/{speaker}",
                label=labels.SAVEE[code],
                gender="male",
                extra={"raw_label": code, "sentence": number},
            )
        )
    return finish(NAME, base, LAYOUT, found, skips, wanted)
