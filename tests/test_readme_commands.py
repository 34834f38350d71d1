"""The README's shell commands run as written, with its placeholders filled in.

Every ``emovox ...`` (and ``curl ...``) line of the README's bash blocks runs here (file
placeholders replaced by shipped files, DIR/DIR2 by the real corpora when ../shared/data is
there), or :data:`NOT_RUN` says why not; a command this test cannot run and that has no reason
fails :func:`test_every_readme_command_has_a_rule`. Commands on the real corpora are ``slow``
(CI runs them); where a command as written would take long (a full cross-validation, the
default recipe's multi-condition training), :data:`CORPUS_LIMITS` appends options that make it
short.
"""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHARED = REPO.parent / "shared" / "data"
EXAMPLE = REPO / "src" / "emovox" / "data" / "example.wav"
MINI = REPO / "examples" / "mini_corpus"


def readme_commands() -> list[str]:
    """Every emovox/curl command line of the README's bash blocks (comments stripped)."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            line = " ".join(line.split())
            if line.startswith(("emovox ", "curl ")):
                lines.append(line)
    return lines


# Why a command is not run as written.
NOT_RUN = {
    "emovox cv ... --folds 1,3 --set model.pooling=mean --set augment.method=none":
        "an elided example (`...`) of ablation options; the options are tested in test_train",
    "emovox cv --corpus iemocap --root IEMOCAP_full_release --recipe vad --set "
    "data.targets=distribution --out runs/iemocap-vad":
        "IEMOCAP is not here; its loader is tested on synthetic files (test_corpora), the vad "
        "recipe on a synthetic corpus (test_targets)",
    "emovox cv --corpus msp_podcast --root MSP-PODCAST --recipe vad --set "
    "data.targets=distribution --out runs/msp-vad":
        "MSP-Podcast is not here; as for IEMOCAP",
    "emovox cv --corpus iemocap --root IEMOCAP_full_release --recipe whisper_logreg --set "
    "text.fusion=embedding --out runs/iemocap-text":
        "IEMOCAP is not here; its transcripts are tested on synthetic files (test_corpora), "
        "fusion in cv on a synthetic corpus (test_fusion)",
    "emovox predict --manifest calls.csv --engine ray --ray-address auto -o out.jsonl":
        "joins a running Ray cluster (`ray start --head`), which CI has not; --engine ray with "
        "a local Ray and --manifest are tested in test_scale",
}

# Commands on the real corpora: what is appended to keep them short in CI.
CORPUS_LIMITS = {
    "emovox cv --corpus emodb --root DIR --recipe whisper_logreg --set data.targets=distribution "
    "--out runs/soft": ["--folds", "1"],
    "emovox cv --corpus ravdess --root DIR --recipe mll --out runs/mll":
        ["--folds", "1", "--set", "optim.epochs=1"],
    "emovox train --corpus ravdess --root DIR --corpus emodb --root DIR2 --recipe default "
    "--out m.pt": ["--set", "augment.condition_copies=0", "--set", "augment.speed_factors=[]"],
    "emovox robustness --corpus emodb --root DIR --babble-corpus ravdess --babble-root DIR2 "
    "--conditions all --adaptations none,batch --out runs/rob": ["--limit", "30"],
    "emovox robustness --recipe default --corpus ravdess --root DIR --corpus emodb --root DIR2 "
    "--classes default7 --out runs/loco": ["--limit", "30", "--conditions", "white_10db",
                                           "--set", "augment.condition_copies=0",
                                           "--set", "augment.speed_factors=[]"],
}


def needs_corpus(command: str) -> bool:
    return " DIR" in command


def test_every_readme_command_has_a_rule():
    """Each command runs here (locally or on the corpora), or says why not."""
    commands = readme_commands()
    assert len(commands) >= 15
    for command in commands:
        placeholders = set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", command)) - {"DIR", "DIR2"}
        if "..." in command or placeholders:
            assert command in NOT_RUN, f"README command this test cannot run: {command}"
    stale = [c for c in [*NOT_RUN, *CORPUS_LIMITS] if c not in commands]
    assert not stale, f"rules for commands the README no longer has: {stale}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder holding what the placeholders name: talk.wav, meeting.flac, recordings/, ..."""
    work = tmp_path_factory.mktemp("readme")
    x, sr = sf.read(EXAMPLE, dtype="float32")
    shutil.copy(EXAMPLE, work / "talk.wav")
    sf.write(work / "meeting.flac", np.concatenate([x, np.zeros(sr, np.float32), x]), sr)
    for name in ("recordings", "calls"):
        (work / name).mkdir()
        for clip in sorted(MINI.glob("*.flac"))[:4]:
            shutil.copy(clip, work / name / clip.name)
    (np.clip(x, -1, 1) * 32767).astype("<i2").tofile(work / "audio.s16le")
    (work / "examples").symlink_to(REPO / "examples")
    (work / "src").symlink_to(REPO / "src")
    return work


