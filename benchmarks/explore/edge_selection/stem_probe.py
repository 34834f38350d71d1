"""Would Whisper's own first stages make an edge student? (exploration, issue #14)

1. Probe: a logistic regression (C = 0.1, standardised) on the mean and standard deviation of
   one hidden state of the default frontend (0: the convolution stem + positions; 1: the
   first layer's output; or every state), clean recordings, the corpus's literature folds
   (EmoDB: leave one speaker out), the default model's classes; UA per fold and its mean.
2. Cost: the exported encoder graph (``emovox.export``, MatMul weights int8) cut after the
   stem, after the first layer, and whole: file size and median time of a 3 s clip on one
   thread.

Usage: ``python benchmarks/explore/edge_selection/stem_probe.py [--corpus emodb] [--data DIR]
[--cache DIR]``; writes ``stem_probe.json`` beside this file.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "src"))

from emovox import export  # noqa: E402
from emovox.config import frontend_options, load_recipe  # noqa: E402
from emovox.corpora import load_corpus  # noqa: E402
from emovox.dataset import FeatureBank  # noqa: E402
from emovox.evaluate import classification_scores  # noqa: E402
from emovox.features import build_frontend  # noqa: E402
from emovox.files import provenance, write_text  # noqa: E402
from emovox.folds import make_folds  # noqa: E402
from emovox.labels import DEFAULT_CLASSES  # noqa: E402

PROTOCOL = {"ravdess": "ravdess6", "emodb": "emodb_loso"}
STATES = {"stem": [0], "layer 1": [1], "last": [4], "every state": [0, 1, 2, 3, 4]}


def probe(corpus: str, data: Path, cache: Path | None) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    config = load_recipe("default")
    utts = sorted(load_corpus(corpus, data / corpus, classes="default7"), key=lambda u: u.id)
    bank = FeatureBank(build_frontend(frontend_options(config)), utts, cache,
                       config.data.cache_dtype, True)
    stats = {}
    for u in utts:
        h = bank.get(u, 1.0)  # [L + 1, T, D]
        stats[u.id] = np.concatenate([h.mean(axis=1), h.std(axis=1)], axis=-1)
    labels = list(DEFAULT_CLASSES)
    out = {}
    for name, states in STATES.items():
        uas = []
        for fold in make_folds(utts, PROTOCOL[corpus]):
            train = list(fold.train) + list(fold.valid)
            x = np.stack([stats[u.id][states].ravel() for u in train])
            scaler = StandardScaler().fit(x)
            model = LogisticRegression(C=0.1, max_iter=3000).fit(
                scaler.transform(x), [str(u.label) for u in train])
            pred = model.predict(scaler.transform(
                np.stack([stats[u.id][states].ravel() for u in fold.test])))
            uas.append(classification_scores([str(u.label) for u in fold.test], list(pred),
                                             labels)["ua"])
        out[name] = {"ua": round(float(np.mean(uas)), 2), "per_fold": [round(v, 2) for v in uas]}
        print(f"{corpus} {name}: UA {out[name]['ua']:.1f}", flush=True)
    return out


def cost(repeat: int) -> dict:
    import onnxruntime as ort
    import torch

    frontend = build_frontend({"name": "whisper", "layer": "all", "pooled": False})
    x = np.random.default_rng(0).normal(0, 0.1, (1, 48000)).astype(np.float32)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, layers in (("stem", 0), ("stem + layer 1", 1), ("whole encoder", None)):
            module = export._encoder_graph(frontend)
            module.encoder = copy.deepcopy(module.encoder)
            if layers is not None:
                module.encoder.layers = module.encoder.layers[:layers]
                module.encoder.final_norm = torch.nn.Identity()
            path = os.path.join(tmp, "graph.onnx")
            export._write_onnx(module, 16000, "features", {}, path, True)
            options = ort.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = 1
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            feed = {session.get_inputs()[0].name: x}
            for _ in range(10):
                session.run(None, feed)
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                session.run(None, feed)
                times.append(time.perf_counter() - start)
            out[name] = {"bytes": os.path.getsize(path),
                         "ms": round(1000 * float(np.median(times)), 2)}
            print(f"{name}: {out[name]}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=sorted(PROTOCOL), default="emodb")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    doc = {**provenance(), "corpus": args.corpus, "threads": 1,
           "load_average_before": list(os.getloadavg()),
           "cost": cost(args.repeat), "probe": probe(args.corpus, args.data, args.cache)}
    write_text(Path(__file__).with_name("stem_probe.json"), json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
