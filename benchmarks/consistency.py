"""Does a file's record depend on how it was asked for? `emovox predict` on a folder vs alone.

Takes ``--n`` recordings (default 50: every k-th file of RAVDESS and EmoDB, plus two long
recordings made by joining clips, so windows are exercised too), links them into one folder,
and runs the bundled model through the command line:

- ``emovox predict FOLDER --format json`` (one call, the files batched together),
- ``emovox predict FILE --format json`` once per file,
- the same folder in reverse order (``predict FILE...`` with the paths reversed),

as shipped (the model's int8 encoder graph on ONNX Runtime, the default), on PyTorch
(``--runtime torch``, float) and on PyTorch with int8 weights (``--runtime torch --int8``), plus
the Python API and the HTTP service (in process, FastAPI's test client) with the defaults.
Records are compared field by field: label and every probability (as printed, 6 decimals).
Writes
``benchmarks/results/consistency.json``.

Usage: ``python benchmarks/consistency.py [--data DIR] [--n 50] [--threads 1]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from emovox import Recognizer
from emovox.cli import main as cli
from emovox.corpora import load_corpus
from emovox.files import provenance, write_text

REPO = Path(__file__).resolve().parents[1]


def predict(*args: str) -> list[dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(["predict", *args, "--format", "json"])
    assert code == 0, code
    return json.loads(out.getvalue())


def compare(a: list[dict], b: list[dict]) -> dict:
    by_path = {r["path"]: r for r in b}
    labels = sum(r["label"] != by_path[r["path"]]["label"] for r in a)
    diffs = [abs(v - by_path[r["path"]]["probabilities"][k])
             for r in a for k, v in r["probabilities"].items()]
    identical = sum(r == by_path[r["path"]] for r in a)
    return {"n": len(a), "identical_records": identical, "labels_differ": int(labels),
            "max_probability_difference": float(max(diffs, default=0.0))}


def main() -> None:
    """Build the folder, run every way, write the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--threads", default="1")
    args = parser.parse_args()
    utts = sorted((u for name in ("ravdess", "emodb") for u in load_corpus(
        name, args.data / name)), key=lambda u: u.id)
    chosen = utts[:: max(1, len(utts) // (args.n - 2))][: args.n - 2]
    doc: dict = {"n": args.n, "files": [u.id for u in chosen]}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for u in chosen:
            os.symlink(os.path.abspath(u.path), folder / f"{u.id.replace('/', '_')}.flac")
        for k in range(2):  # two long recordings: 4 clips each, ~10-20 s
            parts = [sf.read(u.path, dtype="float32")[0] for u in chosen[k::13][:4]]
            sf.write(folder / f"long_{k}.flac", np.concatenate(parts), 16000)
        files = sorted(str(p) for p in folder.iterdir())
        threads = ["--threads", args.threads]
        runs = (("shipped", []), ("torch", ["--runtime", "torch"]),
                ("torch_int8", ["--runtime", "torch", "--int8"]))
        for name, extra in runs:
            together = predict(str(folder), *threads, *extra)
            alone = [predict(f, *threads, *extra)[0] for f in files]
            reverse = predict(*files[::-1], *threads, *extra)
            doc[name] = {"folder_vs_alone": compare(together, alone),
                         "reversed_vs_alone": compare(reverse, alone)}
            print(name, json.dumps(doc[name]), flush=True)
            if name == "shipped":
                reference = alone
        api = Recognizer.load(None, threads=int(args.threads))
        doc["shipped"]["api_vs_cli"] = compare([p.to_dict() for p in api.predict_files(files)],
                                             reference)
        with contextlib.suppress(ImportError):
            from fastapi.testclient import TestClient

            from emovox.serve import create_app

            client = TestClient(create_app(api))
            http = []
            for f in files:
                with open(f, "rb") as handle:
                    record = client.post("/v1/predict", files={"file": (f, handle.read())}).json()
                http.append({**record, "path": f})
            doc["shipped"]["http_vs_cli"] = compare(http, reference)
        print(json.dumps(doc["shipped"]), flush=True)
    doc.update(provenance())
    write_text(REPO / "benchmarks" / "results" / "consistency.json", json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
