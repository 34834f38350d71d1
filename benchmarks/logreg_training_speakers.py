"""How much do 4 more training actors matter? Every-layer Whisper-tiny statistics + LR on RAVDESS.

The neural recipes hold the validation actors out for model selection (16 training actors per
fold); the logistic-regression baselines train on all 20 non-test actors. This script fits the
logistic regression of the ``whisper_all_logreg`` recipe (every layer's mean+std, C=0.1),
without its speed perturbation, both ways on each of the 6 folds and writes
``benchmarks/results/logreg_training_speakers.json``.

    python benchmarks/logreg_training_speakers.py --cache /tmp/emovox-cache
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from emovox.config import frontend_options, load_recipe
    from emovox.corpora import load_corpus
    from emovox.dataset import FeatureBank
    from emovox.evaluate import unweighted_accuracy
    from emovox.features import build_frontend
    from emovox.files import provenance, write_text
    from emovox.folds import make_folds
    from emovox.ops import pool_stats

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path)
    args = parser.parse_args()
    if not (args.data / "ravdess").is_dir():
        raise SystemExit(f"no RAVDESS under {args.data} (use --data)")
    utts = load_corpus("ravdess", args.data / "ravdess")
    config = load_recipe("whisper_all_logreg")
    bank = FeatureBank(build_frontend(frontend_options(config)), utts, args.cache, "float16",
                       False)

    def pooled(items):
        return np.stack([pool_stats(bank.get(u), config.classic.layer) for u in items])

    rows = []
    for fold in make_folds(utts, "ravdess6"):
        test = pooled(fold.test)
        y_test = [u.label for u in fold.test]
        row = {"fold": fold.index}
        for name, items in (("train_16", fold.train), ("train_valid_20", fold.train + fold.valid)):
            clf = make_pipeline(StandardScaler(), LogisticRegression(
                C=config.classic.C, max_iter=config.classic.max_iter))
            clf.fit(pooled(items), [u.label for u in items])
            row[name] = 100.0 * unweighted_accuracy(y_test, clf.predict(test))
        rows.append(row)
        print(row, flush=True)
    keys = ("train_16", "train_valid_20")
    doc = {"folds": rows, "mean": {k: float(np.mean([r[k] for r in rows])) for k in keys},
           **provenance(sys.argv)}
    out = REPO / "benchmarks" / "results" / "logreg_training_speakers.json"
    write_text(out, json.dumps(doc, indent=1))
    print(json.dumps(doc["mean"]))


if __name__ == "__main__":
    main()
