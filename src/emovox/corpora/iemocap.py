"""IEMOCAP: the Interactive Emotional Dyadic Motion Capture database (release 1).

Layout followed (the release from USC SAIL, ``IEMOCAP_full_release``)::

    <root>/Session1/dialog/EmoEvaluation/Ses01F_impro01.txt
    <root>/Session1/dialog/transcriptions/Ses01F_impro01.txt     (optional: what was said)
    <root>/Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav
    ...
    <root>/Session5/...

Labels come from the ``*.txt`` files directly inside ``SessionN/dialog/EmoEvaluation`` (its
``Categorical``, ``Attribute`` and ``Self-evaluation`` subfolders hold the same ratings split per
rater and are not read; hidden ``._*`` files are ignored). Each utterance is a block: one
summary line whose four fields are separated by tabs (shown here as ``<TAB>``), then one line
per rater::

    [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]
    C-E2:<TAB>Neutral;<TAB>()
    C-E3:<TAB>Neutral;<TAB>()
    C-F1:<TAB>Neutral;<TAB>(curious)
    A-E3:<TAB>val 3; act 2; dom  2;<TAB>()

The summary line gives ``[start - end]`` in seconds inside the dialog recording, the utterance
id, the majority label and the mean ``[valence, activation, dominance]`` ratings. Labels: ang
hap exc sad neu fru fea sur dis oth (:data:`emovox.labels.IEMOCAP`); ``xxx`` (no majority) and
unknown codes are dropped. The header (``% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A,
D]``), blank lines and the per-rater attribute lines (``A-...:``) are not read.

Categorical votes (``C-<rater>:`` lines): ``C-E1``, ``C-E2``, ... are the external evaluators,
``C-F1`` / ``C-M1`` the female or male actor rating their own turn. The second tab field lists
the rater's categories, each followed by ``;`` (``Frustration; Anger;`` when a rater chose
several), the third is a free comment in parentheses. Categories: Neutral (written ``Neutral
state`` by the annotation tool), Anger, Happiness, Excited, Sadness, Frustration, Fear,
Surprise, Disgust, Other (:data:`emovox.labels.IEMOCAP_RATER`, matched case-insensitively).
``extra["label_distribution"]`` is built from them with two declared choices:

- Only the external evaluators (``C-E*``) vote; self-evaluations are checked but not counted.
  This is what the release itself does: its majority label and mean attributes are computed
  over the evaluators, "except the self-evaluators", and the literature follows it.
- Each evaluator has one vote, split evenly over the k distinct categories it chose (1/k each),
  so an evaluator who ticks several boxes weighs as much as one who ticks one.

With ``merge_excited`` (the default) Excited votes count for happy, like the label.
``extra["raters"]`` is the number of evaluators counted. An utterance without ``C-E`` line gets
no distribution. A ``C-`` line that does not parse, names an unknown category or comes before
any summary line raises a one-line :class:`~emovox.errors.CorpusError` naming the file and line.
The rater-line format follows excerpts of the release and public parsers of it (not checked
against a copy here).

Valence, arousal (the "activation" rating) and dominance are the summary line's means, on the
1-5 rating scale (``extra["vad_scale"] == [1.0, 5.0]``); a mean outside it is an error naming
the file and line.

Audio is ``SessionN/sentences/wav/<dialog>/<utterance>.wav`` (``.flac`` also accepted, any
case). Utterances whose audio is missing are skipped and counted.

What was said comes from the dialog's transcription file,
``SessionN/dialog/transcriptions/<dialog>.txt``, one line per turn::

    Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.

(turn id, ``[start-end]`` in seconds, a colon, the words). ``extra["transcript"]`` is the
words as written there, stripped, markup such as ``[LAUGHTER]`` kept. Lines that do not have
this form are ignored; a turn without a line (or with no words), or a session without the
folder, has no transcript. Hidden ``._*`` files are ignored.

The speaker comes from the *utterance* id, not the dialog id: in ``Ses01F_impro01_M003`` the
dialog ``Ses01F_impro01`` was led by the female actor, but this turn is spoken by the male
actor of session 1, so the speaker is ``iemocap/Ses01M`` and the gender ``male`` (parsing the
dialog id instead mislabels about half the turns). Sessions are ``iemocap/Session1`` ...
``iemocap/Session5``; each holds one female and one male actor (10 speakers).

Ids are ``iemocap/<utterance id>``. ``extra`` holds ``raw_label``, ``valence``, ``arousal``,
``dominance``, ``vad_scale``, ``dialog``, ``improvised`` (bool), ``dialog_start`` /
``dialog_end`` (seconds inside the dialog; the sentence wav already starts at the utterance, so
``Utterance.start`` stays 0), ``transcript`` when the transcription has the turn and, when
evaluators voted, ``label_distribution`` and ``raters``.

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
from dataclasses import dataclass, field
from pathlib import Path

from emovox import labels
from emovox.corpora._common import (
    TRANSCRIPT,
    ClassSpec,
    Skips,
    audio_files,
    clean_transcript,
    corpus_root,
    finish,
    read_text,
    resolve_classes,
)
from emovox.errors import CorpusError
from emovox.targets import check_vad, distribution_from_votes
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

#: The scale of IEMOCAP's valence / activation / dominance ratings.
VAD_SCALE: tuple[float, float] = (1.0, 5.0)

_SESSION = re.compile(r"^Session(\d+)$")
_SUMMARY = re.compile(
    r"^\[\s*(\d+(?:\.\d*)?)\s*-\s*(\d+(?:\.\d*)?)\s*\]\s+(\S+)\s+(\S+)\s+"
    r"\[\s*([-+\d.eE]+)\s*,\s*([-+\d.eE]+)\s*,\s*([-+\d.eE]+)\s*\]"
)
# C-E2:<TAB>Neutral;<TAB>(comment): rater kind (E evaluator, F/M self-evaluation), number, rest.
_RATER = re.compile(r"^C-([A-Za-z])(\d+)\s*:(.*)$")
# Ses01F_impro01_M003, Ses05M_script01_1b_F012: session, dialog lead, dialog, speaker, turn.
_UTTERANCE = re.compile(r"^Ses(\d{2})([FM])_(\S+)_([FM])(\d{3})$")
# Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.
_TRANSCRIPTION = re.compile(r"^(\S+)\s*\[\s*[\d.]+\s*-\s*[\d.]+\s*\]\s*:(.*)$")
_RATER_CATEGORIES = {name.lower(): emotion for name, emotion in labels.IEMOCAP_RATER.items()}


@dataclass
class _Block:
    """One utterance of an EmoEvaluation file: its summary line and its evaluators' votes."""

    line: int
    fields: tuple[str, ...]
    votes: dict[str, float] = field(default_factory=dict)
    raters: int = 0


