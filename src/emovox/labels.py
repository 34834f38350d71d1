"""Canonical emotion names and every corpus's label map, in one auditable place.

Corpus loaders map each corpus's own codes onto the canonical names below and keep the raw code
in ``Utterance.extra["raw_label"]``. Class *subsets* used by protocols and cross-corpus tests
(e.g. the IEMOCAP 4-class set) are defined here too, so no recipe invents its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

#: Every canonical emotion name emovox knows, in a fixed order.
EMOTIONS: tuple[str, ...] = (
    "angry",
    "bored",
    "calm",
    "disgust",
    "excited",
    "fearful",
    "frustrated",
    "happy",
    "neutral",
    "other",
    "sad",
    "surprised",
    # Appended later, never reordered (code and bundles rely on the order above): MSP-Podcast's
    # contempt, then the EM2LDL categories (Plutchik's wheel) that have no name above.
    "contempt",
    "ecstasy",
    "serenity",
    "love",
    "admiration",
    "trust",
    "acceptance",
    "submission",
    "terror",
    "apprehension",
    "awe",
    "amazement",
    "distraction",
    "disapproval",
    "grief",
    "pensiveness",
    "remorse",
    "loathing",
    "rage",
    "annoyance",
    "aggressiveness",
    "vigilance",
    "anticipation",
    "interest",
    "optimism",
)

#: The seven classes of the bundled default model (RAVDESS calm and EmoDB boredom are left out).
DEFAULT_CLASSES: tuple[str, ...] = (
    "angry",
    "disgust",
    "fearful",
    "happy",
    "neutral",
    "sad",
    "surprised",
)

#: RAVDESS emotion field (third field of the file name).
RAVDESS: dict[str, str] = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}

#: EmoDB emotion letter (sixth character of the file name, German initials).
EMODB: dict[str, str] = {
    "W": "angry",  # Wut
    "L": "bored",  # Langeweile
    "E": "disgust",  # Ekel
    "A": "fearful",  # Angst
    "F": "happy",  # Freude
    "T": "sad",  # Trauer
    "N": "neutral",
}

#: TESS emotion word (last part of the file name; "ps" = pleasant surprise).
TESS: dict[str, str] = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "ps": "surprised",
    "sad": "sad",
}

#: SAVEE emotion prefix of the file name.
SAVEE: dict[str, str] = {
    "a": "angry",
    "d": "disgust",
    "f": "fearful",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprised",
}

#: CREMA-D emotion field (third field of the file name).
CREMAD: dict[str, str] = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fearful",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}

#: IEMOCAP categorical label in the EmoEvaluation files ("xxx" = no majority: dropped).
IEMOCAP: dict[str, str] = {
    "ang": "angry",
    "hap": "happy",
    "exc": "excited",
    "sad": "sad",
    "neu": "neutral",
    "fru": "frustrated",
    "fea": "fearful",
    "sur": "surprised",
    "dis": "disgust",
    "oth": "other",
}

#: MSP-IMPROV consensus label letter in Evaluation.txt ("X" = no agreement: dropped).
MSP_IMPROV: dict[str, str] = {
    "A": "angry",
    "H": "happy",
    "S": "sad",
    "N": "neutral",
    "O": "other",
}

#: IEMOCAP evaluator category in the ``C-E<n>:`` lines of the EmoEvaluation files ("Neutral
#: state" is the annotation tool's name for Neutral).
IEMOCAP_RATER: dict[str, str] = {
    "Anger": "angry",
    "Happiness": "happy",
    "Excited": "excited",
    "Sadness": "sad",
    "Neutral": "neutral",
    "Neutral state": "neutral",
    "Frustration": "frustrated",
    "Fear": "fearful",
    "Surprise": "surprised",
    "Disgust": "disgust",
    "Other": "other",
}

#: MSP-IMPROV rater category (second field of a rater line in Evaluation.txt).
MSP_IMPROV_RATER: dict[str, str] = {
    "Angry": "angry",
    "Happy": "happy",
    "Sad": "sad",
    "Neutral": "neutral",
    "Other": "other",
}

#: MSP-Podcast consensus class letter (``EmoClass`` of labels_consensus.csv; "X" = no agreement).
MSP_PODCAST: dict[str, str] = {
    "A": "angry",
    "C": "contempt",
    "D": "disgust",
    "F": "fearful",
    "H": "happy",
    "N": "neutral",
    "O": "other",
    "S": "sad",
    "U": "surprised",
}

#: MSP-Podcast rater's primary emotion (``EmoClass_Major``, or the second field of
#: ``EmoDetail``, in labels_detailed.csv); every "Other-<text>" is "other" too.
MSP_PODCAST_RATER: dict[str, str] = {
    "Angry": "angry",
    "Contempt": "contempt",
    "Disgust": "disgust",
    "Fear": "fearful",
    "Happy": "happy",
    "Neutral": "neutral",
    "Other": "other",
    "Sad": "sad",
    "Surprise": "surprised",
}

#: CREMA-D vote-count column of processedResults/tabulatedVotes.csv.
CREMAD_VOTES: dict[str, str] = {
    "A": "angry",
    "D": "disgust",
    "F": "fearful",
    "H": "happy",
    "N": "neutral",
    "S": "sad",
}

#: EM2LDL category column of labels/labels_distributions_Info.csv, spelt as in its header
#: (``ecstacy``, ``aggresiveness``), in the file's order (Plutchik's wheel).
EM2LDL: dict[str, str] = {
    "ecstacy": "ecstasy",
    "joy": "happy",
    "serenity": "serenity",
    "love": "love",
    "admiration": "admiration",
    "trust": "trust",
    "acceptance": "acceptance",
    "submission": "submission",
    "terror": "terror",
    "fear": "fearful",
    "apprehension": "apprehension",
    "awe": "awe",
    "amazement": "amazement",
    "surprise": "surprised",
    "distraction": "distraction",
    "disapproval": "disapproval",
    "grief": "grief",
    "sadness": "sad",
    "pensiveness": "pensiveness",
    "remorse": "remorse",
    "loathing": "loathing",
    "disgust": "disgust",
    "boredom": "bored",
    "contempt": "contempt",
    "rage": "rage",
    "anger": "angry",
    "annoyance": "annoyance",
    "aggresiveness": "aggressiveness",
    "vigilance": "vigilance",
    "anticipation": "anticipation",
    "interest": "interest",
    "optimism": "optimism",
}

#: URDU corpus folder name.
URDU: dict[str, str] = {
    "Angry": "angry",
    "Happy": "happy",
    "Neutral": "neutral",
    "Sad": "sad",
}

#: Class subsets used by the literature's protocols.
SUBSETS: dict[str, tuple[str, ...]] = {
    "iemocap4": ("angry", "happy", "neutral", "sad"),
    "msp_improv4": ("angry", "happy", "neutral", "sad"),
    "default7": DEFAULT_CLASSES,
}


def canonical(label: str) -> str:
    """Return ``label`` if it is a canonical emotion name.

    Args:
        label: A candidate name.

    Returns:
        The same name, lower-cased.

    Raises:
        ValueError: If the name is not in :data:`EMOTIONS`.
    """
    name = label.strip().lower()
    aliases = {"anger": "angry", "fear": "fearful", "sadness": "sad", "happiness": "happy",
               "surprise": "surprised", "boredom": "bored", "disgusted": "disgust"}
    name = aliases.get(name, name)
    if name not in EMOTIONS:
        raise ValueError(f"unknown emotion '{label}' (known: {', '.join(EMOTIONS)})")
    return name


def ordered(labels: Iterable[str]) -> tuple[str, ...]:
    """Return the distinct labels in canonical order (unknown names sorted after known ones)."""
    present = set(labels)
    known = [e for e in EMOTIONS if e in present]
    return tuple(known + sorted(present - set(EMOTIONS)))


def parse_classes(spec: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """Parse a class-subset spec: a :data:`SUBSETS` name, ``"a,b,c"``, a sequence, or ``None``.

    Raises:
        ValueError: On an unknown subset or emotion name.
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec in SUBSETS:
            return SUBSETS[spec]
        spec = [s for s in spec.split(",") if s.strip()]
    return ordered(canonical(s) for s in spec)
