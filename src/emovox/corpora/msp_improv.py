"""MSP-IMPROV: an acted corpus of dyadic interactions (UT Dallas, MSP lab), original release.

Layout followed (the release with ``Evaluation.txt``; audio found at any depth, so both the
``Audio/sessionN/...`` tree and copies with ``sessionN/`` directly at the root work)::

    <root>/Evaluation.txt
    <root>/Audio/session1/S01A/P/MSP-IMPROV-S01A-F01-P-FM01.wav
    ...
    <root>/Audio/session6/...

``Evalution.txt`` (a misspelling found in circulating copies) is accepted as well. The newer
re-release with ``Labels/labels_concensus.csv`` and a flat ``Audios/`` folder is *not* read;
convert it to a manifest CSV (:mod:`emovox.corpora.manifest`).

Audio names are ``MSP-IMPROV-S<nn><E>-<G><ss>-<C>-<turn>`` (``.wav`` or ``.flac``, any case):

- ``S<nn><E>``: target sentence number ``nn`` and the emotion its scenario was written to
  elicit, ``E`` in A H S N (stored as ``extra["target_emotion"]``; it is *not* the label).
- ``<G><ss>``: the speaker, gender ``F``/``M`` and session ``ss`` (01-06). Each of the six
  sessions pairs one actress and one actor, so ``F01`` is the woman of session 1; the speaker is
  ``msp_improv/F01`` and the session ``msp_improv/session1`` (matching the ``sessionN`` folder).
- ``C`` condition: ``R`` read, ``S`` improvised target sentence, ``T`` improvised other turn,
  ``P`` natural interaction between scenarios.
- ``turn`` (e.g. ``FM01``): kept verbatim as ``extra["turn"]``.

``Evaluation.txt`` has one consensus line per recording, followed by one line per rater that is
ignored::

    UTD-IMPROV-S01A-F01-P-FM01.avi; A; A:3.000000; V:2.500000; D:3.500000 ; N:4.000000;

i.e. the video name (prefix ``UTD-IMPROV`` instead of ``MSP-IMPROV``), the consensus label
(:data:`emovox.labels.MSP_IMPROV`: A angry, H happy, S sad, N neutral, O other; X = no
agreement, dropped) and the mean arousal, valence, dominance and naturalness ratings (1-5,
``NaN`` when missing). Recordings are matched to labels on the part after ``-IMPROV-``.

The paper reports 8438 recordings (620 R, 652 S, 4381 T, 2785 P). Ids are
``msp_improv/<audio stem>``; ``extra`` holds ``raw_label``, ``condition``, ``condition_name``
(read, improvised_target, improvised_other, natural), ``sentence``, ``target_emotion``, ``turn``
and, when not NaN, ``arousal``, ``valence``, ``dominance``, ``naturalness``. By default the
four classes angry, happy, neutral, sad are kept (``classes="msp_improv4"``).

Licence: academic licence agreement with the MSP lab, UT Dallas (no redistribution).
Citation: Busso C, Parthasarathy S, Burmania A, AbdelWahab M, Sadoughi N, Mower Provost E
(2017), MSP-IMPROV: An acted corpus of dyadic interactions to study emotion perception, IEEE
Trans. Affective Computing 8(1): 67-80.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

from emovox import labels
from emovox.corpora._common import (
    ClassSpec,
    Skips,
    audio_files,
    corpus_root,
    finish,
    resolve_classes,
)
from emovox.errors import ConfigError, CorpusError
from emovox.types import Utterance

NAME = "msp_improv"
LAYOUT = (
    "Evaluation.txt and Audio/sessionN/<SnnE>/<R|S|T|P>/MSP-IMPROV-<SnnE>-<Gss>-<C>-<turn>.wav "
    "(e.g. Audio/session1/S01A/P/MSP-IMPROV-S01A-F01-P-FM01.wav)"
)
LICENCE = (
    "Academic licence agreement with the MSP lab, UT Dallas (no redistribution). Busso C et al. "
    "(2017), MSP-IMPROV: An acted corpus of dyadic interactions to study emotion perception, "
    "IEEE Trans. Affective Computing 8(1): 67-80."
)

#: Recording condition letter -> name.
CONDITIONS: dict[str, str] = {
    "R": "read",
    "S": "improvised_target",
    "T": "improvised_other",
    "P": "natural",
}

_KEY = r"S\d{2}[A-Z]-[FM]\d{2}-[A-Z]-[A-Z]{1,2}\d{2,3}"
_AUDIO = re.compile(r"^MSP-IMPROV-((S\d{2})([A-Z])-([FM])(\d{2})-([A-Z])-([A-Z]{1,2}\d{2,3}))$")
_NUMBER = r"(-?\d+(?:\.\d*)?|NaN|nan)"
_CONSENSUS = re.compile(
    rf"^(?:UTD|MSP)-IMPROV-({_KEY})\.\w+\s*;\s*([A-Z])\s*;\s*A:\s*{_NUMBER}\s*;\s*"
    rf"V:\s*{_NUMBER}\s*;\s*D:\s*{_NUMBER}\s*;\s*N:\s*{_NUMBER}\s*;?"
)
_LABEL_FILES = ("evaluation.txt", "evalution.txt")


def read_evaluation(path: Path) -> dict[str, tuple[str, dict[str, float]]]:
    """Parse ``Evaluation.txt``: recording key (``S01A-F01-P-FM01``) -> (letter, ratings).

    Ratings hold ``arousal``, ``valence``, ``dominance`` and ``naturalness`` when not NaN.
    Rater lines and blank lines are ignored.
    """
    result: dict[str, tuple[str, dict[str, float]]] = {}
    text = path.read_text(encoding="utf-8", errors="replace")
    for line in text.splitlines():
        match = _CONSENSUS.match(line.strip())
        if match is None:
            continue
        key, letter, *numbers = match.groups()
        names = ("arousal", "valence", "dominance", "naturalness")
        ratings = {
            name: float(value)
            for name, value in zip(names, numbers, strict=True)
            if not math.isnan(float(value))
        }
        result[key] = (letter, ratings)
    return result


def _find_evaluation(base: Path) -> Path | None:
    for child in sorted(base.iterdir()):
        if child.is_file() and child.name.lower() in _LABEL_FILES:
            return child
    return None


def load(
    root: str | os.PathLike[str],
    *,
    classes: ClassSpec = "msp_improv4",
    conditions: Sequence[str] | None = None,
) -> list[Utterance]:
    """Scan an MSP-IMPROV copy.

    Args:
        root: Folder holding ``Evaluation.txt`` and the audio (``Audio/sessionN/...``).
        classes: Canonical classes to keep; ``"msp_improv4"`` by default, ``"all"`` or ``None``
            to keep "other" too (no-agreement ``X`` is always dropped).
        conditions: Keep only these recording conditions (letters R, S, T, P); all by default.

    Returns:
        Utterances sorted by id.

    Raises:
        CorpusError: If the root is missing, has no ``Evaluation.txt``, or no labelled
            recording has its audio.
        ConfigError: On an unknown class name or condition letter.
    """
    wanted = resolve_classes(classes)
    keep_conditions = None
    if conditions is not None:
        keep_conditions = {c.upper() for c in conditions}
        unknown = sorted(keep_conditions - set(CONDITIONS))
        if unknown:
            raise ConfigError(
                f"conditions: unknown letter(s) {','.join(unknown)} (known: R, S, T, P)"
            )
    base = corpus_root(root, NAME, LAYOUT)
    evaluation = _find_evaluation(base)
    if evaluation is None:
        raise CorpusError(f"{NAME}: no Evaluation.txt in '{base}' (expected: {LAYOUT})")
    consensus = read_evaluation(evaluation)
    if not consensus:
        raise CorpusError(
            f"{NAME}: no consensus line like 'UTD-IMPROV-S01A-F01-P-FM01.avi; A; A:...; V:...; "
            f"D:... ; N:...;' in '{evaluation}'"
        )
    skips = Skips()
    found: list[Utterance] = []
    for path in audio_files(base):
        match = _AUDIO.match(path.stem)
        if match is None:
            skips.add("name not MSP-IMPROV-SnnE-Gss-C-turn", path)
            continue
        key, sentence, target, gender, session, condition, turn = match.groups()
        if condition not in CONDITIONS or target not in labels.MSP_IMPROV:
            skips.add("unknown condition or target emotion", path)
            continue
        if keep_conditions is not None and condition not in keep_conditions:
            skips.add("condition not selected", path)
            continue
        if key not in consensus:
            skips.add("no consensus line in Evaluation.txt", path)
            continue
        letter, ratings = consensus[key]
        if letter not in labels.MSP_IMPROV:
            skips.add("no agreement (X)" if letter == "X" else "unknown label", path)
            continue
        found.append(
            Utterance(
                id=f"{NAME}/{path.stem}",
                path=str(path),
                corpus=NAME,
                speaker=f"{NAME}/{gender}{session}",
                label=labels.MSP_IMPROV[letter],
                gender="female" if gender == "F" else "male",
                session=f"{NAME}/session{int(session)}",
                extra={
                    "raw_label": letter,
                    "condition": condition,
                    "condition_name": CONDITIONS[condition],
                    "sentence": sentence,
                    "target_emotion": labels.MSP_IMPROV[target],
                    "turn": turn,
                    **ratings,
                },
            )
        )
    return finish(NAME, base, LAYOUT, found, skips, wanted)
