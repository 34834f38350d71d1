"""The shipped runtime against the float PyTorch model on speakers the model never heard.

``benchmarks/onnx_parity.py`` compares the two on the bundled model's own training recordings.
Here every recording is a test recording: speaker 5-fold over RAVDESS + EmoDB (seed 0, the
folds of ``benchmarks/default_model.py``), the default recipe trained on each fold's training
speakers, then each fold model run on its test speakers twice, as ``emovox predict`` runs it
(its head on the bundled int8 encoder graph, ONNX Runtime) and on the float PyTorch encoder
(``check_parity``). Also the labels' UA under each runtime, so the cost of int8 in accuracy is
visible, not only in agreement.

Writes ``benchmarks/results/onnx_held_out.json``.

Usage: ``python benchmarks/onnx_held_out.py [--data DIR] [--cache DIR] [--folds 1,2]
[--encoder GRAPH --out FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emovox.bundle import load_checkpoint, save_checkpoint  # noqa: E402
from emovox.config import frontend_options, load_recipe  # noqa: E402
from emovox.corpora import load_corpus  # noqa: E402
from emovox.dataset import FeatureBank  # noqa: E402
from emovox.evaluate import classification_scores  # noqa: E402
from emovox.export import check_parity  # noqa: E402
from emovox.features import build_frontend  # noqa: E402
from emovox.files import provenance, write_text  # noqa: E402
from emovox.folds import make_folds  # noqa: E402
from emovox.inference import DEFAULT_MODEL, Recognizer  # noqa: E402
from emovox.labels import DEFAULT_CLASSES  # noqa: E402
from emovox.train import fit  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "onnx_held_out.json"


def main() -> None:
    """Train the fold models, compare the runtimes on their test speakers, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--folds", default=None, help="only these folds, e.g. 1,2")
    parser.add_argument("--encoder", type=Path, default=None,
                        help="another encoder graph to compare (default: the bundled one)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    config = load_recipe("default")
    utts = sorted(load_corpus("ravdess", args.data / "ravdess", classes="default7")
                  + load_corpus("emodb", args.data / "emodb", classes="default7"),
                  key=lambda u: u.id)
    frontend = build_frontend(frontend_options(config))
    bank = FeatureBank(frontend, utts, args.cache, config.data.cache_dtype, True)
    labels = list(DEFAULT_CLASSES)
    encoder = (str(args.encoder) if args.encoder else
               load_checkpoint(REPO / "src" / "emovox" / DEFAULT_MODEL).encoder)
    assert encoder is not None
    chosen = {int(k) for k in args.folds.split(",")} if args.folds else None
    doc = {**provenance(), "protocol": "speaker 5-fold over RAVDESS + EmoDB (seed 0)",
           "encoder": os.path.basename(encoder), "folds": {}}
    truth: list[str] = []
    answers: dict[str, list[str]] = {"onnx": [], "torch": []}
    for fold in make_folds(utts, "speaker_kfold", k=5, seed=0, validation="none"):
        if chosen and fold.index not in chosen:
            continue
        model = fit(config, fold.train, [], labels=labels, bank=bank, frontend=frontend,
                    progress=False)
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(encoder, Path(tmp) / os.path.basename(encoder))
            npz = Path(tmp) / "fold.npz"
            save_checkpoint(model, npz, encoder=os.path.basename(encoder))
            files = [u.path for u in fold.test]
            report = check_parity(model, npz, files, threads=1)
            onnx = Recognizer(load_checkpoint(npz), threads=1).predict_files(files)
        reference = Recognizer(model, threads=1, runtime="torch").predict_files(files)
        truth += [str(u.label) for u in fold.test]
        answers["onnx"] += [p.label for p in onnx]
        answers["torch"] += [p.label for p in reference]
        doc["folds"][str(fold.index)] = {
            "test_speakers": len(fold.test_speakers), "compared": report.compared,
            "agreement": round(100 * report.agreement, 2),
            "agreement_not_torn": round(100 * report.agreement_decided, 2),
            "torn": report.ties, "max_abs_diff": round(report.max_abs_diff, 4),
        }
        print(f"fold {fold.index}: {report.summary()}", flush=True)
    same = np.mean([a == b for a, b in zip(answers["onnx"], answers["torch"], strict=True)])
    present = [c for c in labels if c in set(truth)]
    doc["pooled"] = {
        "recordings": len(truth), "agreement": round(100 * float(same), 2),
        "ua_onnx": round(classification_scores(truth, answers["onnx"], present)["ua"], 2),
        "ua_torch": round(classification_scores(truth, answers["torch"], present)["ua"], 2),
    }
    write_text(args.out, json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc["pooled"]))


if __name__ == "__main__":
    main()
