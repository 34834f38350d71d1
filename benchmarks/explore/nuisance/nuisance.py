"""Exploration (#13): the default recipe's logistic regression with and without a nuisance
projection (``classic.nuisance``), on the pooled statistics of cached features.

Two steps, so the slow one runs once:

``pool``: every training version the default recipe uses (clean, speeds 0.9 / 1.1, the four
multi-condition copies) and every recording heard through the telephone channel, pooled as the
head reads them, from a feature cache the default recipe filled (``--cache``; missing features
are extracted), into ``--work/pooled.npz`` (not committed: derived from the corpora).

``eval``: for each setting (``none``, or ``SOURCES:DIMS`` such as ``conditions+speeds:100``;
rows of a recipe that cuts the encoder, ``frontend.depth = K``, are named ``SETTING@depthK``
and read the first ``K + 1`` hidden states of ``pooled.npz``; with ``classic.prior`` set, a
row's name ends in ``@<prior>``),
the head fitted by :func:`emovox.train.logreg_head`, as training fits it (standardised,
layer-weighted statistics of every version; C and class weights of the recipe; the projection
from :func:`emovox.train.nuisance_basis`), then scored: leave one corpus out (clean, each file
alone, the 6 shared classes) with each class's largest excess share of the answers, and
in-corpus (RAVDESS 6 folds, EmoDB leave one speaker out) on clean and telephone test audio.
No temperature is fitted (it never changes the answer). Writes ``results.json`` here.

Usage: ``python nuisance.py pool --data DIR --cache DIR --work DIR``;
``python nuisance.py eval --work DIR none conditions+speeds:100 ...``;
``python nuisance.py table`` prints the rows of ``results.json`` as a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO / "src"))

from emovox.conditions import telephone  # noqa: E402
from emovox.config import frontend_options, load_recipe  # noqa: E402
from emovox.corpora import load_corpus  # noqa: E402
from emovox.dataset import FeatureBank  # noqa: E402
from emovox.features import build_frontend  # noqa: E402
from emovox.files import provenance, write_text  # noqa: E402
from emovox.folds import make_folds  # noqa: E402
from emovox.ops import pool_stats  # noqa: E402
from emovox.train import _versions, logreg_head  # noqa: E402

CORPORA = ("ravdess", "emodb")
PROTOCOL = {"ravdess": "ravdess6", "emodb": "emodb_loso"}
#: Hidden states ``pooled.npz`` holds per recording: the whole Whisper tiny.en encoder.
LAYERS = 5
SHARED = ("angry", "disgust", "fearful", "happy", "neutral", "sad")


def utterances(data: Path, corpus: str) -> list:
    """A corpus's recordings of the default classes, in id order."""
    return sorted(load_corpus(corpus, data / corpus, classes="default7"), key=lambda u: u.id)


class TelephoneBank(FeatureBank):
    """Every recording heard through the telephone channel (its clean version is the call)."""

    def wave(self, utt, speed=1.0):  # noqa: ANN001
        key = (utt.id, 1.0)
        if key not in self._waves:
            self._waves[key] = telephone(super().wave(utt, 1.0), self.frontend.sample_rate)
        return super().wave(utt, speed)


def pool(args: argparse.Namespace) -> None:
    """Pool every version and the telephone copies into ``--work/pooled.npz``."""
    config = load_recipe("default")
    # the whole encoder, whatever the recipe's depth: eval reads the states a recipe needs
    frontend = build_frontend({k: v for k, v in frontend_options(config).items()
                               if k != "depth"})
    out: dict[str, np.ndarray] = {}
    for corpus in CORPORA:
        utts = utterances(args.data, corpus)
        bank = FeatureBank(frontend, utts, args.cache, config.data.cache_dtype, True)
        versions = _versions(config, utts, bank, config.classic.speeds(config.augment))
        out[f"{corpus}/versions"] = np.array([str(v) for v in versions])
        for v in versions:
            out[f"{corpus}/{v}"] = np.stack([pool_stats(bank.get(u, v), "all") for u in utts])
        del bank
        phone = TelephoneBank(frontend, utts, args.telephone_cache or args.cache / "telephone",
                              config.data.cache_dtype, True)
        out[f"{corpus}/telephone"] = np.stack([pool_stats(phone.get(u), "all") for u in utts])
        del phone
    args.work.mkdir(parents=True, exist_ok=True)
    np.savez(args.work / "pooled.npz", **{k: v.astype(np.float32) if v.dtype.kind == "f" else v
                                          for k, v in out.items()})


