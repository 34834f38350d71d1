"""Light models: heads on the same frozen Whisper tiny.en encoder, by size, latency and UA per fold.

The head ablation of the light-models comparison (linear, an MLP on mean pooling, attentive
pooling), on the encoder the bundled model uses. UA per fold is read from the committed
``emovox cv`` runs of ``benchmarks/ser_table.py`` (RAVDESS 6-fold, EmoDB leave-one-speaker-out;
nothing is trained here); size is each head's parameters as built from its recipe; latency is
measured here, one thread, per 3 s recording: the encoder (the bundled int8 ONNX graph, what
``emovox predict`` runs) once, and each head on its input (frames for the neural heads, pooled
statistics for the linear ones), median of repeated runs.

The last row is the distilled edge student (``benchmarks/edge_model.py``), which needs no
encoder: its latency is the whole network's, its UA that of the per-fold students against
their teachers.

Writes ``benchmarks/results/light_models.json`` and prints the markdown table; ``--table``
measures nothing and writes the table of the committed results between the ``light-models``
markers of README.md.

Usage: ``python benchmarks/light_models.py [--table] [--out FILE]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import ser_table  # noqa: E402

from emovox.files import provenance, write_between, write_text  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "light_models.json"
README = REPO / "README.md"
START, END = "<!-- light-models:start -->", "<!-- light-models:end -->"

#: (row of ser_table, what the head is).
HEADS = (
    ("whisper_logreg", "linear: logistic regression on the last layer's mean+std"),
    ("whisper_all_logreg", "linear: logistic regression on every layer's mean+std"),
    ("whisper_mean", "MLP on mean-pooled frames (learned layer weights)"),
    ("whisper_flam", "attentive pooling (FLAM) + MLP"),
    ("mll", "attentive pooling + MLL losses and EAM mixup"),
)
SECONDS = 3.0
FRAMES = 150  # Whisper frames in 3 s
CLASSES = {"ravdess": 8, "emodb": 7}


def fold_scores(table: str, key: str) -> dict:
    """UA per fold of a committed ser_table row (empty when it was not run)."""
    folder = ser_table.RESULTS / table / key / "folds"
    uas = {int(p.stem.split("_")[1]): json.loads(p.read_text())["ua"]
           for p in sorted(folder.glob("fold_*.json"))}
    if not uas:
        return {}
    values = list(uas.values())
    return {"ua_per_fold": {str(k): round(v, 2) for k, v in sorted(uas.items())},
            "ua_mean": round(statistics.mean(values), 2),
            "ua_std": round(statistics.pstdev(values), 2), "folds": len(values)}


def _median_ms(fn, repeat: int = 60) -> float:  # noqa: ANN001 - a small timing helper
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(1000 * statistics.median(times), 3)


def head_cost(key: str, classes: int) -> dict:
    """Parameters, bytes (float32) and latency per recording of one row's head."""
    import torch

    from emovox.bundle import LinearHead, build_network
    from emovox.config import load_recipe
    from emovox.ops import pool_stats

    r = ser_table.row(key)
    config = load_recipe(r.recipe, list(r.sets))
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((5, FRAMES, 384)).astype(np.float32)
    if config.method != "neural":
        layer = config.classic.layer
        dim = pool_stats(frames, layer).shape[0]
        head = LinearHead(np.zeros(dim), np.ones(dim), rng.standard_normal((classes, dim)),
                          np.zeros(classes))
        params = classes * dim + classes
        ms = _median_ms(lambda: head.predict_proba(pool_stats(frames, layer)[None]))
        return {"parameters": params, "megabytes_float32": round(4 * params / 1e6, 3),
                "head_ms": ms, "input": f"pooled statistics ({dim})"}
    network = build_network(config, [5, 384], classes).eval()
    params = sum(p.numel() for p in network.parameters())
    from emovox.layers import pad_frames

    x, mask = pad_frames([frames])  # what the classify path gives a network
    with torch.inference_mode():
        ms = _median_ms(lambda: network(x, mask))
    return {"parameters": int(params), "megabytes_float32": round(4 * params / 1e6, 3),
            "head_ms": ms, "input": "frames (5 layers x 150 x 384)"}


def encoder_cost() -> dict:
    """The bundled int8 encoder graph on one thread, per 3 s recording."""
    from emovox.inference import Recognizer

    recognizer = Recognizer.default(threads=1)
    signal = (0.05 * np.random.default_rng(1).standard_normal(int(SECONDS * 16000))).astype(
        np.float32)
    frontend = recognizer.frontend.inner
    return {"name": "Whisper tiny.en encoder, int8 ONNX graph (bundled)",
            "megabytes": round(Path(recognizer.model.encoder).stat().st_size / 1e6, 2),
            "ms": _median_ms(lambda: frontend(signal), repeat=40)}


EDGE = REPO / "benchmarks" / "results" / "edge"


