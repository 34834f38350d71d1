"""Speed of `emovox predict`, compared in the same run with openSMILE eGeMAPS extraction alone.

Usage:
    python benchmarks/speed.py [--model CKPT|edge] [--clips 200] [--minutes 10] [--threads 1 2]
                               [--work DIR] [--out benchmarks/results/speed.json]

Data (made once, kept in --work): ``--clips`` spoken clips of exactly 3 s, 16 kHz mono 16-bit
WAV, synthesised with espeak-ng (different sentences, voices, rates and pitches; synthetic voiced
signals if espeak-ng is missing), and one recording of ``--minutes`` minutes made of such clips
with pauses.

Measured, for each thread count:
- whole process: ``python -m emovox predict`` as a child process on all clips and on the long
  recording (wall time, from start to exit, including Python start-up and model loading; peak
  resident memory of the child from ``wait4``);
- in process: ``Recognizer.predict_files`` / ``predict_file`` with the model already loaded;
- the same for openSMILE eGeMAPS v02 functionals (``opensmile.Smile.process_files``; threads =
  its ``num_workers``): the first step of the classic pipeline, extraction alone;
- start-up: a whole ``emovox predict`` of one clip, and the time to import emovox and load the
  model in a fresh process;
- the PyTorch runtime (``--runtime torch``: the float reference, and with ``--int8``) on one
  thread, whole process and in process, with how often its labels agree with the command as
  shipped. The other emovox rows run the command as shipped (the bundled model: its int8
  encoder graph on ONNX Runtime, no PyTorch imported), and the targets are checked on it.

The machine's load average before and after is recorded: on a shared machine, rerun when it
is quiet.

Speed is given as the real-time factor: seconds of audio per second of wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))  # this checkout's emovox, also in the child processes

from emovox.files import checkout_env, provenance, write_text  # noqa: E402

SR = 16000
SECONDS = 3.0
SENTENCES = [
    "I cannot believe you did that again.",
    "The meeting has been moved to Thursday afternoon.",
    "Please put the boxes next to the door.",
    "We finally won the championship this year!",
    "Nobody told me the train was cancelled.",
    "Could you send me the report by tonight?",
    "That was the best dinner I have had in years.",
    "Leave me alone, I do not want to talk.",
    "The weather is supposed to be cold tomorrow.",
    "I think somebody is standing behind the window.",
    "Kids are talking by the door.",
    "Dogs are sitting by the door.",
]
VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-us+f3", "en-gb+f2", "en-us+m3"]

EGEMAPS_CHILD = """
import sys, opensmile
files = open(sys.argv[1], encoding="utf-8").read().splitlines()
smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals,
                        num_workers=int(sys.argv[2]), multiprocessing=False)
smile.process_files(files).to_csv(sys.argv[3])
"""

LOAD_CHILD = """
import sys, time
t0 = time.perf_counter()
from emovox.inference import Recognizer
r = Recognizer.load(sys.argv[1] or None, threads=1)
r._torch_module()
print(time.perf_counter() - t0, "torch" in sys.modules)
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- data --------------------------------------------------------------------------------------


def fit_length(signal: np.ndarray, samples: int) -> np.ndarray:
    out = np.zeros(samples, dtype=np.float32)
    out[: min(samples, signal.size)] = signal[:samples]
    return out


def synthetic_voice(rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(SECONDS * SR)) / SR
    f0 = rng.uniform(90, 260) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.1 * env * x + 0.003 * rng.normal(size=t.size)).astype(np.float32)


def make_clips(folder: Path, count: int) -> list[Path]:
    import soxr

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"clip{i:04d}.wav" for i in range(count)]
    if all(p.exists() for p in paths):
        return paths
    espeak = shutil.which("espeak-ng")
    rng = np.random.default_rng(0)
    log(f"making {count} clips with {'espeak-ng' if espeak else 'synthetic voices'} in {folder}")
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(paths):
            signal = None
            if espeak:
                raw = Path(tmp) / "say.wav"
                cmd = [espeak, "-w", str(raw), "-v", VOICES[i % len(VOICES)],
                       "-s", str(int(rng.integers(130, 200))), "-p", str(int(rng.integers(25, 75))),
                       SENTENCES[i % len(SENTENCES)]]
                if subprocess.run(cmd, capture_output=True).returncode == 0:
                    data, rate = sf.read(raw, dtype="float32")
                    signal = soxr.resample(data, rate, SR).astype(np.float32)
            if signal is None:
                signal = synthetic_voice(rng)
            sf.write(path, fit_length(signal, int(SECONDS * SR)), SR, subtype="PCM_16")
    return paths