def run(command: str, cwd: Path, extra: list[str] = (), timeout: float = 900,
        ) -> subprocess.CompletedProcess:
    """Run one README command line (``< file`` redirects stdin) with ``python -m emovox``."""
    args = shlex.split(command)
    stdin = None
    if "<" in args:
        at = args.index("<")
        stdin = open(cwd / args[at + 1], "rb")  # noqa: SIM115 - closed below
        args = args[:at] + args[at + 2:]
    assert args[0] == "emovox"
    try:
        return subprocess.run([sys.executable, "-m", "emovox", *args[1:], *extra], cwd=cwd,
                              stdin=stdin, capture_output=True, text=True, timeout=timeout)
    finally:
        if stdin is not None:
            stdin.close()


def local_commands() -> list:
    """The commands run here on shipped files; those starting a local Ray are ``slow``."""
    return [pytest.param(c, marks=pytest.mark.slow) if "--engine ray" in c else c
            for c in readme_commands()
            if not needs_corpus(c) and c not in NOT_RUN and not c.startswith("curl")
            and c != "emovox serve"]


@pytest.mark.parametrize("command", local_commands())
def test_readme_command_runs(command, workdir):
    if "m.pt" in command.split():
        # the README's own training command makes the model the export commands name
        made = run("emovox train --corpus manifest --root examples/mini_corpus/manifest.csv "
                   "--recipe whisper_logreg --out m.pt", workdir)
        assert made.returncode == 0, made.stderr
    if "export" in command:
        pytest.importorskip("onnxscript")
    done = run(command, workdir)
    assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
    assert "Traceback" not in done.stderr
    words = shlex.split(command)
    for flag in ("-o", "--plot", "--out", "--npz", "--onnx"):  # every file it names exists
        if flag in words:
            assert (workdir / words[words.index(flag) + 1]).exists(), (command, flag)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_readme_serve_and_curl(workdir):
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    assert "emovox serve" in readme_commands()
    curl = next(c for c in readme_commands() if c.startswith("curl "))
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "emovox", "serve", "--port", str(port)],
                              cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(base + "/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        # the curl line: -F file=@talk.wav against the README's URL (its port replaced)
        words = shlex.split(curl)
        field, name = words[words.index("-F") + 1].split("=@")
        url = words[-1].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        with open(workdir / name, "rb") as handle:
            answer = httpx.post(url, files={field: (name, handle, "audio/wav")}, timeout=60)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["label"] and body.get("timeline"), body
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def with_roots(command: str) -> str:
    """DIR / DIR2 after ``--root`` (``--babble-root``) become the folder of the corpus named
    just before (``--corpus``, ``--babble-corpus``)."""
    words = shlex.split(command)
    corpus = None
    for i, word in enumerate(words):
        if i and words[i - 1] in ("--corpus", "--babble-corpus"):
            corpus = word
        if word in ("DIR", "DIR2"):
            assert words[i - 1] in ("--root", "--babble-root") and corpus, command
            words[i] = str(SHARED / corpus)
    return shlex.join(words)


def test_corpus_roots_follow_the_corpus_named():
    line = with_roots("emovox train --corpus ravdess --root DIR --corpus emodb --root DIR2")
    assert line.endswith(f"--corpus emodb --root {SHARED / 'emodb'}")
    assert f"--corpus ravdess --root {SHARED / 'ravdess'} " in line
    assert with_roots("emovox folds --corpus emodb --root DIR").endswith(str(SHARED / "emodb"))
    assert with_roots("emovox robustness --corpus emodb --root DIR --babble-corpus ravdess "
                      "--babble-root DIR2").endswith(str(SHARED / "ravdess"))


corpus_commands = [c for c in readme_commands() if needs_corpus(c) and c not in NOT_RUN]


@pytest.mark.slow
@pytest.mark.corpus
@pytest.mark.skipif(not (SHARED / "ravdess").is_dir() or not (SHARED / "emodb").is_dir(),
                    reason="no ../shared/data")
def test_readme_corpus_commands_run_in_order(tmp_path):
    """The corpus commands, in README order (train writes the m.pt that evaluate reads)."""
    env_cache = os.environ.get("EMOVOX_CACHE")
    assert env_cache  # conftest points the feature cache into the test's temporary folder
    (tmp_path / "benchmarks").symlink_to(REPO / "benchmarks")  # committed results the README names
    for command in corpus_commands:
        done = run(with_roots(command), tmp_path, CORPUS_LIMITS.get(command, []), timeout=1800)
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr
    assert (tmp_path / "m.pt").exists() and (tmp_path / "runs" / "rob").is_dir()
