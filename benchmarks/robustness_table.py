"""The README's robustness table, from the committed results of `emovox robustness`.

Reads every ``benchmarks/results/robustness/<run>/<test set>/results.json`` and writes, between
the README's ``robustness-table`` markers, one table per run: a row per condition (clean first,
then one representative strength per family: the 10 dB noises, RT60 0.6 s, telephone, the
codecs, -20 dB gain, clipping at 0.1), a column pair per test set and normalisation mode.

    python benchmarks/robustness_table.py          # print and update README.md
    python benchmarks/robustness_table.py --print  # print only
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "robustness"
ROWS = ["clean", "white_10db", "pink_10db", "babble_10db", "reverb_0.6s", "telephone",
        "mp3_low", "opus_low", "gain_-20db", "clip_0.1"]
START, END = "<!-- robustness-table:start -->", "<!-- robustness-table:end -->"


def table(run: Path) -> str:
    """One run's table: UA (and the most over-predicted class) per condition, test set, mode."""
    docs = [json.loads(p.read_text()) for p in sorted(run.glob("*/results.json"))]
    if not docs:
        return ""
    cols = [(d, mode) for d in docs for mode in d["adaptations"]]
    head = ["condition"] + [f"{d['test'].split(' (')[0]} ({mode})" for d, mode in cols]
    lines = [f"**`{run.name}`**: " + "; ".join(f"{d['test']} ({d['n']} utterances) tested with "
                                            f"`{d['model']}`" for d in docs)
             + f". `{docs[0]['command']}` at revision {docs[0]['git_revision'][:7]}.", "",
             "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name in [r for r in ROWS if any(r in d["results"] for d in docs)]:
        cells = []
        for d, mode in cols:
            r = d["results"].get(name, {}).get(mode)
            if r is None:
                cells.append("—")
                continue
            worst = r["max_share_excess"]
            flag = f"; {worst['class']} +{worst['points']:.0f}" if worst["points"] > 20 else ""
            cells.append(f"{r['ua']:.1f}{flag}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "UA in % (in brackets: normalisation mode), on the classes the model and the "
              "test set share; after a UA, a class the model answers more than 20 points more "
              "often than it occurs. Every condition, ECE and the drops are in the run's "
              "`report.md`."]
    return "\n".join(lines)


def main() -> None:
    """Print the tables; update the README unless --print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="do not touch README.md")
    args = parser.parse_args()
    text = "\n\n".join(t for t in (table(run) for run in sorted(RESULTS.iterdir())
                                   if run.is_dir()) if t)
    print(text)
    if args.print:
        return
    readme = REPO / "README.md"
    content = readme.read_text()
    if START not in content or END not in content:
        raise SystemExit("README.md has no robustness-table markers")
    head, rest = content.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{text}\n{END}{tail}")


if __name__ == "__main__":
    main()
