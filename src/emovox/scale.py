"""Batch inference at scale on Ray Data (issue #21; torchrun training: emovox.distributed).

Batch inference (``emovox predict --engine ray``): Ray Data reads the list of recordings,
``map_batches`` runs :meth:`~emovox.inference.Recognizer.predict_files` (the one prediction
path local ``predict`` runs) in a pool of actors, one model load per actor; every record comes
back to the driver, which journals it (one JSON line, flushed and synced, per finished batch)
beside the output and writes the output atomically at the end, in the input's order. A run
that stops (a crash, Ctrl-C, a lost cluster) is resumed by running the same command again: the
paths already in the journal, or in a finished output, are skipped. A worker that dies in the
middle of a batch is restarted by Ray and the batch is retried (Ray Data's defaults); the
driver keeps one record per path, so a retried batch never gives a duplicate (a file that
takes its worker down every time is retried until the run is stopped). Without a
cluster (``--ray-address`` not given) Ray starts a local one on this machine.

Training under torchrun is :mod:`emovox.distributed`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, EmovoxError

#: Output formats of ``--engine ray`` (``table`` and ``json`` need every record at once; the
#: journal gives them too, but a batch job writes a file).
RAY_FORMATS = ("jsonl", "csv", "parquet", "json")


# --- the journal: what a run has done so far -------------------------------------------------


def journal_path(output: str) -> str:
    """The journal of a run writing ``output``: ``<output>.partial.jsonl``."""
    return output + ".partial.jsonl"


def read_journal(path: str) -> dict[str, dict[str, Any]]:
    """Records by path from a journal (a truncated last line, from a crash, is dropped)."""
    out: dict[str, dict[str, Any]] = {}
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the line a crash cut short
            if isinstance(record, dict) and isinstance(record.get("path"), str):
                out.setdefault(record["path"], record)
    return out


def read_output(path: str, fmt: str) -> dict[str, dict[str, Any]]:
    """Records by path of a finished output (``{}`` when there is none).

    jsonl, json and parquet outputs hold the whole record; a csv output gives back what its
    rows hold (path, label, error, probabilities; per-window rows as the timeline).
    """
    if not os.path.exists(path):
        return {}
    try:
        if fmt == "jsonl":
            return read_journal(path)
        if fmt == "json":
            with open(path, encoding="utf-8") as handle:
                rows = json.load(handle)
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            rows = [json.loads(r) for r in pq.read_table(path, columns=["record"])
                    .column("record").to_pylist()]
        else:
            rows = _csv_records(path)
    except (OSError, ValueError, KeyError) as exc:
        raise EmovoxError(f"--output {path} exists but cannot be read to resume from ({exc}); "
                          "move it away to start over") from None
    return {r["path"]: r for r in rows if isinstance(r, dict) and isinstance(r.get("path"), str)}


def _csv_records(path: str) -> list[dict[str, Any]]:
    """The records a ``predict --format csv`` file holds (the inverse of its writer)."""
    import csv

    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    fixed = {"path", "start", "end", "label", "uncertain", "error", "valence", "arousal",
             "dominance"}
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        probs = {k: float(v) for k, v in row.items() if k not in fixed and v not in ("", None)}
        dims = {d: float(row[d]) for d in ("valence", "arousal", "dominance") if row.get(d)}
        if row.get("start"):
            record = out.get(row["path"])
            if record is not None:
                record.setdefault("timeline", []).append({
                    "start": float(row["start"]), "end": float(row["end"]),
                    "label": row["label"], "speech": bool(probs),
                    "probabilities": probs, **dims})
            continue
        if row.get("error"):
            out[row["path"]] = {"path": row["path"], "error": row["error"]}
            continue
        out[row["path"]] = {"path": row["path"], "label": row["label"] or None,
                            "speech": bool(probs), "uncertain": row.get("uncertain") == "true",
                            "duration": None, "probabilities": probs, **dims}
    return list(out.values())


class Journal:
    """Records appended as they arrive, each batch flushed and synced to disk."""

    def __init__(self, path: str) -> None:
        self.path = path
        if os.path.exists(path):  # drop a last line a crash cut short before appending
            with open(path, "rb+") as handle:
                data = handle.read()
                if data and not data.endswith(b"\n"):
                    handle.truncate(data.rfind(b"\n") + 1)
        self.handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def add(self, records: Sequence[dict[str, Any]]) -> None:
        """Append ``records``, one JSON line each, and sync them to disk."""
        for record in records:
            self.handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        """Close the file (what was added stays)."""
        self.handle.close()


# --- Ray ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RayOptions:
    """How ``--engine ray`` runs.

    Attributes:
        address: ``None``: a local Ray on this machine; ``"auto"``: the cluster this machine
            belongs to; ``HOST:PORT``: that cluster's head.
        workers: Actors in the pool (each loads the model once).
        batch_size: Recordings per batch handed to an actor.
        cpus_per_worker: CPUs Ray reserves per actor (the recognizer's threads follow).
        gpus_per_worker: GPUs Ray reserves per actor (0 on CPU).
    """

    address: str | None = None
    workers: int = 2
    batch_size: int = 16
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0

    def check(self) -> None:
        """One-line errors for impossible values (before anything starts)."""
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1 (got {self.workers})")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1 (got {self.batch_size})")
        if not self.cpus_per_worker > 0:
            raise ConfigError(f"--cpus-per-worker must be above 0 (got {self.cpus_per_worker:g})")
        if self.gpus_per_worker < 0:
            raise ConfigError(f"--gpus-per-worker must be >= 0 (got {self.gpus_per_worker:g})")


def check_address(address: str | None, timeout: float = 5.0) -> None:
    """Fail in one line, fast, when a ``HOST:PORT`` Ray address cannot be reached."""
    if address in (None, "auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address {address}: give HOST:PORT of the head (the GCS "
                          "port, 6379 by default), 'auto', or nothing for a local Ray")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise EmovoxError(f"--ray-address {address}: no Ray head answers there "
                          f"({exc.strerror or exc}); is the cluster running "
                          "(`ray start --head`)?") from None


class _Predictor:
    """A Ray actor: loads the model once, runs the one prediction path on each batch."""

    def __init__(self, model: str | None, options: Mapping[str, Any],
                 predict: Mapping[str, Any]) -> None:
        from .inference import Recognizer

        self.recognizer = Recognizer.load(model, **options)
        self.predict = dict(predict)

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[Any]]:
        paths = [str(p) for p in batch["path"]]  # as the user gave them, for the records
        files = [str(f) for f in batch["file"]]  # absolute: a worker's folder may differ
        die = os.environ.get("EMOVOX_TEST_DIE_ON")  # tests: a worker that dies mid-batch
        if die and die in files and not os.path.exists(die + ".died"):
            open(die + ".died", "w").close()  # noqa: SIM115 - a marker, once
            os._exit(1)
        records = []
        for path, result in zip(paths, self.recognizer.predict_files(files, **self.predict),
                                strict=True):
            record = result.to_dict()
            record["path"] = path
            records.append(json.dumps(record, ensure_ascii=False))
        return {"path": paths, "record": records}


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 (where Ray's C++ core logs) to /dev/null for a while."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real descriptor 2 (an embedding host): leave it
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def start_ray(options: RayOptions) -> Any:
    """Connect to the cluster (or start a local one); one-line errors."""
    from .errors import require

    require("ray", "ray")
    check_address(options.address)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # the driver's own Ray log lines (not the run's errors, which come back as exceptions)
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    import ray
    import ray.data  # noqa: F401 - ray.data is used by the caller through this module

    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "ignore_reinit_error": True, "logging_level": logging.ERROR}
    if options.address in (None, "local"):
        # a short private folder: Ray's sockets live there (Unix socket paths are short)
        kwargs["_temp_dir"] = os.environ.get("RAY_TMPDIR") or tempfile.mkdtemp(
            prefix="emovox-ray-")
        kwargs["num_cpus"] = max(os.cpu_count() or 1, int(options.workers *
                                                          options.cpus_per_worker + 0.999))
    else:
        kwargs["address"] = options.address
    try:
        with _quiet_stderr():  # Ray's start-up log lines; its errors come back as exceptions
            ray.init(**kwargs)
    except (ConnectionError, RuntimeError, TimeoutError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EmovoxError(f"--ray-address {options.address}: cannot connect to Ray ({first})"
                          ) from None
    return ray


def predict_ray(paths: Sequence[str], model: str | None, load_options: Mapping[str, Any],
                predict_options: Mapping[str, Any], options: RayOptions,
                on_batch: Callable[[list[dict[str, Any]]], None],
                quiet: bool = False) -> None:
    """Predict ``paths`` with a pool of Ray actors; ``on_batch`` gets each batch's records.

    Records are :meth:`~emovox.types.Prediction.to_dict` dicts, exactly as the local path
    gives them (a failed file's record holds its error). Batches arrive as they finish, in
    any order.
    """
    options.check()
    if not paths:
        return
    ray = start_ray(options)
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = not quiet and sys.stderr.isatty()
    context.print_on_execution_start = False
    load = dict(load_options)
    load["threads"] = max(1, int(options.cpus_per_worker))
    if model is not None and os.path.isfile(model):
        model = os.path.abspath(model)
    data = ray.data.from_items([{"path": p, "file": os.path.abspath(p)} for p in paths],
                               override_num_blocks=max(1, min(len(paths), 4 * options.workers)))
    # Ray Data's actors restart when they die, and their batch is retried (its defaults)
    data = data.map_batches(
        _Predictor, fn_constructor_kwargs={"model": model, "options": load,
                                           "predict": dict(predict_options)},
        batch_size=options.batch_size,
        batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=options.workers),
        num_cpus=options.cpus_per_worker, num_gpus=options.gpus_per_worker or None)
    try:
        for batch in data.iter_batches(batch_size=None, batch_format="numpy"):
            on_batch([json.loads(r) for r in batch["record"]])
    except Exception as exc:  # noqa: BLE001 - Ray wraps worker failures in many types
        text = str(exc).strip().splitlines()
        raise EmovoxError(f"the Ray run stopped ({type(exc).__name__}: "
                          f"{text[0] if text else 'no message'}); the records done so far are "
                          "kept: run the same command again to resume") from None
    finally:
        ray.shutdown()


def run_journaled(paths: Sequence[str], output: str, fmt: str,
                  work: Callable[[Sequence[str], Callable[[list[dict[str, Any]]], None]], None],
                  resume: bool = True) -> dict[str, dict[str, Any]]:
    """Do ``work`` on the paths not done yet, journaling each batch; all records by path.

    Done: the paths of a finished ``output`` and of the journal (unless ``resume`` is false,
    which starts over). The journal is removed once the caller has written the output
    (:func:`finish`).
    """
    journal = journal_path(output)
    done: dict[str, dict[str, Any]] = {}
    if resume:
        done.update(read_output(output, fmt))
        for path, record in read_journal(journal).items():
            done.setdefault(path, record)
    elif os.path.exists(journal):
        os.remove(journal)
    todo = [p for p in paths if p not in done]
    if todo:
        writer = Journal(journal)
        try:
            def take(records: list[dict[str, Any]]) -> None:
                fresh = [r for r in records if r.get("path") not in done]
                for r in fresh:  # a retried batch: keep the first record of a path
                    done[r["path"]] = r
                writer.add(fresh)

            work(todo, take)
        finally:
            writer.close()
    return done


def finish(output: str) -> None:
    """The output is written: its journal is no longer needed."""
    try:
        os.remove(journal_path(output))
    except FileNotFoundError:
        pass


def write_parquet(path: str, records: Sequence[dict[str, Any]], labels: Sequence[str]) -> None:
    """Records as a Parquet table, atomically.

    Columns: ``path``, ``label``, ``speech``, ``uncertain``, ``duration``, ``error``,
    ``note``, one probability column per emotion, and ``record`` (the whole JSON record,
    timeline included).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .files import atomic_open

    columns: dict[str, list[Any]] = {
        "path": [r.get("path") for r in records],
        "label": [r.get("label") for r in records],
        "speech": [r.get("speech") for r in records],
        "uncertain": [r.get("uncertain") for r in records],
        "duration": [r.get("duration") for r in records],
        "error": [r.get("error") for r in records],
        "note": [r.get("note") for r in records],
    }
    for name in labels:
        columns[name] = [r.get("probabilities", {}).get(name) for r in records]
    columns["record"] = [json.dumps(r, ensure_ascii=False) for r in records]
    table = pa.table({k: pa.array(v, type=pa.float64() if k in labels or k == "duration"
                                  else pa.bool_() if k in ("speech", "uncertain")
                                  else pa.string()) for k, v in columns.items()})
    with atomic_open(path, "wb") as handle:
        pq.write_table(table, handle)
