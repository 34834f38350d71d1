"""How much int8 encoder weights change the bundled model's answers on real speech.

Runs the default model twice over RAVDESS + EmoDB (the 7 default classes) on the PyTorch
runtime (``--runtime torch``), with float weights and with int8 (PyTorch's dynamic
quantisation of the encoder's linear layers, ``--runtime torch --int8`` /
``quantize=True``), and records label agreement and the largest probability
difference. These recordings are the model's own training data, so the accuracies say nothing
about generalisation, and the agreement may be higher than on speech the model never heard.
What ``emovox predict`` runs by default (the model's int8 ONNX encoder graph) is compared with
the float model by ``benchmarks/onnx_parity.py`` and ``onnx_held_out.py``.
Writes ``benchmarks/results/int8_agreement.json``.

Usage: ``python benchmarks/int8_agreement.py [--data DIR]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from emovox import Recognizer
from emovox.corpora import load_corpus
from emovox.files import provenance, write_text

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    """Run both and write the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    torch.set_num_threads(1)
    utts = [u for name in ("ravdess", "emodb")
            for u in load_corpus(name, args.data / name, classes="default7")]
    paths = [u.path for u in utts]
    # PyTorch both times: on ONNX Runtime (the default) the graph's own int8 weights run
    # whatever quantize says (benchmarks/onnx_parity.py measures that path)
    float_model = Recognizer.default(quantize=False, runtime="torch")
    int8_model = Recognizer.default(quantize=True, runtime="torch")
    assert (float_model.runtime, int8_model.runtime, int8_model.quantize) == ("torch", "torch",
                                                                              True)
    exact = float_model.predict_files(paths)
    fast = int8_model.predict_files(paths)
    both = [(a, b) for a, b in zip(exact, fast, strict=True) if a.probabilities and b.probabilities]
    doc = {
        "n": len(paths),
        "n_compared": len(both),
        "label_agreement": float(np.mean([a.label == b.label for a, b in both])),
        "max_probability_difference": float(max(
            abs(a.probabilities[k] - b.probabilities[k]) for a, b in both for k in a.probabilities
        )),
        "accuracy_float_on_training_data": float(np.mean(
            [p.label == u.label for p, u in zip(exact, utts, strict=True)])),
        "accuracy_int8_on_training_data": float(np.mean(
            [p.label == u.label for p, u in zip(fast, utts, strict=True)])),
        **provenance(),
    }
    out = REPO / "benchmarks" / "results" / "int8_agreement.json"
    write_text(out, json.dumps(doc, indent=1))
    print(json.dumps({k: v for k, v in doc.items() if k != "machine"}, indent=1))


if __name__ == "__main__":
    main()
