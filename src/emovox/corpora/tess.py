"""TESS: the Toronto Emotional Speech Set.

Layout followed (the University of Toronto release, also the common Kaggle copy)::

    <root>/OAF_angry/OAF_back_angry.wav
    <root>/OAF_Pleasant_surprise/OAF_back_ps.wav
    <root>/YAF_pleasant_surprised/YAF_dog_ps.wav
    ...

Fourteen folders, one per speaker and emotion: ``OAF_angry OAF_disgust OAF_Fear OAF_happy
OAF_neutral OAF_Pleasant_surprise OAF_Sad YAF_angry YAF_disgust YAF_fear YAF_happy YAF_neutral
YAF_pleasant_surprised YAF_sad`` (the case differs between folders in the real release, and
the folder names are not used for labels). Files are found at any depth below ``root``.
Extensions ``.wav`` and ``.flac`` (any case).

File names are ``<speaker>_<word>_<emotion>``:

- ``speaker``: ``OAF`` (older adult female, aged 64) or ``YAF`` (younger adult female, aged 26).
  Both are women. One file of the real release is misnamed ``OAF_neutral/OA_bite_neutral.wav``;
  a truncated prefix like ``OA`` is resolved through the folder's prefix (``OAF``).
- ``word``: one of the 200 NU-6 target words spoken in the carrier phrase "Say the word ...".
  ``extra["transcript"]`` is that phrase with the word (``OAF_back_angry`` -> ``"Say the word
  back"``).
- ``emotion`` (any case): angry, disgust, fear, happy, neutral, ps (pleasant surprise), sad
  (:data:`emovox.labels.TESS`).

The release has 2800 files (2 speakers x 7 emotions x 200 words). Ids are ``tess/<stem>``
(the stem as found, so ``tess/OA_bite_neutral``), speakers ``tess/OAF`` and ``tess/YAF``;
``extra`` holds ``raw_label`` (the emotion word, lower case), ``word`` (lower case) and
``transcript``.

Licence: CC BY-NC-ND 4.0. Citation: Dupuis K, Pichora-Fuller MK (2010), Toronto emotional
speech set (TESS), University of Toronto, Psychology Department; doi:10.5683/SP2/E8H2MF.
"""

from __future__ import annotations

import os

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

NAME = "tess"
LAYOUT = "OAF_angry/OAF_back_angry.wav ... YAF_pleasant_surprised/YAF_dog_ps.wav (.wav or .flac)"
LICENCE = (
    "CC BY-NC-ND 4.0. Dupuis K, Pichora-Fuller MK (2010), Toronto emotional speech set (TESS), "
    "University of Toronto; doi:10.5683/SP2/E8H2MF."
)

SPEAKERS: tuple[str, ...] = ("OAF", "YAF")
#: The carrier phrase every target word is spoken in.
CARRIER = "Say the word"


def load(root: str | os.PathLike[str], *, classes: ClassSpec = None) -> list[Utterance]:
    """Scan a TESS copy.

    Args:
        root: Folder holding the ``OAF_*`` and ``YAF_*`` folders.
        classes: Keep only these canonical classes (names, a subset name, ``"all"``/``None``).

    Returns:
        Utterances sorted by id.

    Raises:
        CorpusError: If the root is missing or holds no TESS file.
        ConfigError: On an unknown class name.
    """
    wanted = resolve_classes(classes)
    base = corpus_root(root, NAME, LAYOUT)
    skips = Skips()
    found: list[Utterance] = []
    for path in audio_files(base):
        parts = path.stem.split("_")
        if len(parts) < 3:
            skips.add("name not SPEAKER_word_emotion", path)
            continue
        speaker, emotion, word = parts[0].upper(), parts[-1].lower(), "_".join(parts[1:-1])
        if speaker not in SPEAKERS:
            # Known quirk: OAF_neutral/OA_bite_neutral.wav lacks the F. Accept a truncated
            # prefix when the enclosing folder names a speaker that starts with it.
            folder = path.parent.name.split("_")[0].upper()
            if folder in SPEAKERS and speaker and folder.startswith(speaker):
                speaker = folder
            else:
                skips.add("unknown speaker prefix", path)
                continue
        if emotion not in labels.TESS:
            skips.add("unknown emotion word", path)
            continue
        extra = {"raw_label": emotion, "word": word.lower()}
        if word:
            extra[TRANSCRIPT] = f"{CARRIER} {word.lower()}"
        found.append(
            Utterance(
                id=f"{NAME}/{path.stem}",
                path=str(path),
                corpus=NAME,
                speaker=f"{NAME}/{speaker}",
                label=labels.TESS[emotion],
                gender="female",
                extra=extra,
            )
        )
    return finish(NAME, base, LAYOUT, found, skips, wanted)
