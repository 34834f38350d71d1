"""Nested selection among the RAVDESS table's MLL rows (issue #15, item 2).

The rows that build up to ``--recipe mll_plus`` (weight averaging, the linear path, two seeds,
fusion with the logistic regression) were each added after looking at the six test folds, so
their best figure is an upper estimate. This script makes the same choice without the test
speakers: for each outer fold of RAVDESS's 6-fold protocol,

- inner test: the outer fold's validation actors (4); inner validation: the actors the
  protocol uses as the *next* fold's validation actors (4 of the outer training actors;
  early stopping for the rows that select epochs, training data for the rows that train on
  their validation speakers, as each row's recipe does); inner training: the other 12;
- every candidate row (:data:`CANDIDATES`: its recipe and overrides exactly as
  ``benchmarks/ser_table.py`` runs it) is fitted on the inner training (+ validation) actors
  and scored (UA) on the inner test actors; the best is the fold's choice (ties: the earlier,
  i.e. simpler, row);
- the outer score is the chosen row's own result on the outer test actors: its committed fold
  record in ``benchmarks/results/ravdess/<row>/folds/fold_K.json`` (the same recipe, fold and
  seed; not re-trained here), with that record's revision.

Rows that add seeds or the fused logistic regression to another row's networks
(``Row.shares`` in ``ser_table.py``) take that row's finished inner runs over (``--runs``,
checkpoints resumed only when the config trains the network the same way), as the table's
runs do: the same models, trained once.

Each outer fold is written to ``benchmarks/results/selection/ravdess-mll/fold_K.json`` when it
finishes, each candidate to ``fold_K.partial.json`` as it finishes (a re-run resumes there);
``--summary`` (also run after every fold) writes ``summary.json``: the choices, the nested UA
(mean over folds of the chosen rows' outer UA) once every fold is chosen and every chosen
record exists, and whether those records come from clean revisions.

Usage: ``python benchmarks/select_mll.py [--folds 1,2] [--data DIR] [--cache DIR]
[--runs DIR] [--summary]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from ser_table import TABLES, copy_runs, row  # noqa: E402

from emovox.config import frontend_options, load_recipe  # noqa: E402
from emovox.corpora import load_corpus  # noqa: E402
from emovox.dataset import FeatureBank  # noqa: E402
from emovox.evaluate import unweighted_accuracy  # noqa: E402
from emovox.experiment import predict_utterances  # noqa: E402
from emovox.features import build_frontend  # noqa: E402
from emovox.files import provenance, write_text  # noqa: E402
from emovox.folds import Fold, check_fold, make_folds  # noqa: E402
from emovox.labels import ordered  # noqa: E402
from emovox.train import fit  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "selection" / "ravdess-mll"
ROWS = REPO / "benchmarks" / "results" / "ravdess"
#: The candidates, simplest first: the logistic regression, the tuned MLL row and each step
#: towards ``mll_plus`` (the rows of ``benchmarks/ser_table.py``).
CANDIDATES = ("whisper_all_logreg", "mll", "mll_all_avg", "mll_stats", "mll_stats_ens2",
              "mll_stats_lr", "mll_stats_ens2_lr")


def inner_fold(folds: list[Fold], k: int) -> Fold:
    """Outer fold ``k``'s inner split (see the module docstring); its index is ``k``."""
    fold = folds[k - 1]
    following = folds[k % len(folds)]
    valid_speakers = set(following.valid_speakers) - set(fold.valid_speakers)
    valid = tuple(u for u in fold.train if u.speaker in valid_speakers)
    train = tuple(u for u in fold.train if u.speaker not in valid_speakers)
    inner = Fold(k, train, valid, fold.valid)
    if not valid or not train:
        raise SystemExit(f"select_mll.py: fold {k} leaves no inner validation or training "
                         "actors")
    check_fold(inner)
    return inner


class Banks:
    """One feature bank per frontend the candidates use (built when first asked for)."""

    def __init__(self, utts: list, cache: Path | None) -> None:
        self.utts, self.cache = utts, cache
        self._made: dict[str, tuple] = {}

    def get(self, config):  # noqa: ANN001, ANN201
        options = frontend_options(config)
        key = json.dumps(options, sort_keys=True, default=str)
        if key not in self._made:
            frontend = build_frontend(options)
            self._made[key] = (frontend, FeatureBank(frontend, self.utts, self.cache,
                                                     config.data.cache_dtype, True))
        return self._made[key]


def candidate_ua(key: str, fold: Fold, banks: Banks, labels: list[str],
                 runs: Path | None = None) -> float:
    """A row's UA on the inner test actors, fitted as ``emovox cv`` fits the row's recipe
    (``runs``: this fold's folder of per-row training runs, resumed and handed over)."""
    r = row(key)
    config = load_recipe(r.recipe, list(r.sets))
    frontend, bank = banks.get(config)
    if runs is not None and r.shares is not None:  # the same networks, trained once
        copy_runs(runs / r.shares, runs / key)
    model = fit(config, fold.train, fold.valid, labels=labels, extra=fold.test, bank=bank,
                frontend=frontend, progress=False,
                run_dir=runs / key if runs is not None else None)
    probs = predict_utterances(model, bank, fold.test)
    truth = [str(u.label) for u in fold.test]
    pred = [labels[int(i)] for i in probs.argmax(axis=1)]
    return round(100.0 * unweighted_accuracy(truth, pred, labels), 2)


