"""EmoDB: the Berlin Database of Emotional Speech.

Layout followed (the original release from TU Berlin)::

    <root>/wav/03a01Fa.wav
    <root>/erkennung.txt        (optional; per-file listening-test results, Latin-1)

Files directly in ``root`` are accepted too (copies that keep only the wav folder); any depth
below ``root`` is scanned. Extensions ``.wav`` and ``.flac`` (any case).

File names are ``SSTTTEV`` (7 characters):

- ``SS`` speaker: 03 08 09 10 11 12 13 14 15 16; female 08 09 13 14 16, the rest male.
- ``TTT`` text code, ``a01`` ... ``b10``: one of the ten German sentences of the corpus's
  documentation (:data:`SENTENCES`; ``a01`` "Der Lappen liegt auf dem Eisschrank.").
- ``E`` emotion letter, German initials: W Wut (anger), L Langeweile (boredom), E Ekel
  (disgust), A Angst (fear), F Freude (happiness), T Trauer (sadness), N neutral
  (:data:`emovox.labels.EMODB`).
- ``V`` version letter (``a``, ``b``, ... for repeated takes).

The full release has 535 files. ``erkennung.txt`` is a tab/space separated table with a header
``Nr. Satz erkannt natuerlich``: row number, file name (``03a01Fa.wav``), the share of 20
listeners who recognised the intended emotion and the share who judged it natural, in percent
with a decimal comma (``65,00``). When it parses, ``extra`` gets ``recognition_rate`` and
``naturalness`` (percent, floats); when it is absent or unreadable it is ignored, and a rate
outside 0-100 raises a one-line :class:`~emovox.errors.CorpusError` naming the file and line.

The recognition rate becomes a soft target, ``extra["label_distribution"]``
(:func:`emovox.targets.spread_rate`): the rate for the intended emotion and, a declared choice,
the rest spread evenly over the six other emotions of the test's answer set (the corpus's seven:
anger, boredom, disgust, fear, happiness, sadness, neutral). The file publishes only the share
of listeners who recognised the intended emotion, not what the others chose instead, so the
even spread is an assumption, not data. Files without a parsed rate get no distribution.

Ids are ``emodb/<stem>``, speakers ``emodb/<SS>``; ``extra`` holds ``raw_label`` (the letter),
``text`` (the text code), ``transcript`` (that sentence, spelt as documented, e.g.
``"Der Lappen liegt auf dem Eisschrank."``; absent for a code outside the ten), ``version``
and, with the listening test, ``recognition_rate``, ``naturalness`` and
``label_distribution``. The release ships no sentence file (``erklaerung.txt`` explains the
listening test only), so the sentences are those of the corpus's documentation.

Licence: free for research use. Citation: Burkhardt F, Paeschke A, Rolfes M, Sendlmeier W,
Weiss B (2005), A database of German emotional speech, Proc. Interspeech 2005, 1517-1520.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

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
from emovox.errors import CorpusError
from emovox.targets import check_distribution, spread_rate
from emovox.types import Utterance

NAME = "emodb"
LAYOUT = "wav/SSTTTEV.wav or .flac (e.g. wav/03a01Fa.wav), optional erkennung.txt beside wav/"
LICENCE = (
    "Free for research use. Burkhardt F, Paeschke A, Rolfes M, Sendlmeier W, Weiss B (2005), "
    "A database of German emotional speech, Interspeech 2005."
)

#: Speaker code -> gender (Burkhardt et al. 2005, table of speakers).
SPEAKERS: dict[str, str] = {
    "03": "male",
    "08": "female",
    "09": "female",
    "10": "male",
    "11": "male",
    "12": "male",
    "13": "female",
    "14": "female",
    "15": "male",
    "16": "female",
}

#: Text code -> the sentence spoken (the corpus's documentation, Burkhardt et al. 2005).
SENTENCES: dict[str, str] = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}

#: The listening test's answer set: the corpus's seven emotions.
ANSWERS: tuple[str, ...] = tuple(labels.EMODB.values())

_FIELDS = re.compile(r"^(\d{2})([ab]\d{2})([A-Z])([a-z])$")


def read_listening_test(path: Path) -> dict[str, tuple[float, float, int]]:
    """Parse ``erkennung.txt``: stem -> (recognition rate %, naturalness %, line number).

    Lines that do not parse (the header, blank lines) are ignored; an unreadable file gives an
    empty dict, so the listening-test data stays optional.

    Raises:
        CorpusError: A rate outside 0-100 (one line, ``<file>:<line>: ...``).
    """
    try:
        text = path.read_text(encoding="latin-1")
    except OSError:
        return {}
    rates: dict[str, tuple[float, float, int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        # Columns are separated by tabs padded with no-break spaces (U+00A0); str.split()
        # treats both as whitespace.
        fields = line.split()
        if len(fields) < 4:
            continue
        stem = Path(fields[1]).stem
        try:
            recognised = float(fields[2].replace(",", "."))
            natural = float(fields[3].replace(",", "."))
        except ValueError:
            continue
        for name, value in (("recognition rate", recognised), ("naturalness", natural)):
            if not 0.0 <= value <= 100.0:
                raise CorpusError(f"{path}:{number}: {name} {value:g} % is outside 0-100")
        rates[stem] = (recognised, natural, number)
    return rates


def _find_listening_test(base: Path) -> Path | None:
    candidates = [base / "erkennung.txt"]
    if base.name.lower() == "wav":
        candidates.append(base.parent / "erkennung.txt")
    return next((c for c in candidates if c.is_file()), None)


def load(root: str | os.PathLike[str], *, classes: ClassSpec = None) -> list[Utterance]:
    """Scan an EmoDB copy.

    Args:
        root: Folder holding ``wav/`` (or the wav files themselves).
        classes: Keep only these canonical classes (names, a subset name, ``"all"``/``None``).

    Returns:
        Utterances sorted by id.

    Raises:
        CorpusError: If the root is missing or holds no EmoDB file, or ``erkennung.txt`` gives
            a rate outside 0-100.
        ConfigError: On an unknown class name.
    """
    wanted = resolve_classes(classes)
    base = corpus_root(root, NAME, LAYOUT)
    listening = _find_listening_test(base)
    rates = read_listening_test(listening) if listening is not None else {}
    skips = Skips()
    found: list[Utterance] = []
    for path in audio_files(base):
        match = _FIELDS.match(path.stem)
        if match is None:
            skips.add("name not SSTTTEV", path)
            continue
        speaker, text, emotion, version = match.groups()
        if speaker not in SPEAKERS or emotion not in labels.EMODB:
            skips.add("unknown speaker or emotion code", path)
            continue
        extra: dict[str, object] = {"raw_label": emotion, "text": text, "version": version}
        if text in SENTENCES:
            extra[TRANSCRIPT] = SENTENCES[text]
        label = labels.EMODB[emotion]
        if path.stem in rates:
            recognised, natural, number = rates[path.stem]
            extra["recognition_rate"], extra["naturalness"] = recognised, natural
            extra["label_distribution"] = check_distribution(
                spread_rate(label, recognised / 100.0, ANSWERS), f"{listening}:{number}"
            )
        found.append(
            Utterance(
                id=f"{NAME}/{path.stem}",
                path=str(path),
                corpus=NAME,
                speaker=f"{NAME}/{speaker}",
                label=label,
                gender=SPEAKERS[speaker],
                extra=extra,
            )
        )
    return finish(NAME, base, LAYOUT, found, skips, wanted)
