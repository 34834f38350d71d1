"""Scale-out on this machine: Ray Data batch inference and torchrun training (issue #21).

Two parts, each run in child processes that import this checkout (``files.checkout_env``),
one CPU thread per process (``OMP_NUM_THREADS=1``, ``--threads 1``):

- ``ray``: the same ``--files`` RAVDESS recordings (the first in sorted order, listed in a
  manifest) through plain ``emovox predict`` and through ``--engine ray`` with 1 and with 2
  workers (a local Ray started by the command, its start-up included in the wall time); the
  Ray records are compared with the plain ones (labels and probabilities).
- ``ddp``: one fold of RAVDESS cross-validation (``--fold``, the ``mll`` recipe) in one process
  and under ``torchrun --nproc-per-node 2`` (gloo); a warm-up run extracts the features into
  the cache first, so both timed runs read them from there. UA and the training time of each.
  ``--seed K`` trains both with ``optim.seed=K``; seed 0's runs are ``ddp``, another seed's
  ``ddp_seeds[K]`` in the results: the spread between seeds of one process says how far the
  two-process UA may fall from the one-process UA by chance alone (the processes draw their
  dropout from other streams, so the two runs are not the same computation).

This machine has 2 cores: 2 workers or 2 processes are all it can run at once, and other work
on the machine (the load average is recorded) slows everything.

Usage:

    python benchmarks/scale_out.py --part ray --data ../shared/data
    python benchmarks/scale_out.py --part ddp --data ../shared/data --cache /tmp/c
    python benchmarks/scale_out.py --readme     # the README block from the results

Writes (merges its part into) ``benchmarks/results/scale_out.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emovox.files import checkout_env, provenance, write_between, write_text  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "scale_out.json"
README = REPO / "README.md"
START, END = "<!-- scale-out:start -->", "<!-- scale-out:end -->"


def _env() -> dict[str, str]:
    return checkout_env(REPO / "src", {**os.environ, "OMP_NUM_THREADS": "1",
                                       "RAY_USAGE_STATS_ENABLED": "0"})


def _timed(command: list[str]) -> float:
    """Run a command (its output kept on failure); its wall time in seconds."""
    started = time.monotonic()
    done = subprocess.run(command, env=_env(), capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode not in (0, 1):  # 1: some inputs failed, still a finished run
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n"
                         f"{done.stderr[-3000:]}")
    return round(seconds, 2)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def ray_part(data: Path, files: int, workdir: Path) -> dict[str, Any]:
    """Plain predict vs --engine ray with 1 and 2 workers on the same recordings."""
    paths = sorted(str(p) for p in (data / "ravdess").rglob("*") if p.suffix in (".wav", ".flac"))
    paths = paths[:files]
    if len(paths) < files:
        raise SystemExit(f"only {len(paths)} RAVDESS recordings under {data}")
    manifest = workdir / "list.csv"
    manifest.write_text("path\n" + "\n".join(paths) + "\n")
    emovox = [sys.executable, "-m", "emovox", "predict", "--manifest", str(manifest),
              "--threads", "1"]
    runs: dict[str, Any] = {}
    outputs = {}
    for name, extra in (("plain", []),
                        ("ray_1_worker", ["--engine", "ray", "--workers", "1"]),
                        ("ray_2_workers", ["--engine", "ray", "--workers", "2"])):
        out = workdir / f"{name}.jsonl"
        load = _load()
        seconds = _timed([*emovox, "-o", str(out), *extra])
        outputs[name] = [json.loads(line) for line in out.read_text().splitlines()]
        runs[name] = {"seconds": seconds, "files_per_second": round(len(paths) / seconds, 2),
                      "load_before": load}
    plain = outputs["plain"]
    for name in ("ray_1_worker", "ray_2_workers"):
        runs[name]["same_records"] = sum(a == b for a, b in zip(plain, outputs[name],
                                                                strict=True))
        runs[name]["speedup"] = round(runs["plain"]["seconds"] / runs[name]["seconds"], 2)
    return {"files": len(paths), "runs": runs}


def ddp_part(data: Path, fold: int, cache: Path, workdir: Path, seed: int = 0) -> dict[str, Any]:
    """One MLL fold in one process and in two torchrun processes (training seed ``seed``)."""
    cv = ["-m", "emovox", "cv", "--corpus", "ravdess", "--root", str(data / "ravdess"),
          "--recipe", "mll", "--folds", str(fold), "--cache", str(cache), "--quiet",
          "--set", f"optim.seed={seed}"]
    _timed([sys.executable, *cv, "--set", "optim.epochs=1", "--out", str(workdir / "warm")])
    runs: dict[str, Any] = {}
    for name, launcher in (("one_process", [sys.executable]),
                           ("torchrun_2_processes", [sys.executable, "-m",
                                                     "torch.distributed.run",
                                                     "--nproc-per-node", "2"])):
        out = workdir / name
        load = _load()
        seconds = _timed([*launcher, *cv, "--out", str(out)])
        record = json.loads((out / "folds" / f"fold_{fold}.json").read_text())
        runs[name] = {"seconds": seconds, "train_seconds": record["train_seconds"],
                      "ua": round(record["ua"], 2), "best_epoch": record["best_epoch"],
                      "load_before": load}
    runs["torchrun_2_processes"]["speedup"] = round(
        runs["one_process"]["train_seconds"] / runs["torchrun_2_processes"]["train_seconds"], 2)
    return {"corpus": "ravdess", "recipe": "mll", "fold": fold, "seed": seed, "runs": runs}


def render(doc: dict[str, Any]) -> str:
    """The README block: what was measured, from the results file."""
    lines = []
    ray = doc.get("ray")
    if ray:
        r = ray["runs"]
        lines.append(
            f"Measured here (`benchmarks/scale_out.py` -> `benchmarks/results/scale_out.json`, "
            f"revision {ray['git_revision'][:10]}, {ray['date'][:10]}, "
            f"{ray['machine']['processor']}, {ray['machine']['cpu_count']} cores, one thread "
            f"per process), {ray['files']} RAVDESS recordings: plain `emovox predict` "
            f"{r['plain']['seconds']:.0f} s ({r['plain']['files_per_second']:.1f} files/s); "
            f"`--engine ray` with 1 worker {r['ray_1_worker']['seconds']:.0f} s "
            f"({r['ray_1_worker']['speedup']:.2f}x), with 2 workers "
            f"{r['ray_2_workers']['seconds']:.0f} s ({r['ray_2_workers']['speedup']:.2f}x), "
            f"Ray's start-up included; {r['ray_2_workers']['same_records']} of {ray['files']} "
            "records the same as plain `predict`'s. With two cores, Ray's start-up and "
            "scheduling cost more than its second worker gains; it is for more cores and more "
            "machines than this one has.")
    ddp = doc.get("ddp")
    if ddp:
        r = ddp["runs"]
        one, two = r["one_process"], r["torchrun_2_processes"]
        lines.append(
            f"One MLL fold of RAVDESS (fold {ddp['fold']}, recipe `{ddp['recipe']}`, revision "
            f"{ddp['git_revision'][:10]}): one "
            f"process trained in {one['train_seconds']:.0f} s (UA {one['ua']:.1f}), "
            f"`torchrun --nproc-per-node 2` in {two['train_seconds']:.0f} s "
            f"({two['speedup']:.2f}x; UA {two['ua']:.1f}).")
        others = doc.get("ddp_seeds") or {}
        if others:
            seeds = {0: r, **{int(k): v["runs"] for k, v in others.items()}}
            ones = [v["one_process"]["ua"] for v in seeds.values()]
            twos = [v["torchrun_2_processes"]["ua"] for v in seeds.values()]
            each = "; ".join(f"seed {k}: {v['one_process']['ua']:.1f} and "
                             f"{v['torchrun_2_processes']['ua']:.1f}"
                             for k, v in sorted(seeds.items()))
            diffs = [v["torchrun_2_processes"]["ua"] - v["one_process"]["ua"]
                     for v in seeds.values()]
            verdict = "the difference keeps its sign over these seeds"
            if min(diffs) < 0 < max(diffs):
                verdict = ("the difference changes sign with the seed, as the seed's noise "
                           "would and a cost of the two processes would not (two seeds only)")
            lines[-1] += (
                f" The same fold with {len(seeds)} training seeds (UA in one process and in two: "
                f"{each}): mean {sum(ones) / len(ones):.1f} in one process, "
                f"{sum(twos) / len(twos):.1f} in two; {verdict}. The two runs are not the same "
                "computation (each process draws its own dropout and crops), so they can agree "
                "only within that noise.")
    return "\n".join(lines) if lines else "(not measured yet)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["ray", "ddp"])
    parser.add_argument("--data", type=Path, help="the corpora folder (../shared/data)")
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--fold", type=int, default=1)
    parser.add_argument("--cache", type=Path, help="feature cache of the ddp part")
    parser.add_argument("--seed", type=int, default=0, help="training seed of the ddp part")
    parser.add_argument("--readme", action="store_true", help="write the README block")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    doc = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.part:
        if args.data is None:
            parser.error("--part needs --data")
        with tempfile.TemporaryDirectory(prefix="emovox-scale-") as tmp:
            if args.part == "ray":
                part = ray_part(args.data, args.files, Path(tmp))
            else:
                part = ddp_part(args.data, args.fold, args.cache or Path(tmp) / "cache",
                                Path(tmp), args.seed)
        if args.part == "ddp" and args.seed != 0:
            doc.setdefault("ddp_seeds", {})[str(args.seed)] = {**part, **provenance()}
        else:
            doc[args.part] = {**part, **provenance()}
        write_text(args.out, json.dumps(doc, indent=1) + "\n")
        print(json.dumps(part, indent=1))
    if args.readme:
        write_between(README, START, END, render(doc))


if __name__ == "__main__":
    main()