def _categories(rest: str, where: str) -> list[str]:
    """The canonical categories of one ``C-`` line's category field (the text after ``:``)."""
    text = rest.strip()
    # Categories come before the tab-separated comment "(...)"; without a tab, drop a trailing
    # parenthesised comment.
    part = text.split("\t", 1)[0] if "\t" in text else re.sub(r"\(.*\)\s*$", "", text)
    names = [n.strip() for n in part.split(";") if n.strip()]
    if not names:
        raise CorpusError(f"{where}: rater line without a category (expected e.g. "
                          f"'C-E2:<TAB>Neutral;<TAB>()')")
    found: list[str] = []
    for name in names:
        emotion = _RATER_CATEGORIES.get(name.lower())
        if emotion is None:
            raise CorpusError(f"{where}: unknown category '{name}' (known: "
                              f"{', '.join(labels.IEMOCAP_RATER)})")
        if emotion not in found:
            found.append(emotion)
    return found


def read_evaluation(path: Path, merge_excited: bool) -> list[_Block]:
    """Parse one EmoEvaluation file into utterance blocks (summary line + evaluator votes).

    Raises:
        CorpusError: A ``C-`` line that does not parse, names an unknown category or comes
            before any summary line (one line, ``<file>:<line>: ...``).
    """
    text = path.read_text(encoding="utf-8", errors="replace")
    blocks: list[_Block] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        summary = _SUMMARY.match(line)
        if summary is not None:
            blocks.append(_Block(number, summary.groups()))
            continue
        if not line.startswith("C-"):
            continue
        where = f"{path}:{number}"
        rater = _RATER.match(line)
        if rater is None:
            raise CorpusError(f"{where}: rater line is not 'C-<rater>:<TAB><categories>;"
                              f"<TAB>(<comment>)': '{line[:60]}'")
        if not blocks:
            raise CorpusError(f"{where}: rater line before any utterance summary line")
        kind, _, rest = rater.groups()
        if kind.upper() not in "EFM":
            raise CorpusError(f"{where}: unknown rater 'C-{kind}' (expected C-E<n> evaluators "
                              f"or C-F<n>/C-M<n> self-evaluations)")
        categories = _categories(rest, where)
        if kind.upper() != "E":
            continue  # a self-evaluation: checked, not counted
        block = blocks[-1]
        block.raters += 1
        for emotion in categories:
            if merge_excited and emotion == "excited":
                emotion = "happy"
            block.votes[emotion] = block.votes.get(emotion, 0.0) + 1.0 / len(categories)
    return blocks


