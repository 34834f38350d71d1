"""How faithful and how plausible `emovox explain` is, on speakers the model never heard (#17).

Per fold of a corpus's literature protocol (RAVDESS: 6 folds of 4 actors; EmoDB: leave one
speaker out), the default recipe is fitted on the fold's training speakers and a spread of at
most ``--per-fold`` of the fold's test recordings is explained (``emovox.explain``, every
method the model allows). For each method and each recording:

- **deletion**: silence the top q of the saliency grid's cells (q = 10, 20, 30, 50 %) and
  measure the drop of the predicted emotion's probability, against silencing as many cells
  drawn at random (``--draws`` draws, mean); the ratio at 20 % is the headline (the issue's
  target: at least 1.5 for the best method);
- **insertion**: keep only the top q (silence the rest), against keeping random cells;
- **plausibility** (correctly predicted recordings): the share of the cues with an expected
  direction for the emotion whose z-score inside the salient regions goes that way, against the
  same share for random regions of the same length;
- **cost**: seconds of computation per second of audio, per method (and for the cues).

Each fold is written to ``benchmarks/results/explain/<corpus>/fold_K.json`` when it finishes
(``--folds`` to split a run; finished folds are skipped); ``--table`` writes the README block
from the committed folds.

Usage: ``python benchmarks/explain_faithfulness.py --corpus emodb [--folds 1,2] [--per-fold 20]
[--data DIR] [--cache DIR]`` then ``--table``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emovox import explain  # noqa: E402
from emovox.config import frontend_options, load_recipe  # noqa: E402
from emovox.corpora import load_corpus  # noqa: E402
from emovox.dataset import FeatureBank  # noqa: E402
from emovox.features import build_frontend  # noqa: E402
from emovox.files import provenance, write_between, write_text  # noqa: E402
from emovox.folds import check_fold, make_folds  # noqa: E402
from emovox.inference import Recognizer  # noqa: E402
from emovox.labels import DEFAULT_CLASSES  # noqa: E402
from emovox.train import fit  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "explain"
PROTOCOL = {"ravdess": "ravdess6", "emodb": "emodb_loso"}
SHARES = (0.1, 0.2, 0.3, 0.5)
HEADLINE = 0.2


def spread(utts: list, count: int) -> list:
    """At most ``count`` recordings spread evenly over a fold's test list (sorted by id)."""
    utts = sorted(utts, key=lambda u: u.id)
    if len(utts) <= count:
        return utts
    return [utts[int(k)] for k in np.linspace(0, len(utts) - 1, count).round()]


def probability(rec: Recognizer, signal: np.ndarray, label: str) -> float:
    """The probability of ``label`` for a signal (0 when nothing of it is left to hear)."""
    try:
        result = rec.predict_signal(signal, rec.sample_rate, timeline=False)
    except Exception:  # noqa: BLE001 - a signal silenced away: no evidence left
        return 0.0
    return float(result.probabilities.get(label, 0.0)) if result.speech else 0.0


def deletion_and_insertion(rec: Recognizer, signal: np.ndarray, label: str, values: np.ndarray,
                           hop: float, rng: np.random.Generator, draws: int) -> dict:
    """Probability drops when the top cells (or random ones) are silenced or kept alone."""
    base = probability(rec, signal, label)
    step = int(round(hop * rec.sample_rate))
    n = len(values)
    order = np.argsort(-values, kind="stable")
    out: dict = {"p": base}
    for q in SHARES:
        k = max(1, int(round(q * n)))
        top = np.zeros(n, dtype=bool)
        top[order[:k]] = True

        def drop(mask: np.ndarray) -> float:
            return base - probability(rec, explain.silence(
                signal, rec.sample_rate, explain.cell_spans(mask, step)), label)

        randoms = []
        for _ in range(draws):
            mask = np.zeros(n, dtype=bool)
            mask[rng.choice(n, size=k, replace=False)] = True
            randoms.append(mask)
        out[f"{q:g}"] = {
            "deletion": drop(top), "deletion_random": float(np.mean([drop(m) for m in randoms])),
            # insertion: silence everything but the chosen cells
            "insertion": drop(~top),
            "insertion_random": float(np.mean([drop(~m) for m in randoms]))}
    return out


def agreement(cues: list[dict]) -> float | None:
    """Share of cues with an expected direction whose z-score goes that way."""
    judged = [c for c in cues if c["expected"] in ("+", "-") and c["z"] is not None]
    if not judged:
        return None
    return float(np.mean([(c["z"] > 0) == (c["expected"] == "+") for c in judged]))


def random_spans(duration: float, length: float, rng: np.random.Generator
                 ) -> list[tuple[float, float]]:
    """One span of ``length`` seconds at a random place of ``[0, duration]``."""
    start = float(rng.uniform(0, max(0.0, duration - length)))
    return [(start, min(duration, start + length))]


