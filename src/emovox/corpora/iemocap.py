"""IEMOCAP: the Interactive Emotional Dyadic Motion Capture database (release 1).

Layout followed (the release from USC SAIL, ``IEMOCAP_full_release``)::

    <root>/Session1/dialog/EmoEvaluation/Ses01F_impro01.txt
    <root>/Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav
    ...
    <root>/Session5/...

Labels come from the ``*.txt`` files directly inside ``SessionN/dialog/EmoEvaluation`` (its
``Categorical``, ``Attribute`` and ``Self-evaluation`` subfolders hold per-rater files and are
not read; hidden ``._*`` files are ignored). Each utterance has one summary line whose four
fields are separated by tabs (shown here as ``<TAB>``)::

    [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]

i.e. ``[start - end]`` in seconds inside the dialog recording, the utterance id, the majority
label and the mean ``[valence, activation, dominance]`` ratings (1-5). Every other line (header
``% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]``, per-rater ``C-E2:`` / ``A-E3:`` lines,
blank lines) is ignored. Labels: ang hap exc sad neu fru fea sur dis oth
(:data:`emovox.labels.IEMOCAP`); ``xxx`` (no majority) and unknown codes are dropped.

Audio is ``SessionN/sentences/wav/<dialog>/<utterance>.wav`` (``.flac`` also accepted, any
case). Utterances whose audio is missing are skipped and counted.

The speaker comes from the *utterance* id, not the dialog id: in ``Ses01F_impro01_M003`` the
dialog ``Ses01F_impro01`` was led by the female actor, but this turn is spoken by the male
actor of session 1, so the speaker is ``iemocap/Ses01M`` and the gender ``male`` (parsing the
dialog id instead mislabels about half the turns). Sessions are ``iemocap/Session1`` ...
``iemocap/Session5``; each holds one female and one male actor (10 speakers).

Ids are ``iemocap/<utterance id>``. ``extra`` holds ``raw_label``, ``valence``, ``arousal``
(the "activation" rating), ``dominance``, ``dialog``, ``improvised`` (bool), and
``dialog_start`` / ``dialog_end`` (seconds inside the dialog; the sentence wav already starts
at the utterance, so ``Utterance.start`` stays 0).

By default the literature's four classes are kept (``classes="iemocap4"``: angry, happy,
neutral, sad) with excited merged into happy (``merge_excited=True``), giving 5531 utterances.

Licence: released under a licence agreement with USC SAIL (research use, no redistribution).
Citation: Busso C, Bulut M, Lee CC, Kazemzadeh A, Mower E, Kim S, Chang JN, Lee S, Narayanan SS
(2008), IEMOCAP: Interactive emotional dyadic motion capture database, Language Resources and
Evaluation 42(4): 335-359.
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
    resolve_classes,
)
from emovox.errors import CorpusError
from emovox.types import Utterance

NAME = "iemocap"
LAYOUT = (
    "Session1..Session5/ with dialog/EmoEvaluation/<dialog>.txt and "
    "sentences/wav/<dialog>/<utterance>.wav (e.g. Session1/sentences/wav/Ses01F_impro01/"
    "Ses01F_impro01_F000.wav)"
)
LICENCE = (
    "Licence agreement with USC SAIL (research use, no redistribution). Busso C et al. (2008), "
    "IEMOCAP: Interactive emotional dyadic motion capture database, Language Resources and "
    "Evaluation 42(4): 335-359."
)

_SESSION = re.compile(r"^Session(\d+)$")
_SUMMARY = re.compile(
    r"^\[\s*(\d+(?:\.\d*)?)\s*-\s*(\d+(?:\.\d*)?)\s*\]\s+(\S+)\s+(\S+)\s+"
    r"\[\s*([-+\d.eE]+)\s*,\s*([-+\d.eE]+)\s*,\s*([-+\d.eE]+)\s*\]"
)
# Ses01F_impro01_M003, Ses05M_script01_1b_F012: session, dialog lead, dialog, speaker, turn.
_UTTERANCE = re.compile(r"^Ses(\d{2})([FM])_(\S+)_([FM])(\d{3})$")


def _sessions(base: Path) -> list[tuple[str, Path]]:
    found = []
    for child in sorted(base.iterdir()):
        if child.is_dir() and _SESSION.match(child.name):
            found.append((child.name, child))
    return found


def load(
    root: str | os.PathLike[str],
    *,
    classes: ClassSpec = "iemocap4",
    merge_excited: bool = True,
    improvised_only: bool = False,
) -> list[Utterance]:
    """Scan an IEMOCAP copy.

    Args:
        root: Folder holding ``Session1`` ... ``Session5``.
        classes: Canonical classes to keep; ``"iemocap4"`` by default, ``"all"`` or ``None`` to
            keep every label (``xxx`` is always dropped).
        merge_excited: Map ``exc`` to ``happy`` (the usual 4-class protocol); the raw label
            stays ``exc``.
        improvised_only: Keep only the improvised dialogs (``*_impro*``), not the scripted ones.

    Returns:
        Utterances sorted by id.

    Raises:
        CorpusError: If the root is missing, has no ``SessionN`` folder or label file, or no
            labelled utterance has its audio.
        ConfigError: On an unknown class name.
    """
    wanted = resolve_classes(classes)
    base = corpus_root(root, NAME, LAYOUT)
    sessions = _sessions(base)
    if not sessions:
        raise CorpusError(f"{NAME}: no SessionN folder under '{base}' (expected: {LAYOUT})")
    skips = Skips()
    found: list[Utterance] = []
    label_files = 0
    for session_name, session_dir in sessions:
        evaluation = session_dir / "dialog" / "EmoEvaluation"
        files = (
            sorted(
                p
                for p in evaluation.iterdir()
                if p.is_file() and p.suffix.lower() == ".txt" and not p.name.startswith(".")
            )
            if evaluation.is_dir()
            else []
        )
        label_files += len(files)
        wav_dir = session_dir / "sentences" / "wav"
        audio: dict[str, Path] = {}
        if wav_dir.is_dir():
            for path in audio_files(wav_dir):
                audio.setdefault(path.stem, path)
        for label_file in files:
            text = label_file.read_text(encoding="utf-8", errors="replace")
            for line in text.splitlines():
                match = _SUMMARY.match(line.strip())
                if match is None:
                    continue
                start, end, utt_id, code, valence, activation, dominance = match.groups()
                utt = _UTTERANCE.match(utt_id)
                if utt is None:
                    skips.add("utterance id not SesNN[FM]_<dialog>_[FM]NNN", utt_id)
                    continue
                if code not in labels.IEMOCAP:
                    reason = "no majority label (xxx)" if code == "xxx" else "unknown label"
                    skips.add(reason, utt_id)
                    continue
                dialog = utt_id.rsplit("_", 1)[0]
                improvised = "_impro" in dialog
                if improvised_only and not improvised:
                    skips.add("scripted (improvised_only)", utt_id)
                    continue
                wav = audio.get(utt_id)
                if wav is None:
                    skips.add("missing audio", utt_id)
                    continue
                number, speaker_gender = utt.group(1), utt.group(4)
                label = labels.IEMOCAP[code]
                if merge_excited and code == "exc":
                    label = "happy"
                found.append(
                    Utterance(
                        id=f"{NAME}/{utt_id}",
                        path=str(wav),
                        corpus=NAME,
                        speaker=f"{NAME}/Ses{number}{speaker_gender}",
                        label=label,
                        gender="female" if speaker_gender == "F" else "male",
                        session=f"{NAME}/{session_name}",
                        extra={
                            "raw_label": code,
                            "valence": float(valence),
                            "arousal": float(activation),
                            "dominance": float(dominance),
                            "dialog": dialog,
                            "improvised": improvised,
                            "dialog_start": float(start),
                            "dialog_end": float(end),
                        },
                    )
                )
    if label_files == 0:
        raise CorpusError(
            f"{NAME}: no label file SessionN/dialog/EmoEvaluation/*.txt under '{base}' "
            f"(expected: {LAYOUT})"
        )
    return finish(NAME, base, LAYOUT, found, skips, wanted)