def make_long(path: Path, clips: list[Path], minutes: float) -> Path:
    if path.exists():
        return path
    total = int(minutes * 60 * SR)
    pause = np.zeros(SR // 2, dtype=np.float32)
    with sf.SoundFile(path, "w", SR, 1, "PCM_16") as out:
        written, i = 0, 0
        while written < total:
            part = np.concatenate([sf.read(clips[i % len(clips)], dtype="float32")[0], pause])
            part = part[: total - written]
            out.write(part)
            written += part.size
            i += 1
    return path


# --- measuring ---------------------------------------------------------------------------------


# Runs one command and reports its wall time and peak memory. It is a separate small process
# because a child forked from this (large) one would report this process's memory as its peak.
MEASURE_CHILD = """
import json, os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = proc.stderr.read().decode(errors="replace")
_, status, usage = os.wait4(proc.pid, 0)
print(json.dumps({"seconds": time.perf_counter() - start, "rss_kb": usage.ru_maxrss,
                  "code": os.waitstatus_to_exitcode(status), "stderr": err[-2000:]}))
"""


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run a command; wall seconds and the command's peak resident memory (MB)."""
    proc = subprocess.run([sys.executable, "-c", MEASURE_CHILD, *cmd], capture_output=True,
                          text=True, env=env, check=True)
    report = json.loads(proc.stdout)
    if report["code"] not in (0, 1):
        raise SystemExit(f"failed ({report['code']}): {' '.join(cmd)}\n{report['stderr']}")
    return {"seconds": round(report["seconds"], 3),
            "peak_rss_mb": round(report["rss_kb"] / 1024, 1)}


def best_of(repeat: int, fn):  # noqa: ANN001, ANN201 - small helper
    runs = [fn() for _ in range(repeat)]
    return min(runs, key=lambda r: r["seconds"])


def rate(result: dict, audio_seconds: float) -> dict:
    result = dict(result)
    result["realtime_factor"] = round(audio_seconds / result["seconds"], 1)
    return result


def thread_env(threads: int) -> dict[str, str]:
    env = checkout_env(REPO / "src")
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[key] = str(threads)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint (default: the bundled model)")
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=2, help="best of N whole-process runs")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "emovox-speed"))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "speed.json"))
    args = parser.parse_args()

    from emovox.inference import Recognizer

    work = Path(args.work)
    clips = make_clips(work / "clips", args.clips)
    long_file = make_long(work / f"long-{args.minutes:g}min.wav", clips, args.minutes)
    clip_seconds = len(clips) * SECONDS
    long_seconds = sf.info(long_file).duration
    listing = work / "clips.txt"
    listing.write_text("\n".join(str(p) for p in clips) + "\n", encoding="utf-8")
    out_file = work / "predictions.jsonl"
    model_args = ["--model", args.model] if args.model else []
    python = sys.executable
    results: dict = {"clips": {}, "long": {}, "startup": {}, "pytorch": {}}
    load_before = os.getloadavg()

    def emovox(paths: list[str], threads: int, *extra: str) -> dict:
        # The command as shipped unless "--runtime torch" (and "--int8") is asked for.
        return run_child([python, "-m", "emovox", "predict", *paths, *model_args, "--threads",
                          str(threads), "--format", "jsonl", "--output", str(out_file), *extra],
                         thread_env(threads))

    def egemaps(paths_file: Path, threads: int) -> dict:
        return run_child([python, "-c", EGEMAPS_CHILD, str(paths_file), str(threads),
                          str(work / "egemaps.csv")], thread_env(threads))

    long_list = work / "long.txt"
    long_list.write_text(f"{long_file}\n", encoding="utf-8")
    for threads in args.threads:
        key = f"{threads}_thread{'s' if threads > 1 else ''}"
        log(f"whole process, {threads} thread(s)")
        results["clips"][key] = {
            "emovox_whole_process": rate(best_of(args.repeat, lambda t=threads: emovox(
                [str(work / "clips")], t)), clip_seconds),
            "egemaps_whole_process": rate(best_of(args.repeat, lambda t=threads: egemaps(
                listing, t)), clip_seconds),
        }
        results["long"][key] = {
            "emovox_whole_process": rate(best_of(args.repeat, lambda t=threads: emovox(
                [str(long_file)], t)), long_seconds),
            "egemaps_whole_process": rate(best_of(args.repeat, lambda t=threads: egemaps(
                long_list, t)), long_seconds),
        }

    import opensmile

    reference: list[str | None] = []
    for threads in args.threads:
        key = f"{threads}_thread{'s' if threads > 1 else ''}"
        log(f"in process, {threads} thread(s)")
        rec = Recognizer.load(args.model, threads=threads)
        rec.predict_files(clips[:4])  # warm-up
        start = time.perf_counter()
        predictions = rec.predict_files(clips)
        clip_time = time.perf_counter() - start
        start = time.perf_counter()
        rec.predict_file(long_file)
        long_time = time.perf_counter() - start
        smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02,
                                opensmile.FeatureLevel.Functionals, num_workers=threads)
        smile.process_files([str(p) for p in clips[:4]])
        start = time.perf_counter()
        smile.process_files([str(p) for p in clips])
        smile_clip_time = time.perf_counter() - start
        start = time.perf_counter()
        smile.process_file(str(long_file))
        smile_long_time = time.perf_counter() - start
        results["clips"][key]["emovox_in_process"] = rate({"seconds": round(clip_time, 3)},
                                                          clip_seconds)
        results["clips"][key]["egemaps_in_process"] = rate(
            {"seconds": round(smile_clip_time, 3)}, clip_seconds)
        results["long"][key]["emovox_in_process"] = rate({"seconds": round(long_time, 3)},
                                                         long_seconds)
        results["long"][key]["egemaps_in_process"] = rate({"seconds": round(smile_long_time, 3)},
                                                          long_seconds)
        if threads == 1 or not reference:
            reference = [p.label for p in predictions]

    log("start-up and the PyTorch runtime")
    results["startup"]["emovox_predict_one_clip_seconds"] = best_of(
        max(args.repeat, 2), lambda: emovox([str(clips[0])], 1))["seconds"]
    one = work / "one.txt"
    one.write_text(f"{clips[0]}\n", encoding="utf-8")
    results["startup"]["egemaps_one_clip_seconds"] = best_of(
        max(args.repeat, 2), lambda: egemaps(one, 1))["seconds"]
    loads, torch_loaded = [], []
    for _ in range(max(args.repeat, 2)):
        proc = subprocess.run([python, "-c", LOAD_CHILD, args.model or ""], capture_output=True,
                              text=True, env=thread_env(1), check=True)
        seconds, imported = proc.stdout.strip().splitlines()[-1].split()
        loads.append(float(seconds))
        torch_loaded.append(imported == "True")
    results["startup"]["import_and_load_model_seconds"] = round(min(loads), 3)
    results["startup"]["imports_torch"] = any(torch_loaded)

    try:
        import torch  # noqa: F401 - the PyTorch rows need the train extra
    except ImportError:
        log("PyTorch is not installed: no PyTorch rows")
    if "torch" not in sys.modules or rec.model.frontend_config.get("name") == "edge":
        pass  # the edge model runs on ONNX Runtime only: no PyTorch rows
    else:
        for name, extra in (("float", ()), ("int8", ("--int8",))):
            ref = Recognizer.load(args.model, threads=1, runtime="torch",
                                  quantize=bool(extra))
            ref.predict_files(clips[:4])
            start = time.perf_counter()
            got = ref.predict_files(clips)
            seconds = time.perf_counter() - start
            agree = float(np.mean([p.label == r for p, r in zip(got, reference, strict=True)]))
            results["pytorch"][name] = {
                "clips_1_thread_whole_process": rate(best_of(args.repeat, lambda e=extra: emovox(
                    [str(work / "clips")], 1, "--runtime", "torch", *e)), clip_seconds),
                "clips_1_thread_in_process": rate({"seconds": round(seconds, 3)}, clip_seconds),
                "label_agreement_with_shipped": round(agree, 3),
            }

    one_thread = results["clips"].get("1_thread", {})
    targets = {}
    if one_thread:
        # The targets are about `emovox predict` as shipped.
        ours = one_thread["emovox_whole_process"]
        theirs = one_thread["egemaps_whole_process"]
        long_ours = results["long"]["1_thread"]["emovox_whole_process"]
        peak = max(r[k]["peak_rss_mb"] for part in ("clips", "long")
                   for r in results[part].values() for k in r if k == "emovox_whole_process")
        targets = {
            "clips_1_thread_whole_process_faster_than_egemaps": ours["seconds"] < theirs["seconds"],
            "clips_1_thread_whole_process_at_least_250x_real_time": ours["realtime_factor"] >= 250,
            "long_1_thread_whole_process_at_least_100x_real_time":
                long_ours["realtime_factor"] >= 100,
            "one_clip_whole_process_under_0.5_s":
                results["startup"]["emovox_predict_one_clip_seconds"] < 0.5,
            "peak_rss_under_300_mb": peak < 300,
            "no_torch_imported": not results["startup"]["imports_torch"],
        }
    doc = {
        **provenance(),
        "model": args.model or "bundled default",
        "frontend": rec.frontend.config(),
        "labels": list(rec.labels),
        "data": {
            "clips": len(clips), "clip_seconds": SECONDS, "clip_audio_seconds": clip_seconds,
            "long_audio_seconds": round(long_seconds, 1), "sample_rate": SR,
            "source": "espeak-ng" if shutil.which("espeak-ng") else "synthetic voiced signals",
        },
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "results": results,
        "targets": targets,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(doc, indent=1) + "\n")
    print(json.dumps({"results": results, "targets": targets}, indent=1))


if __name__ == "__main__":
    main()