def run_fold(fold, bank: FeatureBank, frontend, labels: list[str], args) -> dict:  # noqa: ANN001
    """Fit the fold's model, explain its test recordings, measure each method."""
    config = load_recipe("default")
    model = fit(config, list(fold.train) + list(fold.valid), [], labels=labels, bank=bank,
                frontend=frontend, progress=False)
    rec = Recognizer(model, threads=1)
    rng = np.random.default_rng(fold.index)
    items = []
    for utt in spread(list(fold.test), args.per_fold):
        signal = bank.wave(utt)
        seconds = len(signal) / rec.sample_rate
        started = time.perf_counter()
        e = explain.explain_signal(rec, signal, path=utt.id, cues=True)
        total = time.perf_counter() - started
        cost = {}
        for method in e.saliency:  # each method alone, for its own cost
            t0 = time.perf_counter()
            explain.explain_signal(rec, signal, methods=(method,), primary=method, cues=False)
            cost[method] = (time.perf_counter() - t0) / seconds
        cost["all_with_cues"] = total / seconds
        entry = {"id": utt.id, "label": str(utt.label), "predicted": e.label,
                 "seconds": round(seconds, 3), "cost": cost, "methods": {}}
        hop = e.saliency["occlusion"].times[1] - e.saliency["occlusion"].times[0]
        for method, sal in e.saliency.items():
            values = np.asarray(sal.values, dtype=np.float64)
            entry["methods"][method] = deletion_and_insertion(
                rec, signal, e.label, values, hop, rng, args.draws)
        if e.label == str(utt.label):
            doc = e.to_dict()
            length = sum(b - a for a, b in e.regions)
            chance = explain.measure_cues(signal, rec.sample_rate, random_spans(
                e.duration, length, rng), e.duration, e.label)[0]
            entry["plausibility"] = {
                "salient": agreement(doc["cues"]),
                "random": agreement([c.to_dict() for c in chance])}
        items.append(entry)
        print(f"fold {fold.index} {utt.id}: {e.label} ({utt.label}), "
              f"{total:.1f} s", flush=True)
    return {"fold": fold.index, "test_speakers": fold.test_speakers, "n": len(items),
            "per_fold": args.per_fold, "draws": args.draws, "items": items}


def summarise(docs: list[dict]) -> dict:
    """Per method: mean drops (deletion, insertion) at each share, their ratios to random,
    plausibility rates and cost; the most faithful method (largest deletion ratio at 20 %)."""
    items = [i for d in docs for i in d["items"]]
    methods = sorted({m for i in items for m in i["methods"]})
    out: dict = {"folds": len(docs), "recordings": len(items), "methods": {}}
    for m in methods:
        have = [i for i in items if m in i["methods"]]
        row: dict = {"recordings": len(have)}
        for q in SHARES:
            cells = [i["methods"][m][f"{q:g}"] for i in have]
            d = float(np.mean([c["deletion"] for c in cells]))
            dr = float(np.mean([c["deletion_random"] for c in cells]))
            ins = float(np.mean([c["insertion"] for c in cells]))
            ir = float(np.mean([c["insertion_random"] for c in cells]))
            row[f"{q:g}"] = {"deletion": round(d, 4), "deletion_random": round(dr, 4),
                             "deletion_ratio": round(d / dr, 2) if dr > 0 else None,
                             "insertion": round(ins, 4), "insertion_random": round(ir, 4)}
        row["cost"] = round(float(np.mean([i["cost"][m] for i in have])), 3)
        out["methods"][m] = row
    plaus = [i["plausibility"] for i in items if "plausibility" in i]
    sal = [p["salient"] for p in plaus if p["salient"] is not None]
    ran = [p["random"] for p in plaus if p["random"] is not None]
    out["plausibility"] = {"recordings": len(plaus),
                           "salient": round(float(np.mean(sal)), 3) if sal else None,
                           "random": round(float(np.mean(ran)), 3) if ran else None}
    out["cost_all_with_cues"] = round(float(np.mean([i["cost"]["all_with_cues"]
                                                     for i in items])), 3)
    ratios = {m: r[f"{HEADLINE:g}"]["deletion_ratio"] for m, r in out["methods"].items()
              if r[f"{HEADLINE:g}"]["deletion_ratio"] is not None}
    out["most_faithful"] = max(ratios, key=lambda m: ratios[m]) if ratios else None
    return out


README = REPO / "README.md"
START, END = "<!-- explain-faithfulness:start -->", "<!-- explain-faithfulness:end -->"
FOLDS = {"ravdess": 6, "emodb": 10}
NAMES = {"ravdess": "RAVDESS", "emodb": "EmoDB"}


def evaluation(corpus: str) -> dict | None:
    """The summary over a corpus's committed folds (None before the first)."""
    docs = [json.loads(p.read_text()) for p in sorted((OUT / corpus).glob("fold_*.json"))]
    return summarise(docs) if docs else None


