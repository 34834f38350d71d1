"""CO-VADA against the baseline, plain conversion and a random control: UA and the gender gap (#18).

Four rows, each the recipe (``--recipe``, default ``default``: the bundled model's, whose
features give CO-VADA's early model (``augment.covada_C``, chosen for them) a clear
confidence signal; on ``whisper_logreg``'s single-layer features the early model is barely
above chance, so the selection would be nearly uninformed) plus overrides (:data:`ROWS`):

- ``baseline``: the recipe as it is;
- ``covada``: ``augment.covada = true`` (the early model's most confidently learned 30 % of
  each class get a voice-converted copy, kept if the early model still hears the emotion);
- ``convert_all``: the same with ``augment.covada_share = 1.0``: every training recording
  converted (and checked), so it asks whether *choosing* matters;
- ``random``: ``augment.covada_score = "random"``: the same share per class picked by a seeded
  draw (``augment.covada_seed``), the same conversion and check.

Two corpora, each with its speaker-independent protocol: RAVDESS (``ravdess6``: 6 folds of 4
actors) and EmoDB (``emodb_loso``: leave one of 10 speakers out). Each (corpus, row) runs
through :func:`emovox.experiment.run_cv` into ``benchmarks/results/covada/<corpus>/<row>/``:
``folds/fold_K.json`` is written as each fold finishes (with provenance and every held-out
prediction), and a fold already there is skipped, so a long run can be split across sessions
and resumed. A run never touches the README.

``--table`` reads only the committed fold files: for each corpus and row with folds, it
merges them (:func:`emovox.experiment.merge_results`), audits the merged predictions by gender
(:func:`emovox.fairness.audit_results`: TPR gap, demographic-parity gap, each with its 95 %
speaker-bootstrap interval) and takes UA and macro-F1 pooled over every held-out recording
with the same speaker bootstrap (the audit with one group, the corpus), then writes
``benchmarks/results/covada/summary.json`` (provenance, every figure, per-class gaps, the
per-gender scores and, where the fold records carry CO-VADA's plan, what it converted) and
the README block between the ``covada`` markers. The corpora are needed for the truth,
speakers and genders of the ids the fold files keep (RAVDESS: gender from the actor number;
EmoDB: from its speaker table).

Usage (from the repository root; ``OMP_NUM_THREADS=1`` on a shared machine)::

    python benchmarks/covada_table.py --corpus emodb --row baseline --folds 1,2 \\
        --data ../shared/data --cache DIR
    python benchmarks/covada_table.py --corpus ravdess --row covada        # every missing fold
    python benchmarks/covada_table.py                                     # every row, both
    python benchmarks/covada_table.py --table --data ../shared/data       # README block

``--out DIR`` (exploration) puts the fold files and the summary under DIR and leaves the
README alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emovox.config import config_digest, config_from_dict, load_recipe  # noqa: E402
from emovox.corpora import load_corpus  # noqa: E402
from emovox.experiment import merge_results, run_cv  # noqa: E402
from emovox.fairness import N_BOOT, audit_results  # noqa: E402
from emovox.files import provenance, write_between, write_text  # noqa: E402
from emovox.folds import make_folds  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "covada"
README = REPO / "README.md"
START, END = "<!-- covada:start -->", "<!-- covada:end -->"
CARD = REPO / "src" / "emovox" / "pretrained" / "MODEL_CARD.md"
CARD_START, CARD_END = "<!-- fairness:start -->", "<!-- fairness:end -->"
DEFAULT_DATA = REPO.parent / "shared" / "data"

#: row -> (what it is, the recipe overrides)
ROWS: dict[str, tuple[str, tuple[str, ...]]] = {
    "baseline": ("the recipe as it is", ()),
    "covada": ("CO-VADA: the most confidently learned 30 % per class converted",
               ("augment.covada=true",)),
    "convert_all": ("every training recording converted (`covada_share=1.0`)",
                    ("augment.covada=true", "augment.covada_share=1.0")),
    "random": ("control: 30 % per class picked at random (`covada_score=\"random\"`)",
               ("augment.covada=true", 'augment.covada_score="random"')),
}
#: corpus -> (protocol, how the README names it, folds of the protocol)
CORPORA: dict[str, tuple[str, str, int]] = {
    "ravdess": ("ravdess6", "RAVDESS, 6 folds of 4 actors (12 female, 12 male)", 6),
    "emodb": ("emodb_loso", "EmoDB, leave one of 10 speakers out (5 female, 5 male)", 10),
}


def row_sets(row: str) -> list[str]:
    """The ``--set`` overrides of a row."""
    if row not in ROWS:
        raise SystemExit(f"covada_table.py: unknown row {row!r} (rows: {', '.join(ROWS)})")
    return list(ROWS[row][1])


def row_config(recipe: str, row: str) -> Any:
    """The row's resolved config: the recipe with the row's overrides."""
    return load_recipe(recipe, row_sets(row))


def load_utterances(corpus: str, data: Path, config: Any = None) -> list:
    """The corpus (with the recipe's classes, if it names any), or a clear exit."""
    root = data / corpus
    if not root.is_dir():
        raise SystemExit(f"covada_table.py: no {corpus} under {data} (give --data DIR)")
    classes = None if config is None else config.data.classes
    options = {} if classes is None else {
        "classes": classes if isinstance(classes, str) else ",".join(classes)}
    return load_corpus(corpus, root, **options)


def fold_files(folder: Path) -> list[Path]:
    """``folder/folds/fold_K.json``, by fold number."""
    return sorted((folder / "folds").glob("fold_*.json"), key=lambda p: int(p.stem.split("_")[1]))


def done_folds(folder: Path) -> set[int]:
    return {int(p.stem.split("_")[1]) for p in fold_files(folder)}


# --- running ----------------------------------------------------------------------------------


def run_row(corpus: str, row: str, args: argparse.Namespace, root: Path) -> None:
    """The row's missing folds (of ``--folds``, default all) through run_cv."""
    protocol, _, _ = CORPORA[corpus]
    config = row_config(args.recipe, row)
    out = root / corpus / row
    previous = out / "results.json"
    if previous.exists():  # never mix two configs' folds in one row
        before = json.loads(previous.read_text()).get("config")
        if before is not None and (json.loads(json.dumps(config_from_dict(before).to_dict()))
                                   != json.loads(json.dumps(config.to_dict()))):
            raise SystemExit(f"covada_table.py: {out} holds folds of another config (recipe "
                             f"{before.get('name')!r}); move them away or give --out")
    utts = load_utterances(corpus, args.data, config)
    every = [f.index for f in make_folds(utts, protocol)]
    asked = args.folds or every
    unknown = sorted(set(asked) - set(every))
    if unknown:
        raise SystemExit(f"covada_table.py: {corpus} has folds {every[0]}..{every[-1]}, "
                         f"not {unknown}")
    todo = [k for k in asked if k not in done_folds(out)]
    if not todo:
        print(f"{corpus}/{row}: folds {','.join(map(str, asked))} already done", flush=True)
        return
    print(f"{corpus}/{row}: running folds {','.join(map(str, todo))} "
          f"({args.recipe} {' '.join(row_sets(row)) or '(as is)'})", flush=True)
    run_cv(config, utts, corpus=corpus, protocol=protocol, out_dir=out, folds=todo,
           cache_dir=args.cache, argv=sys.argv, progress=not args.quiet)


# --- the table ----------------------------------------------------------------------------------


def _round(value: Any, digits: int = 2) -> Any:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [_round(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: _round(v, digits) for k, v in value.items()}
    return round(float(value), digits)


def covada_summary(folds: list[dict]) -> dict | None:
    """What CO-VADA converted, from the fold records' ``covada`` entries (mean per fold).

    ``None`` when no fold record carries the plan (``model.info["covada"]``).
    """
    plans = [f["covada"] for f in folds if isinstance(f.get("covada"), dict)]
    if not plans:
        return None

    def mean(key: str) -> float | None:
        have = [float(p[key]) for p in plans if p.get(key) is not None]
        return float(np.mean(have)) if have else None

    genders = sorted({g for p in plans for g in (p.get("selected_per_gender") or {})})
    return {"folds": len(plans),
            "score": sorted({str(p.get("score")) for p in plans}),
            "n_scored": mean("n_scored"), "n_selected": mean("n_selected"),
            "n_kept": mean("n_kept"), "n_dropped": mean("n_dropped"),
            "early_accuracy": mean("early_accuracy"),
            "score_selected": mean("score_selected"), "score_rest": mean("score_rest"),
            "selected_per_gender": {g: float(np.mean([(p.get("selected_per_gender") or {})
                                                      .get(g, 0) for p in plans]))
                                    for g in genders}}


def summarise_row(folder: Path, corpus: str, utts: list, n_boot: int = N_BOOT) -> dict | None:
    """A row's figures from its fold files (``None`` before any fold exists).

    Merges the folds present into ``results.json`` (config, labels and fold count from the
    run's own ``results.json``), then two audits of the merged predictions with the same
    speaker bootstrap: by gender (the gaps) and as one group (UA and macro-F1 intervals).
    """
    files = fold_files(folder)
    if not files:
        return None
    run = json.loads((folder / "results.json").read_text())
    config = config_from_dict(run["config"])
    merge_results(folder, config=config, corpus=run["corpus"],
                  protocol=run["protocol"], n_folds=run["n_folds"], labels=run["labels"],
                  argv=sys.argv, fold_seed=run.get("fold_seed", 0))
    results = folder / "results.json"
    merged = json.loads(results.read_text())
    folds = [json.loads(p.read_text()) for p in files]
    by_gender = audit_results(results, utts, group="gender", n_boot=n_boot, seed=0)
    overall = audit_results(results, utts, group="corpus", n_boot=n_boot, seed=0)
    whole = overall["groups"][corpus]
    if whole.get("too_small"):  # one test speaker so far: the scores, no interval
        whole = {**whole, **overall["overall"], "ua_ci": None, "macro_f1_ci": None}
    gaps = by_gender["gaps"]
    groups = {g: ({"too_small": True, "n_speakers": v["n_speakers"], "n": v["n"]}
                  if v.get("too_small") else
                  {k: _round(v[k]) for k in ("n", "n_speakers", "ua", "ua_ci", "macro_f1",
                                             "macro_f1_ci", "tpr", "prediction_rate",
                                             "truth_rate")})
              for g, v in by_gender["groups"].items()}
    versions = (len(config.classic.speeds(config.augment)) + config.augment.condition_copies
                if config.method == "logreg" else None)
    return {
        "recipe": run["recipe"],
        "protocol": run["protocol"],
        "versions_per_recording": versions,
        "config_digest": config_digest(config.to_dict()),  # re-resolved: new defaults count as set
        "folds": sorted(f["fold"] for f in folds),
        "n_folds": run["n_folds"],
        "missing_folds": merged["missing_folds"],
        "n": whole["n"], "n_speakers": whole["n_speakers"],
        "ua": _round(whole["ua"]), "ua_ci": _round(whole["ua_ci"]),
        "macro_f1": _round(whole["macro_f1"]), "macro_f1_ci": _round(whole["macro_f1_ci"]),
        "mean_fold_ua": _round(merged["mean"]["ua"]),
        **{key: _round(gaps.get(key)) for key in (
            "tpr_gap", "tpr_gap_ci", "tpr_gap_bias", "dp_gap", "dp_gap_ci", "dp_gap_bias",
            "truth_rate_gap", "tpr_gap_per_class", "dp_gap_per_class")},
        "gender_groups": groups,
        "covada": covada_summary(folds),
        "revisions": sorted({str(f.get("git_revision")) for f in folds}),
        "train_seconds": _round(float(np.mean([f.get("train_seconds") or 0.0 for f in folds])),
                                1),
        "notes": by_gender["notes"],
    }


def summarise(root: Path, data: Path, n_boot: int = N_BOOT) -> dict:
    """Every corpus and row with fold files under ``root``, with provenance."""
    doc: dict[str, Any] = {**provenance(), "n_boot": n_boot, "corpora": {}}
    for corpus in CORPORA:
        rows = {row: root / corpus / row for row in ROWS}
        if not any(fold_files(folder) for folder in rows.values()):
            doc["corpora"][corpus] = {row: None for row in ROWS}
            continue
        utts = load_utterances(corpus, data)  # every class: the audit takes the run's own
        doc["corpora"][corpus] = {row: summarise_row(folder, corpus, utts, n_boot)
                                  for row, folder in rows.items()}
    return doc


def _ci(value: float | None, ci: list | None, bold: bool = False) -> str:
    if value is None:
        return "—"
    text = f"**{value:.1f}**" if bold else f"{value:.1f}"
    return text + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")


def _converted(got: dict, row: str) -> str:
    if row == "baseline":
        return "—"
    plan = got.get("covada")
    if plan is None:
        return "not recorded"
    genders = ", ".join(f"{g[0].upper()} {n:.0f}" for g, n in
                        plan["selected_per_gender"].items())
    kept = "" if plan["n_kept"] is None else f"; {plan['n_kept']:.0f} kept"
    return (f"{plan['n_selected']:.0f} of {plan['n_scored']:.0f}{kept} ({genders})")


def render_corpus(corpus: str, rows: dict[str, dict | None]) -> list[str]:
    """One corpus's table."""
    protocol, title, n_folds = CORPORA[corpus]
    lines = [f"**{title}** (`{protocol}`)", "",
             "| row | folds | UA | macro-F1 | gender TPR gap | gender DP gap | UA female / male "
             "| converted per fold |",
             "|" + " --- |" * 8]
    notes = []
    for row in ROWS:
        got = rows.get(row)
        name = f"`{row}`"
        if got is None:
            lines.append(f"| {name} | not run |" + " — |" * 6)
            continue
        done = len(got["folds"])
        folds = f"{done}/{got['n_folds']}"
        if got["missing_folds"]:
            folds = f"**partial {folds}**"
        if any(r.endswith("-dirty") or r == "None" for r in got["revisions"]):
            folds += " (dirty)"
        g = got["gender_groups"]
        female, male = g.get("female") or {}, g.get("male") or {}
        by_gender = (f"{_ci(female.get('ua'), None)} / {_ci(male.get('ua'), None)}"
                     if female.get("ua") is not None and male.get("ua") is not None else "—")
        lines.append(f"| {name} | {folds} | {_ci(got['ua'], got['ua_ci'])} | "
                     f"{_ci(got['macro_f1'], got['macro_f1_ci'])} | "
                     f"{_ci(got['tpr_gap'], got['tpr_gap_ci'])} | "
                     f"{_ci(got['dp_gap'], got['dp_gap_ci'])} | {by_gender} | "
                     f"{_converted(got, row)} |")
        if got.get("truth_rate_gap") is not None and not notes:
            notes.append(f"the DP gap of the true labels themselves (the genders' class mix, "
                         f"`{row}` row's test speakers) is {got['truth_rate_gap']:.1f}")
    partial = [row for row, got in rows.items() if got and got["missing_folds"]]
    if partial:
        notes.append(f"partial rows ({', '.join(partial)}) cover only the test speakers of "
                     "the folds done: not comparable with complete rows")
    if notes:
        sentence = "; ".join(notes)
        lines += ["", sentence[0].upper() + sentence[1:] + "."]
    reading = _reading(rows)
    if reading:
        lines += ["", reading[0].upper() + reading[1:] + "."]
    return lines


def _inside_baseline(base: dict, got: dict) -> bool:
    """Whether a row's gender TPR gap lies inside the baseline's 95 % interval."""
    lo, hi = base["tpr_gap_ci"] or (None, None)
    return lo is not None and lo <= got["tpr_gap"] <= hi


def _reading(rows: dict[str, dict | None]) -> str:
    """What the complete rows say against the complete baseline: gap changes, copies' weight."""
    base = rows.get("baseline")
    if not base or base["missing_folds"] or base.get("tpr_gap") is None:
        return ""
    done = {row: got for row, got in rows.items()
            if row != "baseline" and got and not got["missing_folds"]
            and got.get("tpr_gap") is not None}
    if not done:
        return ""
    changes = ", ".join(f"`{row}` {got['tpr_gap']:.1f} ({got['tpr_gap'] - base['tpr_gap']:+.1f})"
                        for row, got in done.items())
    inside = all(_inside_baseline(base, got) for got in done.values())
    text = (f"against the baseline's gender TPR gap of {base['tpr_gap']:.1f}: {changes}"
            + ("; every one lies inside the baseline's interval, so none is a change these "
               "speakers can tell from chance" if inside else ""))
    versions = base.get("versions_per_recording")
    weights = [f"`{row}` {100 * plan['n_kept'] / (plan['n_scored'] * versions):.1f} %"
               for row, got in done.items()
               if versions and (plan := got.get("covada")) and plan.get("n_kept") is not None]
    if weights:
        dropped = ", ".join(f"`{row}` {got['covada']['n_dropped']:.0f} of "
                            f"{got['covada']['n_selected']:.0f}" for row, got in done.items()
                            if got.get("covada") and got["covada"].get("n_dropped") is not None)
        text += (f". The kept copies are {', '.join(weights)} of the training rows: every "
                 f"recording already trains in {versions} versions (clean, speed-perturbed, "
                 "recording conditions), and the speed copies already move its pitch and "
                 f"formants a little; the early model's check dropped {dropped} copies per "
                 "fold (mean)")
    return text


def render(doc: dict | None) -> str:
    """The README block from the summary (``None``: nothing run yet)."""
    recipes = sorted({got["recipe"] for rows in (doc or {}).get("corpora", {}).values()
                      for got in rows.values() if got})
    if not recipes:
        return ("The CO-VADA benchmark (`benchmarks/covada_table.py`: baseline, CO-VADA, "
                "every recording converted and a random-subset control, on RAVDESS and EmoDB "
                "with the default recipe) has not been run yet.")
    revisions = sorted({r[:10] + ("-dirty" if r.endswith("-dirty") else "")
                        for rows in doc["corpora"].values() for got in rows.values() if got
                        for r in got["revisions"]})
    head = [
        f"**CO-VADA against plain conversion and a random control** "
        f"(`python benchmarks/covada_table.py`; recipe `{', '.join(recipes)}`; revision "
        f"{', '.join(revisions)}). Rows: " + "; ".join(f"`{row}`: {what}" for row, (what, _)
                                                        in ROWS.items()) + ". "
        "UA and macro-F1 pooled over every held-out recording; the gender TPR gap (mean over "
        "classes of the female-male difference in recall) and DP gap (largest over classes of "
        "the difference in how often the class is predicted), in points; every figure with "
        f"its 95 % interval from {doc['n_boot']} bootstrap replicates that resample speakers "
        "(the gaps' intervals bias-corrected). *Converted per fold*: recordings CO-VADA "
        "selected (by gender) of the training recordings, and the copies kept by the check, "
        "mean per fold.", ""]
    body: list[str] = []
    for corpus, rows in doc["corpora"].items():
        body += render_corpus(corpus, rows) + [""]
    return "\n".join(head + body).rstrip()


def _largest_class_gap(got: dict) -> str:
    """The class whose recall differs most between the genders, with both recalls."""
    per_class = {c: v for c, v in (got.get("tpr_gap_per_class") or {}).items() if v is not None}
    female = (got["gender_groups"].get("female") or {}).get("tpr") or {}
    male = (got["gender_groups"].get("male") or {}).get("tpr") or {}
    if not per_class or not female or not male:
        return "—"
    worst = max(per_class, key=lambda c: per_class[c])
    return (f"{worst}: {per_class[worst]:.1f} (female {female.get(worst, 0):.1f}, "
            f"male {male.get(worst, 0):.1f})")


def render_card_block(doc: dict | None, recipe: str = "default") -> str:
    """The model card's fairness section: the ``baseline`` rows (the bundled model's recipe).

    The bundled model itself was trained on every speaker of both corpora, so it is audited
    through its recipe's held-out predictions; CO-VADA's effect is added once its row is
    complete on a corpus.
    """
    want = config_digest(load_recipe(recipe).to_dict())
    corpora = {c: rows for c, rows in ((doc or {}).get("corpora") or {}).items()
               if (rows.get("baseline") or {}).get("config_digest") == want}
    if not corpora:
        return ("Not measured for this model's recipe as it is now: `benchmarks/covada_table.py` "
                "(its `baseline` rows: the recipe in speaker-independent cross-validation, "
                "audited by gender with `emovox fairness`) writes this section.")
    lines = [
        "`emovox fairness` (`emovox.fairness.audit_results`) on the held-out predictions of "
        f"this model's recipe (`{recipe}`) in speaker-independent cross-validation, one corpus "
        "at a time (the `baseline` rows of `benchmarks/covada_table.py`, "
        "`benchmarks/results/covada/summary.json`). The shipped model was trained on every "
        "speaker of both corpora, so it cannot be audited on them itself; these figures are "
        "its recipe's on speakers it did not see. Gaps in points; 95 % intervals from "
        f"{doc['n_boot']} bootstrap replicates that resample speakers (the gaps' intervals "
        "bias-corrected). TPR gap: the difference in recall between the genders, averaged "
        "over the classes; DP gap: the largest difference in how often a class is predicted.", "",
        "| corpus | folds | UA female | UA male | TPR gap | DP gap | DP gap of the true labels "
        "| class with the largest recall gap |",
        "|" + " --- |" * 8]
    after = []
    for corpus, rows in corpora.items():
        got = rows["baseline"]
        g = got["gender_groups"]
        female, male = g.get("female") or {}, g.get("male") or {}
        folds = f"{len(got['folds'])}/{got['n_folds']}"
        if got["missing_folds"]:
            folds = f"partial {folds}"
        truth = got.get("truth_rate_gap")
        lines.append(
            f"| {CORPORA[corpus][1]} | {folds} | {_ci(female.get('ua'), female.get('ua_ci'))} | "
            f"{_ci(male.get('ua'), male.get('ua_ci'))} | "
            f"{_ci(got['tpr_gap'], got['tpr_gap_ci'])} | {_ci(got['dp_gap'], got['dp_gap_ci'])} "
            f"| {'—' if truth is None else f'{truth:.1f}'} | {_largest_class_gap(got)} |")
        covada = rows.get("covada")
        if covada and not covada["missing_folds"] and not got["missing_folds"]:
            what = ("" if after else " (voice-converted copies of the most confidently "
                    "learned recordings, `augment.covada = true`)")
            after.append(
                f"{CORPORA[corpus][1].split(',')[0]}: with CO-VADA{what} the TPR gap is "
                f"{covada['tpr_gap']:.1f} against {_ci(got['tpr_gap'], got['tpr_gap_ci'])} "
                f"(UA {covada['ua']:.1f} against {got['ua']:.1f})"
                + ("; inside the baseline's interval: no change these speakers can tell from "
                   "chance" if _inside_baseline(got, covada) else "") + ".")
    lines += ["", "The DP gap of the true labels is how much the genders' own class mix "
              "differs in the test speakers: that much of a DP gap is the data, not the model. "
              "Two acted corpora, two binary gender labels from the corpora's speaker tables, "
              "10 to 24 speakers: the intervals are wide, and they say nothing of age, accent, "
              "language or recording setting."]
    if after:
        lines += ["", " ".join(after) + " The shipped model is trained without CO-VADA."]
    return "\n".join(lines)


def load_summary(root: Path = OUT) -> dict | None:
    path = root / "summary.json"
    return json.loads(path.read_text()) if path.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=tuple(CORPORA), action="append",
                        help="corpus to run (repeatable; default both)")
    parser.add_argument("--row", choices=tuple(ROWS), action="append",
                        help="row to run (repeatable; default all four)")
    parser.add_argument("--folds", default=None, help="folds to run, e.g. 1,2 (default all)")
    parser.add_argument("--recipe", default="default")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache", type=Path, default=None,
                        help="feature cache (default $EMOVOX_CACHE or ~/.cache/emovox)")
    parser.add_argument("--bootstrap", type=int, default=N_BOOT, help="replicates (--table)")
    parser.add_argument("--table", action="store_true", help="only merge, audit and write "
                        "summary.json and the README block from the fold files")
    parser.add_argument("--out", type=Path, default=None, help="exploration: fold files and "
                        "summary go here instead of the committed folder; the README is left "
                        "alone")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    root = args.out or OUT
    if args.table:
        doc = summarise(root, args.data, args.bootstrap)
        root.mkdir(parents=True, exist_ok=True)
        write_text(root / "summary.json", json.dumps(doc, indent=1))
        if args.out is None:
            write_between(README, START, END, render(doc))
            write_between(CARD, CARD_START, CARD_END, render_card_block(doc))
        print(render(doc))
        return
    if args.cache is None:
        from emovox.features import default_cache_dir

        args.cache = default_cache_dir()
    args.folds = [int(k) for k in args.folds.split(",")] if args.folds else None
    for corpus in args.corpus or CORPORA:
        for row in args.row or ROWS:
            run_row(corpus, row, args, root)


if __name__ == "__main__":
    main()
