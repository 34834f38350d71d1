"""The README's speed table, from the committed ``speed.json`` and ``onnx_parity.json``.

Replaces the block between the ``speed-table`` markers of README.md (``--print``: only print).

Usage: ``python benchmarks/speed_table.py [--print]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEED = REPO / "benchmarks" / "results" / "speed.json"
#: ``benchmarks/speed.py --model edge --out`` this: the edge model's column.
SPEED_EDGE = REPO / "benchmarks" / "results" / "speed_edge.json"
#: Earlier runs of ``benchmarks/speed.py`` on other hosts, kept beside today's (``speed.json``,
#: ``speed_edge.json``): speed depends on the processor (the int8 encoder most of all), so each
#: is reported with its host and targets.
OTHER_HOSTS = (REPO / "benchmarks" / "results" / "speed_amd.json",
               REPO / "benchmarks" / "results" / "speed_edge_amd.json")
PARITY = REPO / "benchmarks" / "results" / "onnx_parity.json"
LOAD = REPO / "benchmarks" / "results" / "load.json"
HELD_OUT = REPO / "benchmarks" / "results" / "onnx_held_out.json"
INSTALL = REPO / "benchmarks" / "results" / "install_size.json"
README = REPO / "README.md"
START, END = "<!-- speed-table:start -->", "<!-- speed-table:end -->"


def _run(r: dict | None, memory: bool = False) -> str:
    if not r:
        return "—"
    text = f"{r['seconds']:.2f} s ({r['realtime_factor']:.0f}x)"
    if memory and "peak_rss_mb" in r:
        text += f", {r['peak_rss_mb']:.0f} MB"
    return text


def parity_text(doc: dict) -> str:
    """What the committed parity run says about the runtimes, one paragraph."""
    def row(name: str) -> str:
        r = doc[name]
        if r.get("compared") and "disagreements" in r:  # the counts (the percentage is rounded)
            same = r["compared"] - len(r["disagreements"])
            labels = f"{100 * same / r['compared']:.1f} % of the labels ({same} of {r['compared']})"
        else:
            labels = f"{r['agreement']:.1f} % of the labels"
        return (f"{labels}, largest probability difference "
                f"{r['max_abs_diff']:.2g}, {r['ms_per_recording_onnx']:.1f} ms per recording "
                f"against {r['ms_per_recording_pytorch']:.1f} ms in PyTorch, "
                f"{r['megabytes']:.1f} MB")
    text = (f"Against the float PyTorch model on the {doc['recordings']} RAVDESS + EmoDB "
            "recordings (`benchmarks/onnx_parity.py` -> `benchmarks/results/onnx_parity.json`, "
            "1 thread, in process; the model's own training data, so expect a little less "
            "agreement on speech it never heard): ")
    parts = []
    if "bundled" in doc:
        parts.append(f"the shipped runtime (int8 encoder graph + numpy head) {row('bundled')}")
    if "float32" in doc:
        parts.append(f"a float whole-model `emovox export --onnx` graph {row('float32')}")
    if "int8" in doc:
        parts.append(f"the same with `--int8` {row('int8')}")
    if "whole_graph" in doc:
        parts.append(f"whole-model `--onnx` graphs {doc['whole_graph']}")
    return text + "; ".join(parts) + f" (revision {str(doc.get('git_revision'))[:10]}).\n"


def install_text(doc: dict) -> str:
    """What a plain ``pip install emovox`` brings, one sentence."""
    largest = ", ".join(f"{k} {v:.0f} MB" for k, v in list(doc["largest"].items())[:4])
    works = ("works on a file and on a folder" if doc["targets"]["predict_works"]
             else "FAILED")
    torch = "not installed" if doc["import_torch_fails"] else "INSTALLED"
    return (f"A plain `pip install` of emovox in a fresh virtual environment "
            f"(`benchmarks/install_size.py` -> `benchmarks/results/install_size.json`, revision "
            f"{str(doc.get('git_revision'))[:10]}): {doc['venv_megabytes']:.0f} MB in all "
            f"({doc['distributions']} distributions; largest {largest}), PyTorch {torch}, "
            f"`emovox predict` {works}.\n")


def held_out_text(doc: dict) -> str:
    """The runtimes on speakers the models never heard (``benchmarks/onnx_held_out.py``)."""
    pooled = doc["pooled"]
    return (f"On speakers the model never heard ({doc['protocol']}, the default recipe trained "
            f"per fold; `benchmarks/onnx_held_out.py`, revision "
            f"{str(doc.get('git_revision'))[:10]}): the shipped runtime and the float PyTorch "
            f"model give the same label on {pooled['agreement']:.1f} % of the "
            f"{pooled['recordings']} test recordings, UA (those recordings pooled over the "
            f"folds) {pooled['ua_onnx']:.1f} against "
            f"{pooled['ua_torch']:.1f}.\n")


def load_text(doc: dict) -> str:
    """The service under load (``benchmarks/load.py``), one sentence."""
    top = max(doc["levels"], key=lambda level: level["concurrency"])
    lat = top["latency_ms"]
    return (f"`emovox serve` ({doc['server'].get('workers', 1)} worker, "
            f"{doc['server'].get('threads')} threads) answered {top['concurrency']} concurrent "
            f"clients uploading {doc['clip'].get('seconds', 3):g} s clips with "
            f"{doc['errors_total']} errors, p50 {lat['p50'] / 1000:.2f} s, p99 "
            f"{lat['p99'] / 1000:.2f} s, {top['throughput_per_s']:.0f} requests/s, server "
            f"memory {top['server_memory_after']['peak_rss_mb']:.0f} MB at its peak "
            f"(`benchmarks/load.py` -> `benchmarks/results/load.json`, revision "
            f"{str(doc.get('git_revision'))[:10]}).\n")


def host_text(doc: dict, frontend: dict | None = None, edge: dict | None = None) -> str:
    """One sentence: a ``speed.py`` run on another host, its main figures and targets;
    ``frontend`` and ``edge``: today's default and edge models' frontends, so a run of an
    earlier model says so."""
    res = doc["results"]
    who = "the edge model" if doc.get("model") == "edge" else "the shipped runtime"
    then = doc.get("frontend")
    if doc.get("model") == "edge" and edge and then and then.get("model") != edge.get("model"):
        who = (f"the edge model of that revision (an earlier distillation: graph "
               f"{then.get('model')}, today {edge.get('model')})")
    if doc.get("model") != "edge" and frontend and then and then != frontend:
        changed = sorted(k for k in {*then, *frontend} if then.get(k) != frontend.get(k))
        who = ("the shipped runtime with the default model of that revision ("
               + ", ".join(f"frontend {k} {then.get(k)}, today {frontend.get(k)}"
                           for k in changed) + ")")
    one = res["clips"].get("1_thread", {})
    long_ = res["long"].get("1_thread", {})
    targets = doc.get("targets", {})
    missed = [k.replace("_", " ") for k, v in targets.items() if not v]
    return (f"On {doc.get('machine', {}).get('processor', 'another host')} "
            f"(`benchmarks/results/{doc['_file']}`, revision {str(doc.get('git_revision'))[:10]}, "
            f"{doc.get('date', '')[:10]}) "
            f"{who} took "
            f"{_run(one.get('emovox_whole_process'), True)} on the clips and "
            f"{_run(long_.get('emovox_whole_process'), True)} on the long recording, eGeMAPS "
            f"{_run(one.get('egemaps_whole_process'))}; targets "
            + (f"missed there: {', '.join(missed)}." if missed else "all met there.") + "\n")


def render(doc: dict, parity: dict | None = None, load: dict | None = None,
           held_out: dict | None = None, install: dict | None = None,
           edge: dict | None = None, others: list[dict] | None = None) -> str:
    """The markdown block: the table, the targets and where the numbers come from; ``edge``
    (``speed.py --model edge``'s record, same machine and data) adds the edge model's column;
    ``others``: runs on other hosts (each with ``_file``, its file name), a sentence each."""
    res = doc["results"]
    clips, long_ = res["clips"], res["long"]
    one, two = clips.get("1_thread", {}), clips.get("2_threads", {})
    torch_rows = res.get("pytorch", {})
    start = res["startup"]
    data = doc["data"]
    e_res = edge["results"] if edge else None

    def e(path: tuple[str, ...], memory: bool = False) -> str:
        if e_res is None:
            return ""
        r: dict | None = e_res
        for key in path:
            r = (r or {}).get(key)
        return _run(r, memory)

    def e_start(key: str) -> str:
        return "" if e_res is None else f"{e_res['startup'][key]:.2f} s"

    def cell(text: str) -> str:  # one more column only when there is an edge record
        return f" {text} |" if edge else ""

    edge_head = cell("edge model (`--model edge`)")
    sep = cell("---")

    lines = [
        f"| task ({data['clips']} x {data['clip_seconds']:g} s clips, a "
        f"{data['long_audio_seconds'] / 60:.0f}-minute recording) | emovox as shipped (ONNX "
        f"Runtime, int8 encoder graph) |{edge_head} PyTorch, float (`--runtime torch`) | "
        "openSMILE eGeMAPS extraction alone |",
        f"| --- | --- |{sep} --- | --- |",
        f"| clips, whole process, 1 thread (time, real-time factor, peak memory) | "
        f"{_run(one.get('emovox_whole_process'), True)} |"
        f"{cell(e(('clips', '1_thread', 'emovox_whole_process'), True))} "
        f"{_run(torch_rows.get('float', {}).get('clips_1_thread_whole_process'), True)} | "
        f"{_run(one.get('egemaps_whole_process'), True)} |",
        f"| clips, whole process, 2 threads | {_run(two.get('emovox_whole_process'), True)} |"
        f"{cell(e(('clips', '2_threads', 'emovox_whole_process'), True))} | "
        f"{_run(two.get('egemaps_whole_process'), True)} |",
        f"| clips, in process, model loaded, 1 thread | {_run(one.get('emovox_in_process'))} |"
        f"{cell(e(('clips', '1_thread', 'emovox_in_process')))} "
        f"{_run(torch_rows.get('float', {}).get('clips_1_thread_in_process'))} | "
        f"{_run(one.get('egemaps_in_process'))} |",
        f"| long recording with its timeline, whole process, 1 thread | "
        f"{_run(long_.get('1_thread', {}).get('emovox_whole_process'), True)} |"
        f"{cell(e(('long', '1_thread', 'emovox_whole_process'), True))} | "
        f"{_run(long_.get('1_thread', {}).get('egemaps_whole_process'), True)} |",
        f"| `emovox predict` of one clip, whole process | "
        f"{start['emovox_predict_one_clip_seconds']:.2f} s |"
        f"{cell(e_start('emovox_predict_one_clip_seconds'))} | "
        f"{start['egemaps_one_clip_seconds']:.2f} s |",
        f"| import emovox and load the model | {start['import_and_load_model_seconds']:.2f} s"
        f"{' (PyTorch imported)' if start.get('imports_torch') else ' (no PyTorch imported)'}"
        f" |{cell(e_start('import_and_load_model_seconds'))} | |",
    ]
    notes = []
    if "float" in torch_rows:
        notes.append(f"labels of the shipped runtime and the float PyTorch model agree on "
                     f"{100 * torch_rows['float']['label_agreement_with_shipped']:.0f} % of "
                     "these synthetic clips")
    if "int8" in torch_rows:
        r = torch_rows["int8"]
        notes.append(f"PyTorch with `--int8`: {_run(r['clips_1_thread_whole_process'], True)} "
                     "whole process")
    targets = doc.get("targets", {})
    met = ", ".join(f"{k.replace('_', ' ')}: {'yes' if v else 'NO'}" for k, v in targets.items())
    text = "\n".join(lines) + "\n\n"
    if notes:
        joined = "; ".join(notes)
        text += joined[0].upper() + joined[1:] + ".\n"
    if met:
        text += f"Targets (issue #14): {met}.\n"
    if edge:
        text += (f"The edge model's column: `benchmarks/speed.py --model edge` -> "
                 f"`benchmarks/results/speed_edge.json`, revision "
                 f"{str(edge.get('git_revision'))[:10]}, {edge.get('date', '')[:10]}, "
                 f"{edge.get('machine', {}).get('processor', 'unknown processor')}; the same "
                 "clips and recording.\n")
    text += (f"\n(`benchmarks/speed.py` -> `benchmarks/results/speed.json`, revision "
             f"{str(doc.get('git_revision'))[:10]}, {doc.get('date', '')[:10]}, "
             f"{doc.get('machine', {}).get('processor', 'unknown processor')}, "
             f"{doc.get('machine', {}).get('cpu_count', '?')} cores; load average "
             f"before/after {doc['load_average_before'][0]:.1f}/"
             f"{doc['load_average_after'][0]:.1f}.)\n")
    for other in others or []:
        text += "\n" + host_text(other, doc.get("frontend"), (edge or {}).get("frontend"))
    if parity:
        text += "\n" + parity_text(parity)
    if held_out:
        text += "\n" + held_out_text(held_out)
    if load:
        text += "\n" + load_text(load)
    if install:
        text += "\n" + install_text(install)
    return text


def committed_block() -> str:
    """The block of the committed results (what the README holds)."""
    def load(path: Path) -> dict | None:
        return json.loads(path.read_text()) if path.exists() else None

    others = [{**json.loads(p.read_text()), "_file": p.name} for p in OTHER_HOSTS if p.exists()]
    return render(json.loads(SPEED.read_text()), load(PARITY), load(LOAD), load(HELD_OUT),
                  load(INSTALL), load(SPEED_EDGE), others)


def main() -> None:
    """Print the block; update the README unless --print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print only")
    args = parser.parse_args()
    block = committed_block()
    print(block)
    if args.print:
        return
    text = README.read_text()
    if START not in text or END not in text:
        sys.exit("README.md has no speed-table markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{block}{END}{tail}")


if __name__ == "__main__":
    main()
