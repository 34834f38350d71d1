"""How much do 4 more training actors matter? Every-layer Whisper-tiny statistics + LR on RAVDESS.

The neural recipes hold the validation actors out for model selection (16 training actors per
fold); the logistic-regression baselines train on all 20 non-test actors. This script fits the
logistic regression of the ``whisper_all_logreg`` recipe (every layer's mean+std, C=0.1),
without its speed perturbation, both ways on each of the 6 folds, with ``fit()`` and the
classify path ``emovox cv`` scores with, and writes
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
    from emovox.config import frontend_options, load_recipe
    from emovox.corpora import load_corpus
    from emovox.dataset import FeatureBank
    from emovox.evaluate import unweighted_accuracy
    from emovox.experiment import predict_utterances
    from emovox.features import build_frontend
    from emovox.files import provenance, write_text
    from emovox.folds import make_folds
    from emovox.train import fit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path)
    args = parser.parse_args()
    if not (args.data / "ravdess").is_dir():
        raise SystemExit(f"no RAVDESS under {args.data} (use --data)")
    utts = load_corpus("ravdess", args.data / "ravdess")
    # The recipe's logistic regression without its speed perturbation, trained by fit() and
    # scored through Bundle.classify, as `emovox cv` does.
    config = load_recipe("whisper_all_logreg", ["augment.speed_factors=[]"])
    frontend = build_frontend(frontend_options(config))
    bank = FeatureBank(frontend, utts, args.cache, config.data.cache_dtype, False)
    labels = sorted({str(u.label) for u in utts})
    rows = []
    for fold in make_folds(utts, "ravdess6"):
        y_test = [str(u.label) for u in fold.test]
        row = {"fold": fold.index}
        for name, items in (("train_16", fold.train), ("train_valid_20", fold.train + fold.valid)):
            model = fit(config, items, [], labels=labels, bank=bank, frontend=frontend,
                        progress=False)
            probs = predict_utterances(model, bank, fold.test)
            pred = [model.labels[i] for i in probs.argmax(axis=1)]
            row[name] = 100.0 * unweighted_accuracy(y_test, pred)
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