def choose(scores: dict[str, float]) -> str:
    """The best inner UA; a tie goes to the earlier (simpler) candidate."""
    order = [k for k in CANDIDATES if k in scores]
    return max(order, key=lambda k: (scores[k], -order.index(k)))


def run_fold(k: int, folds: list[Fold], banks: Banks, labels: list[str],
             runs: Path | None = None) -> dict:
    """Every candidate on outer fold ``k``'s inner split (resuming from its partial file;
    ``runs``: where the candidates' training runs go, one folder per fold and row)."""
    fold = inner_fold(folds, k)
    OUT.mkdir(parents=True, exist_ok=True)
    partial = OUT / f"fold_{k}.partial.json"
    scores: dict[str, float] = (json.loads(partial.read_text())["inner_ua"]
                                if partial.exists() else {})
    for key in CANDIDATES:
        if key in scores:
            continue
        scores[key] = candidate_ua(key, fold, banks, labels,
                                   runs / f"fold_{k}" if runs is not None else None)
        print(f"fold {k}: {key}: inner UA {scores[key]:.1f}", flush=True)
        write_text(partial, json.dumps({"inner_ua": scores}, indent=1))
    doc = {**provenance(), "fold": k,
           "inner": {"train_speakers": sorted({str(u.speaker) for u in fold.train}),
                     "valid_speakers": fold.valid_speakers,
                     "test_speakers": fold.test_speakers},
           "outer_test_speakers": folds[k - 1].test_speakers,
           "inner_ua": scores, "chosen": choose(scores)}
    write_text(OUT / f"fold_{k}.json", json.dumps(doc, indent=1))
    partial.unlink(missing_ok=True)
    return doc


def summarise(out: Path | None = None, rows: Path | None = None) -> dict:
    """The choices and, once every fold has one and its record, the nested UA (``out``: the
    selection's folder, default :data:`OUT`; ``rows``: the rows' results, :data:`ROWS`)."""
    out, rows = out or OUT, rows or ROWS
    n = TABLES["ravdess"].n_folds
    docs = {int(p.stem.split("_")[1]): json.loads(p.read_text())
            for p in out.glob("fold_*.json") if not p.name.endswith(".partial.json")}
    folds, missing = [], []
    for k in range(1, n + 1):
        if k not in docs:
            missing.append(k)
            continue
        chosen = docs[k]["chosen"]
        record = rows / chosen / "folds" / f"fold_{k}.json"
        outer = json.loads(record.read_text()) if record.exists() else None
        folds.append({"fold": k, "chosen": chosen, "inner_ua": docs[k]["inner_ua"],
                      "outer_ua": round(float(outer["ua"]), 2) if outer else None,
                      "outer_revision": outer.get("git_revision") if outer else None})
    counts: dict[str, int] = {}
    for f in folds:
        counts[f["chosen"]] = counts.get(f["chosen"], 0) + 1
    complete = not missing and all(f["outer_ua"] is not None for f in folds)
    revisions = sorted({str(f["outer_revision"]) for f in folds if f["outer_revision"]})
    summary = {"candidates": list(CANDIDATES), "folds": folds, "missing_folds": missing,
               "chosen": counts, "complete": complete,
               "nested_ua": (round(float(np.mean([f["outer_ua"] for f in folds])), 2)
                             if complete else None),
               "outer_revisions": revisions,
               "outer_clean": bool(revisions) and not any(r.endswith("-dirty")
                                                          for r in revisions),
               "selection_revisions": sorted({str(d.get("git_revision")) for d in
                                              docs.values()})}
    return summary


def main() -> None:
    """Run the outer folds asked for (skipping finished ones), then the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--folds", default=None, help="outer folds to run, e.g. 1,2")
    parser.add_argument("--runs", type=Path, default=OUT / "runs",
                        help="the candidates' training runs (checkpoints; not committed)")
    parser.add_argument("--summary", action="store_true", help="only write the summary")
    args = parser.parse_args()
    if not args.summary:
        root = args.data / "ravdess"
        if not root.is_dir():
            raise SystemExit(f"select_mll.py: no RAVDESS under {args.data} (use --data)")
        utts = sorted(load_corpus("ravdess", root), key=lambda u: u.id)
        folds = make_folds(utts, "ravdess6")
        wanted = ([int(x) for x in args.folds.split(",")] if args.folds
                  else [f.index for f in folds])
        bad = [k for k in wanted if not 1 <= k <= len(folds)]
        if bad:
            raise SystemExit(f"select_mll.py: no fold {bad[0]} (1-{len(folds)})")
        todo = [k for k in wanted if not (OUT / f"fold_{k}.json").exists()]
        banks = Banks(utts, args.cache)
        labels = list(ordered(str(u.label) for u in utts))
        for k in todo:
            run_fold(k, folds, banks, labels, args.runs)
    OUT.mkdir(parents=True, exist_ok=True)
    summary = {**provenance(), **summarise()}
    write_text(OUT / "summary.json", json.dumps(summary, indent=1))
    print(json.dumps({k: summary[k] for k in ("chosen", "missing_folds", "nested_ua")}))


if __name__ == "__main__":
    main()