def read_transcriptions(folder: Path) -> dict[str, str]:
    """Parse a session's ``dialog/transcriptions/*.txt``: turn id -> what was said.

    Lines that are not ``<turn> [<start>-<end>]: <words>`` are ignored, and so are turns
    without words; a missing folder gives an empty dict.

    Raises:
        CorpusError: If a transcription file cannot be read.
    """
    said: dict[str, str] = {}
    if not folder.is_dir():
        return said
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() != ".txt" or path.name.startswith("."):
            continue
        for line in read_text(path, NAME).splitlines():
            match = _TRANSCRIPTION.match(line.strip())
            if match is None:
                continue
            words = clean_transcript(match.group(2))
            if words is not None:
                said.setdefault(match.group(1), words)
    return said


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
        merge_excited: Map ``exc`` to ``happy`` (the usual 4-class protocol), in the label and
            in the evaluators' votes; the raw label stays ``exc``.
        improvised_only: Keep only the improvised dialogs (``*_impro*``), not the scripted ones.

    Returns:
        Utterances sorted by id.

    Raises:
        CorpusError: If the root is missing, has no ``SessionN`` folder or label file, no
            labelled utterance has its audio, a rater line is malformed or a mean rating lies
            outside 1-5.
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
        transcripts = read_transcriptions(session_dir / "dialog" / "transcriptions")
        wav_dir = session_dir / "sentences" / "wav"
        audio: dict[str, Path] = {}
        if wav_dir.is_dir():
            for path in audio_files(wav_dir):
                audio.setdefault(path.stem, path)
        for label_file in files:
            for block in read_evaluation(label_file, merge_excited):
                start, end, utt_id, code, valence, activation, dominance = block.fields
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
                where = f"{label_file}:{block.line}"
                try:
                    vad = {
                        "valence": float(valence),
                        "arousal": float(activation),
                        "dominance": float(dominance),
                    }
                except ValueError:
                    raise CorpusError(f"{where}: the mean ratings [{valence}, {activation}, "
                                      f"{dominance}] are not numbers") from None
                check_vad(vad, VAD_SCALE, where)
                extra: dict[str, object] = {"raw_label": code, **vad,
                                            "vad_scale": list(VAD_SCALE)}
                extra.update(dialog=dialog, improvised=improvised, dialog_start=float(start),
                             dialog_end=float(end))
                if utt_id in transcripts:
                    extra[TRANSCRIPT] = transcripts[utt_id]
                if block.raters:
                    extra["label_distribution"] = distribution_from_votes(block.votes, where)
                    extra["raters"] = block.raters
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
                        extra=extra,
                    )
                )
    if label_files == 0:
        raise CorpusError(
            f"{NAME}: no label file SessionN/dialog/EmoEvaluation/*.txt under '{base}' "
            f"(expected: {LAYOUT})"
        )
    return finish(NAME, base, LAYOUT, found, skips, wanted)
