"""The VAD head and the spherical auxiliary on a synthetic corpus with known dimensions (#19).

This checks the machinery, not emotion: espeak-ng voices read sentences whose "valence" is
their pitch, "arousal" their loudness and "dominance" their speaking rate, each drawn
uniformly from [-1, 1] (seeded) and turned into sound by a fixed rule (``STYLE``). A model
that hears the audio can recover them; how well it does on voices it never heard says whether
training, the heads, standardisation, the spherical regions and prediction fit together. It
says nothing about how well valence, arousal or dominance of real speech can be recognised.

Per fold (voices split into ``--folds`` groups; each group held out once), the ``vad`` recipe
(``--recipe``) is trained on the other voices' recordings, with no emotion label at all, and
scored on the held-out voices: CCC per dimension. Each fold goes to
``benchmarks/results/vad_synthetic/fold_K.json`` when it finishes; the README block between
the ``vad-synthetic`` markers is written from the committed folds (``--table``).

Usage: ``python benchmarks/vad_synthetic.py [--folds-run 1,2] [--work DIR] [--cache DIR]``
then ``--table``. Needs espeak-ng and sox on the PATH.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emovox.config import load_recipe  # noqa: E402
from emovox.corpora import load_corpus  # noqa: E402
from emovox.evaluate import ccc  # noqa: E402
from emovox.files import provenance, write_between, write_text  # noqa: E402
from emovox.targets import DIMENSIONS, vad_matrix  # noqa: E402
from emovox.train import fit  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "vad_synthetic"
README = REPO / "README.md"
START, END = "<!-- vad-synthetic:start -->", "<!-- vad-synthetic:end -->"
VOICES = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
SENTENCES = ("The train leaves at seven tomorrow morning.",
             "I put the letters on the kitchen table.",
             "We walked along the river until it got dark.",
             "Please bring the blue folder to the meeting.",
             "The garden looks different after the rain.",
             "He said the shop closes early on Sundays.")
PER_VOICE = 30
SEED = 0
#: value in [-1, 1] -> sound: espeak-ng pitch (0-99), rate (words per minute), gain (dB, sox)
STYLE = {"valence": ("pitch", 50, 35), "arousal": ("gain_db", -10, 9),
         "dominance": ("speed", 165, 55)}


def style(values: np.ndarray) -> dict[str, float]:
    """The espeak-ng / sox settings of one recording's (valence, arousal, dominance)."""
    return {STYLE[name][0]: STYLE[name][1] + STYLE[name][2] * float(v)
            for name, v in zip(DIMENSIONS, values, strict=True)}


def make_corpus(work: Path) -> Path:
    """Write the recordings and ``manifest.csv`` (once; kept for later runs)."""
    manifest = work / "manifest.csv"
    if manifest.exists():
        return manifest
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise SystemExit(f"vad_synthetic.py: needs {tool} on the PATH")
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    rows = ["path,label,speaker,valence,arousal,dominance,vad_scale"]
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "x.wav"
        for voice in VOICES:
            for i in range(PER_VOICE):
                values = rng.uniform(-1, 1, size=3)
                s = style(values)
                name = f"{voice}_{i:02d}.flac"
                subprocess.run(["espeak-ng", "-v", f"en+{voice}", "-p", str(round(s["pitch"])),
                                "-s", str(round(s["speed"])), "-w", str(raw),
                                SENTENCES[i % len(SENTENCES)]], check=True)
                subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16",
                                str(work / name), "gain", f"{s['gain_db']:.2f}"], check=True)
                rows.append(f"{name},,{voice},{values[0]:.4f},{values[1]:.4f},{values[2]:.4f},"
                            "-1..1")
    write_text(manifest, "\n".join(rows) + "\n")
    return manifest


def run_fold(k: int, n_folds: int, utts: list, args: argparse.Namespace) -> dict:
    """Train on every voice but the fold's, score CCC on the fold's."""
    held = set(VOICES[k - 1::n_folds])
    test = [u for u in utts if u.speaker.split("/")[1] in held]
    train = [u for u in utts if u.speaker.split("/")[1] not in held]
    config = load_recipe(args.recipe, args.set)
    started = time.time()
    model = fit(config, train, [], extra=test, cache_dir=args.cache, progress=False)
    from emovox.dataset import FeatureBank
    from emovox.features import build_frontend

    bank = FeatureBank(build_frontend(model.frontend_config), test, args.cache,
                       config.data.cache_dtype, False)
    got = model.classify([bank.get(u) for u in test]).dimensions
    truth = vad_matrix(test)
    return {**provenance(), "fold": k, "test_voices": sorted(held), "n_train": len(train),
            "n_test": len(test), "recipe": args.recipe, "sets": args.set,
            "train_seconds": round(time.time() - started, 1),
            "ccc": {name: round(ccc(truth[:, j], got[:, j]), 4)
                    for j, name in enumerate(DIMENSIONS)},
            "predictions": [{"id": u.id, **{n: round(float(v), 4) for n, v in
                                           zip(DIMENSIONS, got[i], strict=True)}}
                            for i, u in enumerate(test)]}


def render() -> str:
    """The README block from the committed folds."""
    docs = [json.loads(p.read_text()) for p in sorted(OUT.glob("fold_*.json"))]
    if not docs:
        return "The synthetic VAD check has not been run yet (`benchmarks/vad_synthetic.py`)."
    mean = {n: float(np.mean([d["ccc"][n] for d in docs])) for n in DIMENSIONS}
    low = {n: min(d["ccc"][n] for d in docs) for n in DIMENSIONS}
    revisions = sorted({d["git_revision"] for d in docs})
    return (f"On the synthetic check (`benchmarks/vad_synthetic.py`: {len(VOICES)} espeak-ng "
            f"voices x {PER_VOICE} sentences, valence = pitch, arousal = loudness, dominance = "
            f"speaking rate, each uniform on -1..1; `--recipe {docs[0]['recipe']}`, no emotion "
            f"labels; {len(docs)} folds of held-out voices; revision "
            f"{', '.join(r[:10] for r in revisions)}), CCC on voices the model never heard: "
            + ", ".join(f"{n} {mean[n]:.2f} (lowest fold {low[n]:.2f})" for n in DIMENSIONS)
            + ". It checks the machinery end to end, not the recognition of emotion.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=4, help="voice groups (default 4)")
    parser.add_argument("--folds-run", default=None, help="folds to run, e.g. 1,2")
    parser.add_argument("--recipe", default="vad")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) /
                        "emovox-vad-synthetic", help="where the corpus is made (kept)")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--table", action="store_true", help="only write the README block")
    parser.add_argument("--out", type=Path, default=None, help="exploration: fold files go "
                        "here instead of the committed folder, and the README is left alone")
    args = parser.parse_args()
    out = args.out or OUT
    if not args.table:
        utts = load_corpus("manifest", make_corpus(args.work))
        todo = ([int(k) for k in args.folds_run.split(",")] if args.folds_run
                else range(1, args.folds + 1))
        out.mkdir(parents=True, exist_ok=True)
        for k in todo:
            path = out / f"fold_{k}.json"
            if path.exists():
                continue
            doc = run_fold(k, args.folds, utts, args)
            write_text(path, json.dumps(doc, indent=1))
            print(f"fold {k}: CCC " + ", ".join(f"{n} {v:.3f}" for n, v in doc["ccc"].items()),
                  flush=True)
    if args.out is None:
        write_between(README, START, END, render())
        print(render())


if __name__ == "__main__":
    main()
