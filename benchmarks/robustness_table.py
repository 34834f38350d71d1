"""The robustness tables of the README and the model card, from committed `emovox robustness` runs.

Reads ``benchmarks/results/robustness/<run>/<test set>/results.json`` and writes, between the
``robustness-table`` markers of README.md and src/emovox/pretrained/MODEL_CARD.md, one table per
comparison in :data:`SECTIONS`: a row per condition (every condition any of its runs measured,
in the harness's order, then the clean ECE), a column per test set, normalisation mode and run,
so the runs stand side by side.

    python benchmarks/robustness_table.py          # print and update README.md and the card
    python benchmarks/robustness_table.py --print  # print only
    python benchmarks/robustness_table.py --drops default_cv  # a cross-validated run's drops
                                                              # with their standard errors
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emovox.conditions import CONDITIONS  # noqa: E402
from emovox.files import write_text  # noqa: E402
from emovox.robustness import fold_drop_se  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "robustness"
TARGETS = [REPO / "README.md", REPO / "src" / "emovox" / "pretrained" / "MODEL_CARD.md"]
START, END = "<!-- robustness-table:start -->", "<!-- robustness-table:end -->"

#: (title, runs side by side, short names of the runs in the column heads).
SECTIONS = [
    ("Leave one corpus out, every test utterance: the default recipe trained on one corpus, "
     "tested on the other", ["v3_loco", "v4_loco", "default_loco"], ["v3", "v4", "default"]),
    ("In-corpus: the recipe trained on each speaker-independent fold, tested on the fold's "
     "unseen speakers", ["previous_default_cv", "v2_cv", "v4_cv", "default_cv"],
     ["previous", "v2", "v4", "default"]),
    ("Leave one corpus out, every condition, 400 test utterances per corpus",
     ["previous_default_loco", "v4_loco_all", "default_loco_all"], ["previous", "v4", "default"]),
]

#: The adaptation-mode run: clean audio, every test set (all speakers, and only speakers who
#: show one emotion) as a row, every normalisation mode as a column.
COMPOSITION = ("Leave one corpus out, clean, each normalisation mode: all test speakers, and a "
               "subset in which every speaker shows one emotion", "default_composition",
               "v4_composition")


def load_run(name: str) -> dict[str, dict]:
    """A run's results by test corpus name (empty if the run is not committed)."""
    docs = [json.loads(p.read_text()) for p in sorted((RESULTS / name).glob("*/results.json"))]
    return {d["test"].split(" (")[0]: d for d in docs}


def _revision(doc: dict) -> str:
    """The short revision a run records, with its ``-dirty`` mark if it has one."""
    rev = str(doc.get("git_revision") or "unknown")
    return rev[:7] + ("-dirty (see NOTES.md)" if rev.endswith("-dirty") else "")


def _cell(r: dict | None) -> str:
    if r is None:
        return "—"
    worst = r["max_share_excess"]
    flag = f"; {worst['class']} +{worst['points']:.0f}" if worst["points"] > 20 else ""
    return f"{r['ua']:.1f}{flag}"