def edge_row(processor: str | None = None) -> str:
    """The distilled edge student's row, from ``benchmarks/edge_model.py``'s records of the
    shipped recipe (its per-fold students against their teachers): it has no separate encoder,
    so its latency is the whole network's (spectrum included). ``processor``: the host the heads
    were timed on; the edge timing names its own host when that differs."""
    shipped = EDGE / "shipped.json"
    if not shipped.exists():
        return "| distilled edge student (issue #14) | — | — | — | not built yet | not built yet |"
    import edge_model

    doc = json.loads(shipped.read_text())
    views, _, soften, variant = edge_model.recipe_of(doc)
    cells = []
    stale = False
    for corpus in ("ravdess", "emodb"):
        folder, today = edge_model.rows_folder(
            edge_model.results_key(corpus, views, soften, variant))
        stale = stale or not today
        folds = [json.loads(p.read_text()) for p in sorted(folder.glob("fold_*.json"))]
        if not folds:
            cells.append("not run")
            continue
        ua = [f["student"]["ua"] for f in folds]
        teacher = statistics.fmean(f["teacher"]["ua"] for f in folds)
        std = statistics.stdev(ua) if len(ua) > 1 else 0.0
        cells.append(f"{statistics.fmean(ua):.1f} ± {std:.1f} ({len(ua)} folds; its teacher "
                     f"{teacher:.1f})")
    latency = EDGE / "latency.json"
    ms = "not measured"
    if latency.exists():
        lat = json.loads(latency.read_text())
        ms = f"{lat['models']['edge']['frontend_ms']:.2f} ms, whole network"
        if processor and lat["machine"]["processor"] != processor:  # another host
            ms += (f" (on {lat['machine']['processor']}, where the encoder takes "
                   f"{lat['models']['default']['frontend_ms']:.1f} ms)")
    size = f"{(doc['graph_bytes'] + doc.get('head_bytes', 0)) / 1e6:.2f} MB" + (
        " (float16 weights)" if doc.get("half") else "")
    body = ("on Whisper's frozen convolution stem" if "whisper-stem" in variant
            else "on log-mel, no encoder")
    note = f"; its folds' teachers: {edge_model.EARLIER_TEACHER}" * stale
    return (f"| distilled edge student {body} (`--model edge`; "
            f"`benchmarks/edge_model.py`{note}) | {doc['params']:,} | "
            f"{size} | {ms} | {cells[0]} | {cells[1]} |")


def render(doc: dict) -> str:
    """The markdown table."""
    enc = doc["encoder"]
    lines = [
        f"Every head runs on the same frozen encoder ({enc['name']}, {enc['megabytes']:.1f} MB, "
        f"{enc['ms']:.1f} ms per 3 s recording on one thread); UA (%) mean ± std over the "
        "folds of each corpus's speaker-independent protocol.",
        "",
        "| head | parameters | size (float32) | head latency per 3 s | RAVDESS 6-fold UA | "
        "EmoDB LOSO UA |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in doc["heads"]:
        cells = []
        for table in ("ravdess", "emodb"):
            s = row["scores"].get(table) or {}
            cells.append(f"{s['ua_mean']:.1f} ± {s['ua_std']:.1f} ({s['folds']} folds)" if s
                         else "not run")
        cost = row["cost"]
        lines.append(f"| {row['title']} | {cost['parameters']:,} | "
                     f"{cost['megabytes_float32']:.2f} MB | {cost['head_ms']:.2f} ms | "
                     f"{cells[0]} | {cells[1]} |")
    lines.append(edge_row(doc.get("machine", {}).get("processor")))
    return "\n".join(lines) + (f"\n\n(`benchmarks/light_models.py` -> "
                               f"`benchmarks/results/light_models.json`, revision "
                               f"{str(doc.get('git_revision'))[:10]}; per-fold UA from the "
                               "`benchmarks/ser_table.py` runs.)\n")


def main() -> None:
    """Measure, write the results, print (and optionally place) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="store_true",
                        help="only write the committed results' table into README.md")
    parser.add_argument("--out", type=Path, default=OUT,
                        help="results file (default: benchmarks/results/light_models.json)")
    args = parser.parse_args()
    if args.table:
        block = render(json.loads(OUT.read_text()))
        write_between(README, START, END, block.rstrip("\n"))
        print(block)
        return
    import torch

    torch.set_num_threads(1)
    doc = {**provenance(), "encoder": encoder_cost(), "heads": []}
    for key, title in HEADS:
        doc["heads"].append({
            "row": key, "title": title, "cost": head_cost(key, CLASSES["ravdess"]),
            "scores": {table: fold_scores(table, key) for table in ("ravdess", "emodb")},
        })
        print(f"{key}: {doc['heads'][-1]['cost']}", file=sys.stderr, flush=True)
    write_text(args.out, json.dumps(doc, indent=1) + "\n")
    print(render(doc))


if __name__ == "__main__":
    main()
