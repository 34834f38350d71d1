"""Corpus loaders: one module per corpus, each a ``load(root, ...) -> list[Utterance]``.

Every loader scans a user's local copy in the corpus's *original* layout and file names (WAV or
FLAC, extension case ignored), maps the corpus's own labels to the canonical names of
:mod:`emovox.labels` and keeps the raw code in ``Utterance.extra["raw_label"]``. Loaders that
can know what was said (the fixed sentences of RAVDESS, EmoDB, CREMA-D and TESS, the
transcription files of IEMOCAP and MSP-Podcast, a manifest's ``transcript`` column) put it in
``Utterance.extra["transcript"]``; it is absent when unknown (SAVEE, MSP-IMPROV, EM2LDL, URDU).
Ids, speakers and sessions are namespaced by corpus (``ravdess/12``). Files that do not follow
the naming are skipped and counted in a log line (logger ``emovox.corpora``); a root that is
missing or holds nothing usable raises a one-line :class:`~emovox.errors.CorpusError` that
names the expected layout.

:data:`CORPORA` lists them all; :func:`load_corpus` loads one by name::

    >>> from emovox.corpora import CORPORA, load_corpus
    >>> sorted(CORPORA)[:3]
    ['cremad', 'em2ldl', 'emodb']
    >>> utts = load_corpus("ravdess", "data/ravdess", classes="default7")  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emovox.corpora import (
    cremad,
    em2ldl,
    emodb,
    iemocap,
    manifest,
    msp_improv,
    msp_podcast,
    ravdess,
    savee,
    tess,
    urdu,
)
from emovox.errors import ConfigError, CorpusError
from emovox.labels import SUBSETS
from emovox.types import Utterance

__all__ = ["CORPORA", "CorpusInfo", "load_corpus"]


@dataclass(frozen=True)
class CorpusInfo:
    """What emovox knows about one corpus.

    Attributes:
        name: Registry key and namespace of ids, e.g. ``"ravdess"``.
        title: Full name of the corpus.
        load: The loader, ``load(root, *, classes=..., ...) -> list[Utterance]``.
        layout: The expected layout under the root, one line (shown by ``emovox corpora`` and
            in errors).
        licence: Licence and citation, one line.
        protocol: Name of the literature's evaluation protocol (see :mod:`emovox.folds`).
        default_classes: Classes the loader keeps by default, or ``None`` for all.
    """

    name: str
    title: str
    load: Callable[..., list[Utterance]]
    layout: str
    licence: str
    protocol: str
    default_classes: tuple[str, ...] | None = None


#: Every corpus emovox can load, by name.
CORPORA: dict[str, CorpusInfo] = {
    info.name: info
    for info in (
        CorpusInfo(
            name="ravdess",
            title="RAVDESS (speech): Ryerson Audio-Visual Database of Emotional Speech and Song",
            load=ravdess.load,
            layout=ravdess.LAYOUT,
            licence=ravdess.LICENCE,
            protocol="ravdess6",
        ),
        CorpusInfo(
            name="emodb",
            title="EmoDB: Berlin Database of Emotional Speech",
            load=emodb.load,
            layout=emodb.LAYOUT,
            licence=emodb.LICENCE,
            protocol="emodb_loso",
        ),
        CorpusInfo(
            name="tess",
            title="TESS: Toronto Emotional Speech Set",
            load=tess.load,
            layout=tess.LAYOUT,
            licence=tess.LICENCE,
            protocol="tess_loso",
        ),
        CorpusInfo(
            name="savee",
            title="SAVEE: Surrey Audio-Visual Expressed Emotion (audio)",
            load=savee.load,
            layout=savee.LAYOUT,
            licence=savee.LICENCE,
            protocol="savee_loso",
        ),
        CorpusInfo(
            name="cremad",
            title="CREMA-D: Crowd-sourced Emotional Multimodal Actors Dataset (audio)",
            load=cremad.load,
            layout=cremad.LAYOUT,
            licence=cremad.LICENCE,
            protocol="cremad_kfold",
        ),
        CorpusInfo(
            name="iemocap",
            title="IEMOCAP: Interactive Emotional Dyadic Motion Capture database",
            load=iemocap.load,
            layout=iemocap.LAYOUT,
            licence=iemocap.LICENCE,
            protocol="iemocap_loso",
            default_classes=SUBSETS["iemocap4"],
        ),
        CorpusInfo(
            name="msp_improv",
            title="MSP-IMPROV: acted corpus of dyadic interactions",
            load=msp_improv.load,
            layout=msp_improv.LAYOUT,
            licence=msp_improv.LICENCE,
            protocol="msp_improv_loso",
            default_classes=SUBSETS["msp_improv4"],
        ),
        CorpusInfo(
            name="msp_podcast",
            title="MSP-Podcast: naturalistic emotional speech from podcasts",
            load=msp_podcast.load,
            layout=msp_podcast.LAYOUT,
            licence=msp_podcast.LICENCE,
            # The official Split_Set partitions (extra["split"]) are the corpus's protocol;
            # until emovox.folds has one for them, speaker k-fold.
            protocol="speaker_kfold",
        ),
        CorpusInfo(
            name="em2ldl",
            title="EM2LDL: multilingual speech for mixed emotions (32-category distributions)",
            load=em2ldl.load,
            layout=em2ldl.LAYOUT,
            licence=em2ldl.LICENCE,
            # The official speaker-independent split (extra["split"]) is the corpus's protocol;
            # until emovox.folds has one for it, speaker k-fold.
            protocol="speaker_kfold",
        ),
        CorpusInfo(
            name="urdu",
            title="URDU: emotional Urdu speech from talk shows (Latif et al. 2018)",
            load=urdu.load,
            layout=urdu.LAYOUT,
            licence=urdu.LICENCE,
            protocol="speaker_kfold",
        ),
        CorpusInfo(
            name="manifest",
            title="Your own corpus, described by a CSV manifest",
            load=manifest.load,
            layout=manifest.LAYOUT,
            licence=manifest.LICENCE,
            protocol="speaker_kfold",
        ),
    )
}


def load_corpus(name: str, root: str | os.PathLike[str], **options: Any) -> list[Utterance]:
    """Load a corpus by name.

    Args:
        name: A key of :data:`CORPORA`.
        root: The corpus root (for ``"manifest"``: the CSV file or its folder).
        **options: Keyword options of that corpus's loader, e.g. ``classes="iemocap4"``.

    Returns:
        Utterances sorted by id.

    Raises:
        CorpusError: On an unknown corpus name (the message lists the known ones), or any
            error of the loader.
        ConfigError: On an option the loader does not take.
    """
    info = CORPORA.get(name)
    if info is None:
        raise CorpusError(f"unknown corpus '{name}' (known: {', '.join(sorted(CORPORA))})")
    accepted = [
        p.name
        for p in inspect.signature(info.load).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    for option in options:
        if option not in accepted:
            raise ConfigError(
                f"corpus {name}: unknown option '{option}' (known: {', '.join(accepted)})"
            )
    return info.load(root, **options)