def version_of(name: str) -> float | str:
    """A version's name as the bank names it (speeds are floats)."""
    try:
        return float(name)
    except ValueError:
        return name


class Pooled:
    """The pooled statistics and the recordings they belong to."""

    def __init__(self, path: Path, data: Path, states: int | None = None) -> None:
        self.npz = np.load(path)
        self.utts = {c: utterances(data, c) for c in CORPORA}
        self.versions = {c: [version_of(v) for v in self.npz[f"{c}/versions"]] for c in CORPORA}
        self.states = states

    def x(self, corpus: str, version: float | str) -> np.ndarray:
        """Every recording's statistics of one version ``[N, F]`` (with ``states``: the first
        that many hidden states' only, what an encoder cut after ``states - 1`` layers gives:
        the statistics are concatenated state by state)."""
        x = self.npz[f"{corpus}/{version}"].astype(np.float64)
        if self.states is not None:
            x = x[:, : self.states * x.shape[1] // LAYERS]
        return x


def training_rows(pooled: Pooled, corpus: str, index: np.ndarray, classes: list[str],
                  features: Callable[[str, Any], np.ndarray] | None = None):  # noqa: ANN201
    """Every training version of the chosen recordings: ``(x, y, rows)``; ``features(corpus,
    version)`` gives each version's rows (default: the pooled statistics)."""
    features = features or pooled.x
    utts = [pooled.utts[corpus][i] for i in index]
    versions = pooled.versions[corpus]
    x = np.concatenate([features(corpus, v)[index] for v in versions])
    y = np.tile([classes.index(str(u.label)) for u in utts], len(versions))
    return x, y, [(u, v) for v in versions for u in utts]


def fit_head(config, pooled: Pooled, corpus: str, index: np.ndarray, classes: list[str]):  # noqa: ANN001
    """The recipe's logistic regression (:func:`emovox.train.logreg_head`) on the chosen
    recordings' every version: a function from pooled statistics to logits."""
    x, y, rows = training_rows(pooled, corpus, index, classes)
    return logreg_head(config, x, y, classes, config.frontend.get("depth") or LAYERS - 1,
                       rows=rows).logits


def ua(pred: np.ndarray, truth: np.ndarray) -> float:
    """Unweighted accuracy (%) over the classes present."""
    return float(100 * np.mean([np.mean(pred[truth == c] == c) for c in np.unique(truth)]))


#: ``(corpus, training indices, classes) -> scorer``: a head fitted on those recordings.
Trainer = Callable[[str, np.ndarray, list[str]], Callable[[np.ndarray], np.ndarray]]


def score(pooled: Pooled, train: Trainer, features: Callable[[str, Any], np.ndarray] | None = None,
          in_corpus: bool = True) -> dict:
    """Leave one corpus out (UA, each class's excess share of the answers), then
    (``in_corpus``) the literature folds on clean and telephone audio; ``features(corpus,
    version)`` gives the rows a scorer reads (default: the pooled statistics)."""
    features = features or pooled.x
    out: dict = {}
    for src, dst in (("ravdess", "emodb"), ("emodb", "ravdess")):
        labels = np.array([str(u.label) for u in pooled.utts[src]])
        f = train(src, np.flatnonzero(np.isin(labels, SHARED)), list(SHARED))
        test = np.array([str(u.label) for u in pooled.utts[dst]])
        keep = np.isin(test, SHARED)
        pred = f(features(dst, 1.0)[keep]).argmax(axis=1)
        truth = np.array([SHARED.index(c) for c in test[keep]])
        excess = {c: round(100 * float(np.mean(pred == k) - np.mean(truth == k)), 1)
                  for k, c in enumerate(SHARED)}
        out[f"{src}->{dst}"] = {"ua": round(ua(pred, truth), 2), "excess_share": excess,
                                "largest_excess": max(excess.values())}
    if not in_corpus:
        return out
    for corpus in CORPORA:
        utts = pooled.utts[corpus]
        classes = sorted({str(u.label) for u in utts})
        where = {u.id: i for i, u in enumerate(utts)}
        truth_all = np.array([classes.index(str(u.label)) for u in utts])
        clean, phone = [], []
        for fold in make_folds(utts, PROTOCOL[corpus]):
            idx = np.array([where[u.id] for u in [*fold.train, *fold.valid]])
            test = np.array([where[u.id] for u in fold.test])
            f = train(corpus, idx, classes)
            clean.append(ua(f(features(corpus, 1.0)[test]).argmax(1), truth_all[test]))
            phone.append(ua(f(features(corpus, "telephone")[test]).argmax(1), truth_all[test]))
        out[corpus] = {"folds": len(clean), "clean_ua": round(float(np.mean(clean)), 2),
                       "telephone_ua": round(float(np.mean(phone)), 2),
                       "telephone_drop": round(float(np.mean(clean) - np.mean(phone)), 2)}
    return out


def evaluate(config, pooled: Pooled) -> dict:  # noqa: ANN001
    """The recipe's head (with ``config``'s nuisance projection) through :func:`score`."""
    return score(pooled, lambda corpus, index, classes: fit_head(config, pooled, corpus, index,
                                                                 classes))


def table() -> str:
    """The committed results as markdown rows (the robustness notes hold them)."""
    doc = json.loads((HERE / "results.json").read_text())
    lines = []
    for setting, rec in doc["settings"].items():
        sc = rec["scores"]
        cells = [f"{sc[k]['ua']:.1f} / +{sc[k]['largest_excess']:.1f}"
                 for k in ("ravdess->emodb", "emodb->ravdess")]
        cells += [f"{sc[c]['clean_ua']:.1f} / {sc[c]['telephone_ua']:.1f} / "
                  f"{sc[c]['telephone_drop']:.1f}" for c in CORPORA]
        lines.append(f"| `{setting}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """``pool``, ``eval`` or ``table``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("pool")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--telephone-cache", type=Path,
                   help="feature cache of the telephone versions (default: CACHE/telephone)")
    p = sub.add_parser("eval")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("settings", nargs="+")
    sub.add_parser("table")
    args = parser.parse_args()
    if args.step == "table":
        print(table())
        return
    if args.step == "pool":
        pool(args)
        return
    # pooled.npz holds every hidden state of the whole encoder; a recipe that cuts the encoder
    # (frontend.depth) reads the first depth + 1 of them, and its rows are named for it
    depth = load_recipe("default").frontend.get("depth")
    pooled = Pooled(args.work / "pooled.npz", args.data, None if depth is None else depth + 1)
    path = HERE / "results.json"
    doc = json.loads(path.read_text()) if path.exists() else {"settings": {}}
    for setting in args.settings:
        overrides = []
        if setting != "none":
            sources, dims = setting.split(":")
            overrides = [f"classic.nuisance={json.dumps(sources.split('+'))}",
                         f"classic.nuisance_dims={int(dims)}"]
        config = load_recipe("default", overrides)
        key = (setting + ("" if depth is None else f"@depth{depth}")
               + (f"@{config.classic.prior}" if config.classic.prior else ""))
        doc["settings"][key] = {**provenance(), "overrides": overrides,
                                    "scores": evaluate(config, pooled)}
        write_text(path, json.dumps(doc, indent=1))
        print(key, json.dumps(doc["settings"][key]["scores"]), flush=True)


if __name__ == "__main__":
    main()