def section(title: str, names: list[str], short: list[str]) -> str:
    """One comparison: rows are conditions, columns test set x mode x run."""
    runs = [load_run(n) for n in names]
    if not runs[-1]:
        return ""
    tests = sorted(runs[-1])
    modes = [m for m in runs[-1][tests[0]]["adaptations"]]
    cols = [(t, m, k) for t in tests for m in modes for k in range(len(runs))]
    order = ["clean", *CONDITIONS]
    present = {c for run in runs for d in run.values() for c in d["results"]}
    rows = [c for c in order if c in present]
    head = ["condition"] + [f"{t} ({m})" + (f" {short[k]}" if len(runs) > 1 else "")
                            for t, m, k in cols]
    lines = [f"**{title}.**", ""]
    for name, run in zip(names, runs, strict=True):
        for t in tests:
            d = run.get(t)
            if d is not None:
                lines.append(f"- `{name}` / {d['test']}, {d['n']} utterances, `{d['model']}`: "
                             f"`{d['command']}` at {_revision(d)}")
    lines += ["", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for cond in rows:
        cells = [_cell(runs[k].get(t, {}).get("results", {}).get(cond, {}).get(m))
                 for t, m, k in cols]
        lines.append(f"| {cond} | " + " | ".join(cells) + " |")
    ece = []
    for t, m, k in cols:
        r = runs[k].get(t, {}).get("results", {}).get("clean", {}).get(m)
        ece.append("—" if r is None else f"{r['ece']:.1f}")
    lines.append("| ECE % (clean) | " + " | ".join(ece) + " |")
    return "\n".join(lines)


def composition(title: str, name: str, fallback: str) -> str:
    """Rows: test sets; columns: normalisation modes (clean audio); ``fallback``'s run (an
    earlier recipe, said in the title) until ``name`` is committed."""
    run = load_run(name)
    if not run:
        name, run = fallback, load_run(fallback)
        title = f"{title} (`{fallback}`: not yet re-run with today's recipe)"
    if not run:
        return ""
    modes = next(iter(run.values()))["adaptations"]
    lines = [f"**{title}.**", ""]
    first = next(iter(run.values()))
    lines += [f"- `{name}`: `{first['command']}` at {_revision(first)}", "",
              "| test set (utterances) | " + " | ".join(modes) + " |",
              "|" + " --- |" * (len(modes) + 1)]
    for test in sorted(run):
        d = run[test]
        cells = [_cell(d["results"]["clean"].get(m)) for m in modes]
        lines.append(f"| {test} ({d['n']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render() -> str:
    """Every section with a committed run, and the legend."""
    parts = [t for t in (section(*s) for s in SECTIONS) if t]
    parts.append(composition(*COMPOSITION))
    parts = [p for p in parts if p]
    parts.append("UA in %, on the classes the model and the test set share; `none`: each file "
                 "alone (what `emovox predict` does), `batch`: the whole test set standardised "
                 "with its own statistics (`--group-by folder`), `file`: each file with its own, "
                 "`speaker`: each speaker's recordings with theirs; `batch`, `file` and "
                 "`speaker` are *transductive*: they use statistics of the unlabelled test "
                 "recordings (never their labels), which a single new file does not have. "
                 "After a UA, a class answered "
                 "more than 20 points more often than it occurs. `previous`: the default recipe "
                 "before conditioning, multi-condition copies and calibration; `v2`: with "
                 "them, before the frame gate and the layer weights (`frontend.gate_db`, "
                 "`classic.layer_weights`); `v3`: with both, the whole encoder, its last two "
                 "hidden states at half weight; `v4`: the encoder cut after its first two "
                 "layers (`frontend.depth = 2`); `default`: today's recipe, `v4` with the "
                 "training class mix taken out of the head (`classic.prior = \"uniform\"`). "
                 "Older runs (`v2_loco_all`, `v3_cv`, ...) are in "
                 "`benchmarks/results/robustness/`. Every strength, "
                 "the drops, the `uncertain` flag's accuracy and the plots are in each run's "
                 "`report.md`.")
    return "\n\n".join(parts)


def drops(name: str) -> str:
    """Each condition's UA drop in a cross-validated run, with its standard error over the
    folds (:func:`emovox.robustness.fold_drop_se`, from the committed fold UAs), per test set
    and mode."""
    lines = []
    for test, doc in sorted(load_run(name).items()):
        for mode in doc["adaptations"]:
            clean = doc["results"]["clean"][mode]
            if "fold_ua" not in clean:  # not cross-validated
                continue
            for cond in doc["drop"]:
                r = doc["results"][cond][mode]
                se = fold_drop_se(clean["fold_ua"], r["fold_ua"])
                # from the unrounded UAs (the stored drops are rounded to 2 decimals)
                lines.append(f"{test} ({mode}) {cond}: drop {clean['ua'] - r['ua']:.1f}"
                             + ("" if se is None else f" ± {se:.1f}")
                             + f" ({len(r['fold_ua'])} folds)")
    return "\n".join(lines)


def main() -> None:
    """Print the tables; update the README and the model card unless --print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="do not touch any file")
    parser.add_argument("--drops", metavar="RUN", help="only print a cross-validated run's "
                        "drops with their standard errors over folds")
    args = parser.parse_args()
    if args.drops:
        text = drops(args.drops)
        if not text:
            raise SystemExit(f"robustness_table.py: {args.drops!r} is not a committed "
                             f"cross-validated run (in {RESULTS})")
        print(text)
        return
    text = render()
    print(text)
    if args.print:
        return
    for target in TARGETS:
        content = target.read_text()
        if START not in content or END not in content:
            raise SystemExit(f"{target} has no robustness-table markers")
        head, rest = content.split(START, 1)
        _, tail = rest.split(END, 1)
        write_text(target, f"{head}{START}\n{text}\n{END}{tail}")


if __name__ == "__main__":
    main()
