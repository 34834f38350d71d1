"""Load test of `emovox serve`: latency and throughput at 1, 4, 16 and 32 concurrent clients.

The server runs in a subprocess on 127.0.0.1 only (``python -m emovox serve``); each client is
a thread with its own keep-alive connection that uploads a 3 s clip (the first 3 s of the
bundled example recording, 16-bit WAV) as multipart field ``file`` again and again. Every level
is bounded both in requests and in time. Reported per level: p50/p99/mean/max latency,
throughput (answers per second of wall time), errors (anything but HTTP 200), and the server's
memory (VmRSS, and the peak VmHWM) before and after. The load average of the machine is
recorded too: other work on the machine slows the server down.

Usage (after ``pip install -e '.[serve]'``):

    python benchmarks/load.py                       # the bundled default model
    python benchmarks/load.py --model runs/mll.pt   # any checkpoint
    python benchmarks/load.py --levels 1,4 --requests 8 --out /tmp/load.json

Writes ``benchmarks/results/load.json`` (with the command, git revision, date and machine).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))  # this checkout's emovox, also in the server process

from emovox import audio  # noqa: E402
from emovox.files import checkout_env, provenance, write_text  # noqa: E402
from emovox.inference import DEFAULT_MODEL  # noqa: E402

EXAMPLE = REPO / "src" / "emovox" / "data" / "example.wav"


def memory_mb(pid: int) -> dict[str, float]:
    """The process's resident memory now (VmRSS) and at its peak (VmHWM), in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[{"VmRSS": "rss_mb", "VmHWM": "peak_rss_mb"}[key]] = round(
                int(rest.split()[0]) / 1024, 1)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clip_bytes(seconds: float) -> bytes:
    """The first ``seconds`` of the bundled example as a 16 kHz 16-bit WAV file."""
    signal = audio.load(EXAMPLE, 16000, duration=seconds)
    buffer = io.BytesIO()
    sf.write(buffer, signal, 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@contextlib.contextmanager
def server(model: str, args: argparse.Namespace):
    port = free_port()
    cmd = [sys.executable, "-m", "emovox", "serve", "--model", model, "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(args.workers), "--log-level", "warning",
           "--max-concurrent", str(max(64, 2 * max(args.levels)))]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log,
                            env=checkout_env(REPO / "src"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                log.seek(0)
                sys.exit(f"server exited ({proc.returncode}):\n{log.read()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                sys.exit("server did not start within 300 s")
            time.sleep(0.2)
        yield url, proc, cmd
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def run_level(url: str, data: bytes, clients: int, requests: int, seconds: float) -> dict:
    """``requests`` uploads by ``clients`` threads at once, stopping early after ``seconds``."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    issued = 0
    barrier = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client() -> None:
        nonlocal issued
        with httpx.Client(timeout=600) as session:
            barrier.wait()
            while True:
                with lock:
                    if issued >= requests or time.monotonic() > deadline[0]:
                        return
                    issued += 1
                start = time.perf_counter()
                try:
                    response = session.post(url + "/v1/predict",
                                            files={"file": ("clip.wav", data, "audio/wav")})
                    ok = response.status_code == 200
                    problem = "" if ok else f"HTTP {response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, problem = False, f"{type(exc).__name__}: {exc}"
                elapsed = time.perf_counter() - start
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors.append(problem)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    deadline[0] = time.monotonic() + seconds
    started = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ms = 1000 * np.asarray(latencies) if latencies else np.zeros(1)
    return {
        "concurrency": clients,
        "requests": issued,
        "ok": len(latencies),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:3],
        "wall_seconds": round(wall, 2),
        "throughput_per_s": round(len(latencies) / wall, 3),
        "audio_seconds_per_s": None,
        "latency_ms": {"p50": round(float(np.percentile(ms, 50)), 1),
                       "p99": round(float(np.percentile(ms, 99)), 1),
                       "mean": round(float(ms.mean()), 1),
                       "max": round(float(ms.max()), 1)},
        "stopped_by_time_limit": issued < requests,
    }


def default_model() -> str:
    resource = resources.files("emovox").joinpath(DEFAULT_MODEL)
    if not resource.is_file():
        sys.exit("the bundled default model is not in this installation: give a checkpoint "
                 "with --model")
    return str(resource)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint (default: the bundled default model)")
    parser.add_argument("--levels", default="1,4,16,32",
                        help="concurrent clients per level (default 1,4,16,32)")
    parser.add_argument("--requests", type=int, default=0,
                        help="requests per level (default: max(8, 3 x clients))")
    parser.add_argument("--level-seconds", type=float, default=120.0,
                        help="time limit per level (default 120 s)")
    parser.add_argument("--clip-seconds", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=1, help="server's --workers")
    parser.add_argument("--threads", type=int, help="server's --threads")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "load.json"))
    args = parser.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]
    model = args.model or default_model()
    data = clip_bytes(args.clip_seconds)
    digest = hashlib.sha256(Path(model).read_bytes()).hexdigest()

    with server(model, args) as (url, proc, cmd):
        card = httpx.get(url + "/v1/model").json()
        for _ in range(3):  # warm up (first calls build the frontend's graph)
            httpx.post(url + "/v1/predict", files={"file": ("clip.wav", data)}, timeout=600)
        start_memory = memory_mb(proc.pid)
        load_before = os.getloadavg()
        levels = []
        for clients in args.levels:
            requests = args.requests or max(8, 3 * clients)
            before = memory_mb(proc.pid)
            result = run_level(url, data, clients, requests, args.level_seconds)
            result["audio_seconds_per_s"] = round(result["throughput_per_s"]
                                                  * args.clip_seconds, 3)
            result["server_memory_before"] = before
            result["server_memory_after"] = memory_mb(proc.pid)
            levels.append(result)
            lat = result["latency_ms"]
            print(f"{clients:>3} clients: {result['ok']}/{result['requests']} ok, "
                  f"{result['errors']} errors, p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms, "
                  f"{result['throughput_per_s']:.2f} req/s, server RSS "
                  f"{result['server_memory_after']['rss_mb']:.0f} MB", flush=True)
        end_memory = memory_mb(proc.pid)
        load_after = os.getloadavg()

    doc = {
        "benchmark": "emovox serve load test (127.0.0.1)",
        "model": {"path": model, "sha256": digest, "name": card.get("name"),
                  "labels": card["labels"], "frontend": card["frontend"].get("name"),
                  "method": card.get("method")},
        "server": {"command": cmd[1:], "workers": args.workers,
                   "threads": args.threads or max(1, (os.cpu_count() or 1) // args.workers)},
        "clip": {"seconds": args.clip_seconds, "bytes": len(data),
                 "source": "first seconds of src/emovox/data/example.wav, 16 kHz PCM_16"},
        "levels": levels,
        "server_memory": {"after_warmup": start_memory, "at_end": end_memory},
        "errors_total": sum(level["errors"] for level in levels),
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in load_after]},
        **provenance(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
