"""EmoDB: training on the listening test's label distributions against the hard labels (#19).

Reads the committed EmoDB leave-one-speaker-out folds of each pair of table rows (a model
trained on the labels, the same recipe trained on the distributions, ``data.targets =
distribution``; both by ``benchmarks/ser_table.py``) and scores every fold's stored test
predictions three ways: UA on the labels, calibration (ECE, %), and the six label-distribution
measures against the listening test's distributions (``erkennung.txt``: the share of 20
listeners who recognised the intended emotion, the rest spread evenly over the other six: the
loader's declared choice). The measures need the corpus for the distributions, never the audio.

Writes ``benchmarks/results/emodb/soft_targets.json`` and the README block between the
``soft-targets`` markers.

Usage: ``python benchmarks/soft_targets.py [--data DIR]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emovox.corpora import load_corpus  # noqa: E402
from emovox.evaluate import LDL_MEASURES, expected_calibration_error, ldl_measures  # noqa: E402
from emovox.files import provenance, write_between, write_text  # noqa: E402
from emovox.targets import distribution_matrix  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "emodb"
#: (label-trained row, distribution-trained row, what they are)
PAIRS = (("whisper_logreg", "whisper_logreg_soft", "Whisper-tiny + logistic regression"),
         ("mll", "mll_soft", "MLL tuned here"))
README = REPO / "README.md"
START, END = "<!-- soft-targets:start -->", "<!-- soft-targets:end -->"


def fold_scores(fold: dict, labels: list[str], by_id: dict) -> dict:
    """UA, ECE and the LDL measures of one fold's stored predictions."""
    preds = fold["predictions"]
    probs = np.array([[p["probabilities"][name] for name in labels] for p in preds])
    utts = [by_id[p["id"]] for p in preds]
    truth = np.array([labels.index(u.label) for u in utts])
    guess = probs.argmax(axis=1)
    ua = float(np.mean([np.mean(guess[truth == k] == k) for k in np.unique(truth)]))
    target = distribution_matrix(utts, labels)
    return {"fold": fold["fold"], "ua": 100 * ua,
            "ece": 100 * expected_calibration_error(truth, probs),
            **ldl_measures(target, probs)}


def score_row(row: str, by_id: dict) -> dict | None:
    """Every committed fold of a row, scored; ``None`` before any fold exists."""
    folder = RESULTS / row / "folds"
    files = sorted(folder.glob("fold_*.json"), key=lambda p: int(p.stem.split("_")[1]))
    if not files:
        return None
    labels = json.loads((RESULTS / row / "results.json").read_text())["labels"]
    folds = [json.loads(p.read_text()) for p in files]
    scored = [fold_scores(f, labels, by_id) for f in folds]
    keys = ("ua", "ece", *LDL_MEASURES)
    return {"folds": len(scored), "revisions": sorted({f.get("git_revision") or "" for f in folds}),
            "mean": {k: float(np.mean([s[k] for s in scored])) for k in keys},
            "per_fold": scored}


def render(doc: dict) -> str:
    """The README block: one line per row, the measures as columns."""
    head = ("| system | targets | UA | ECE | Chebyshev ↓ | Clark ↓ | Canberra ↓ | KL ↓ | "
            "cosine ↑ | intersection ↑ | folds |")
    lines = ["**EmoDB, leave-one-speaker-out: labels against the listening test's "
             "distributions as training targets** (mean over folds; UA and ECE in %, the "
             "LDL measures against the distributions; `python benchmarks/soft_targets.py`)",
             "", head, "|" + " --- |" * 11]
    for hard, soft, title in PAIRS:
        for row, targets in ((hard, "labels"), (soft, "distributions")):
            got = doc["rows"].get(row)
            if got is None:
                lines.append(f"| {title} | {targets} |" + " — |" * 8 + " not run |")
                continue
            m = got["mean"]
            lines.append(f"| {title} | {targets} | {m['ua']:.1f} | {m['ece']:.1f} | "
                         f"{m['chebyshev']:.3f} | {m['clark']:.3f} | {m['canberra']:.3f} | "
                         f"{m['kl']:.3f} | {m['cosine']:.3f} | {m['intersection']:.3f} | "
                         f"{got['folds']}/10 |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    if not (args.data / "emodb").is_dir():
        raise SystemExit(f"soft_targets.py: no EmoDB under {args.data} (--data DIR)")
    by_id = {u.id: u for u in load_corpus("emodb", args.data / "emodb")}
    doc = {**provenance(), "rows": {row: score_row(row, by_id) for pair in PAIRS
                                    for row in pair[:2]}}
    write_text(RESULTS / "soft_targets.json", json.dumps(doc, indent=1))
    write_between(README, START, END, render(doc))
    print(render(doc))


if __name__ == "__main__":
    main()
