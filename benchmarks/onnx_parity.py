"""The bundled model as ONNX (float and int8) against the PyTorch model, on real recordings.

Three rows, each against the float PyTorch path of the same model: ``bundled`` is what
``emovox predict`` runs (``default.npz``: the int8 encoder graph on ONNX Runtime, then the
numpy classify path); ``float32`` and ``int8`` are whole-model graphs exported with
``emovox.export.export_onnx`` into a temporary folder (left out, and said so, for a model the
whole graph cannot hold: one that gates its frames). ``check_parity`` runs on every RAVDESS
and EmoDB recording (1 thread); the script writes ``benchmarks/results/onnx_parity.json``:
file sizes, label agreement, largest probability difference, the files whose labels differ,
and the time per recording of each path in process (1 thread; ONNX on float or int8 weights,
PyTorch in float). The recordings are the model's own training data (the only real speech
here), so agreement on speech the model never heard may be lower.

Usage: ``python benchmarks/onnx_parity.py [--data DIR] [--limit N]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import torch  # noqa: E402

from emovox.bundle import load_checkpoint  # noqa: E402
from emovox.export import check_parity, export_onnx  # noqa: E402
from emovox.files import provenance, write_text  # noqa: E402
from emovox.inference import DEFAULT_MODEL, find_audio  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "onnx_parity.json"


def main() -> None:
    """Export, compare, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--limit", type=int, default=None, help="first N recordings only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    doc = {**provenance(), "model": DEFAULT_MODEL}
    files = [p for p, problem in find_audio([args.data / "ravdess", args.data / "emodb"])
             if problem is None]
    files = sorted(files)[: args.limit] if args.limit else sorted(files)
    doc["recordings"] = len(files)
    model = load_checkpoint(REPO / "src" / "emovox" / DEFAULT_MODEL)
    bundled = str(REPO / "src" / "emovox" / DEFAULT_MODEL)
    rows = [("bundled", True), ("float32", False), ("int8", True)]
    if model.frontend_config.get("gate_db") is not None:
        rows = rows[:1]
        doc["whole_graph"] = "not exported: the model gates its frames (frontend.gate_db)"
    with tempfile.TemporaryDirectory() as tmp:
        for name, int8 in rows:
            path = (bundled if name == "bundled" else
                    export_onnx(model, os.path.join(tmp, f"{name}.onnx"), int8=int8))
            t0 = time.perf_counter()
            report = check_parity(model, path, files, threads=1)
            seconds = time.perf_counter() - t0
            doc[name] = {
                "megabytes": round(sum(os.path.getsize(f) for f in (
                    [path, model.encoder] if name == "bundled" else [path])) / 1e6, 2),
                "compared": report.compared, "skipped": len(report.skipped),
                "agreement": round(100 * report.agreement, 2),
                "max_abs_diff": report.max_abs_diff,
                "disagreements": [os.path.relpath(f, args.data) for f in report.disagreements],
                "seconds_both_paths": round(seconds, 1),
                "ms_per_recording_pytorch": round(1000 * report.seconds_model
                                                  / max(1, report.compared), 1),
                "ms_per_recording_onnx": round(1000 * report.seconds_onnx
                                               / max(1, report.compared), 1),
            }
            print(f"{name}: {report.summary()} ({doc[name]['megabytes']} MB)", flush=True)
    write_text(OUT, json.dumps(doc, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