def render_table() -> str:
    """The README's table: deletion at 20 % against random, per corpus and method."""
    lines = ["| corpus | folds | recordings | method | probability drop, top 20 % silenced | "
             "random 20 % silenced | ratio | drop, top 20 % kept alone (lower: better) | "
             "random 20 % kept alone | seconds per second of audio |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    notes = []
    for corpus in ("ravdess", "emodb"):
        sm = evaluation(corpus)
        if sm is None:
            lines.append(f"| {NAMES[corpus]} | not run yet | | | | | | | | |")
            continue
        folds = (str(sm["folds"]) if sm["folds"] == FOLDS[corpus]
                 else f"{sm['folds']} of {FOLDS[corpus]} (so far)")
        for m, row in sm["methods"].items():
            h = row[f"{HEADLINE:g}"]
            ratio = "" if h["deletion_ratio"] is None else f"{h['deletion_ratio']:.2f}"
            lines.append(f"| {NAMES[corpus]} | {folds} | {row['recordings']} | {m} | "
                         f"{h['deletion']:.3f} | {h['deletion_random']:.3f} | {ratio} | "
                         f"{h['insertion']:.3f} | {h['insertion_random']:.3f} | "
                         f"{row['cost']:.2f} |")
        p = sm["plausibility"]
        if p["salient"] is not None:
            notes.append(f"{NAMES[corpus]}: most faithful {sm['most_faithful']}; of the cues "
                         f"with an expected direction, {100 * p['salient']:.0f} % go that way "
                         f"in the salient regions against {100 * (p['random'] or 0):.0f} % in "
                         f"random regions of the same length ({p['recordings']} correctly "
                         f"predicted recordings); explaining with every method and the cues "
                         f"costs {sm['cost_all_with_cues']:.2f} s per second of audio.")
    return "\n".join(lines + ([""] + notes if notes else []))


DATA = REPO / "src" / "emovox" / "data" / "explain_faithfulness.json"


def shipped_record() -> dict:
    """What the package ships for `emovox explain` (``measured_faithfulness``).

    Per method and corpus the deletion ratio at 20 %, and the methods by their mean ratio.
    """
    methods: dict = {}
    for corpus in ("ravdess", "emodb"):
        sm = evaluation(corpus)
        if sm is None:
            continue
        for m, row in sm["methods"].items():
            h = row[f"{HEADLINE:g}"]
            methods.setdefault(m, {})[corpus] = {
                "deletion_ratio_20": h["deletion_ratio"], "folds": sm["folds"],
                "recordings": row["recordings"]}
    mean = {m: float(np.mean([v["deletion_ratio_20"] for v in per.values()
                              if v["deletion_ratio_20"] is not None] or [0.0]))
            for m, per in methods.items()}
    return {"what": "probability drop when a method's top 20 % of a recording is silenced, "
                    "over the drop for random 20 % (benchmarks/explain_faithfulness.py, "
                    "speaker-independent test folds)",
            "methods": methods, "order": sorted(mean, key=lambda m: -mean[m])}


def update_readme() -> None:
    """Write :func:`render_table` between the README's markers, and :data:`DATA`."""
    write_between(README, START, END, render_table())
    record = shipped_record()
    if record["methods"]:
        write_text(DATA, json.dumps(record, indent=1) + "\n")


def main() -> None:
    """Run the missing folds of a corpus (or write the README table)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=sorted(PROTOCOL))
    parser.add_argument("--folds", default=None, help="folds to run, e.g. 1,2")
    parser.add_argument("--per-fold", type=int, default=20)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None,
                        help="results folder (default benchmarks/results/explain/<corpus>)")
    parser.add_argument("--table", action="store_true",
                        help="write the README table and the figures the package ships")
    args = parser.parse_args()
    if args.table:
        update_readme()
        return
    if not args.corpus:
        parser.error("give --corpus (or --table)")
    if args.per_fold < 1 or args.draws < 1:
        parser.error("--per-fold and --draws must be at least 1")
    config = load_recipe("default")
    utts = sorted(load_corpus(args.corpus, args.data / args.corpus, classes="default7"),
                  key=lambda u: u.id)
    folds = make_folds(utts, PROTOCOL[args.corpus])
    for fold in folds:
        check_fold(fold)
    wanted = {int(x) for x in args.folds.split(",")} if args.folds else {f.index for f in folds}
    out = args.out or OUT / args.corpus
    out.mkdir(parents=True, exist_ok=True)
    todo = [f for f in folds
            if f.index in wanted and not (out / f"fold_{f.index}.json").exists()]
    if not todo:
        return
    frontend = build_frontend(frontend_options(config))
    bank = FeatureBank(frontend, utts, args.cache, config.data.cache_dtype, True)
    for fold in todo:
        doc = {**provenance(), **run_fold(dataclasses.replace(fold), bank, frontend,
                                          list(DEFAULT_CLASSES), args)}
        write_text(out / f"fold_{fold.index}.json", json.dumps(doc, indent=1))
        print(f"fold {fold.index} written", flush=True)


if __name__ == "__main__":
    main()
