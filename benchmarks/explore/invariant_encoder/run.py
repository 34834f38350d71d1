"""Exploration: the encoder's first layers fine-tuned to hear through recording conditions.

Issue #13's in-corpus checks are missed where the frozen Whisper tiny.en features move with the
channel (EmoDB telephone drop 5.4, RAVDESS reverberation 5.1 and telephone 3.2). Here, for each
speaker-independent fold, a copy of the default recipe's encoder (conv stem and the two layers
it keeps) is trained on the fold's training speakers only, label-free: the pooled statistics it
gives a corrupted copy of a recording (the recipe's training conditions, drawn from another
seed than the recipe's copies and the harness's test conditions) should equal those the frozen
encoder gives the clean recording, and the student's own statistics of the clean recording
should stay where they were. Statistics are the ones the head reads: mean and standard
deviation over the voice frames (the recipe's frame gate) of every hidden state, each feature
measured in units of its spread over the training recordings.

The fold's student is written as a CTranslate2 ``model.bin`` (the encoder variables) and the
default recipe is trained on it as usual (``frontend.model_path``), then tested like the
harness's ``--cv`` (``evaluate_conditions``, seed 0, babble from 60 recordings of the other
corpus). Fold files follow the harness's layout, so ``emovox.robustness.merge_folds`` reads
them; compare them with ``benchmarks/results/robustness/default_cv`` fold by fold.

    python benchmarks/explore/invariant_encoder/run.py --corpus emodb --root DIR \
        --other ravdess --other-root DIR --folds 1,2 --work /tmp/inv \
        --out benchmarks/results/robustness/explore/invariant_encoder \
        --steps 2000 --lr 5e-5 --train-stem

``--merge`` writes a variant's ``results.json`` from its fold files, ``--loco`` tunes and trains
on all of ``--corpus`` and tests on all of ``--other``, ``--table`` prints the committed
variants beside the default recipe's harness runs (the table in
``benchmarks/results/robustness/NOTES.md``). Measured and not adopted: see that file.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import torch

from emovox.audio import load
from emovox.cli import _spread as spread
from emovox.conditions import condition_rng, conditions_named, training_copy
from emovox.config import frontend_options, load_recipe
from emovox.corpora import CORPORA, load_corpus
from emovox.features import build_frontend
from emovox.features.whisper import (
    WhisperEncoder,
    _model_file,
    read_ctranslate2,
    whisper_log_mel,
    write_ctranslate2,
)
from emovox.files import provenance, write_text
from emovox.folds import make_folds
from emovox.inference import Recognizer
from emovox.labels import ordered
from emovox.layers import masked_moments
from emovox.robustness import evaluate_conditions, merge_folds
from emovox.train import fit
from emovox.vad import frame_gate

RATE = 16000


def say(line: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {line}\n")
    sys.stderr.flush()


def signals(utts: list, frontend, families: list[str], copies: int, seed: int,
            path: Path) -> dict:
    """Conditioned clean signal and ``copies`` conditioned training copies per utterance."""
    if path.exists():
        return pickle.loads(path.read_bytes())
    raw = {u.id: load(u.path, RATE).astype(np.float32) for u in utts}
    by_speaker: dict[str, list] = {}
    for u in utts:
        by_speaker.setdefault(u.speaker, []).append(u)
    out = {}
    for i, u in enumerate(utts):
        voices = [raw[v.id] for v in by_speaker[u.speaker] if v.id != u.id]
        out[u.id] = [frontend.condition(raw[u.id])] + [
            frontend.condition(training_copy(raw[u.id], RATE, families, seed, u.id, k, voices))
            for k in range(copies)]
        if (i + 1) % 100 == 0:
            say(f"copies {i + 1}/{len(utts)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(out))
    return out


def pooled(encoder: WhisperEncoder, waves: list[np.ndarray], gate_db: float, depth: int):
    """``[B, depth + 1, 2 D]``: mean and std over the gated frames of every hidden state."""
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(w)
    mel, mel_mask = whisper_log_mel(batch, lengths)
    hidden, mask = encoder(mel, mel_mask, last=depth)
    gate = torch.zeros_like(mask)
    for i, w in enumerate(waves):
        frames = int(mask[i].sum())
        gate[i, :frames] = torch.from_numpy(frame_gate(w, RATE, frames, gate_db))
    states = torch.stack(hidden, dim=1)  # [B, L + 1, T, D]
    mean, var = masked_moments(states, gate)
    return torch.cat([mean, var.clamp(min=1e-8).sqrt()], dim=-1)


def invariance(teacher, student, test, chosen, babble, frontend, scale, gate_db, depth):
    """Mean squared distance (in training spreads) of each condition's statistics to the
    frozen encoder's clean ones, over the test speakers: frozen and tuned encoder (a diagnostic,
    reported only; nothing is chosen by it)."""
    out = {}
    with torch.no_grad():
        raw = {u.id: load(u.path, RATE) for u in test}
        clean = torch.stack([pooled(teacher, [frontend.condition(raw[u.id])], gate_db, depth)[0]
                             for u in test])
        for c in [None, *chosen]:
            waves = [frontend.condition(raw[u.id] if c is None else c.apply(
                raw[u.id], RATE, condition_rng(0, u.id, c.name), babble=babble)) for u in test]
            pair = []
            for enc in (teacher, student):
                stats = torch.stack([pooled(enc, [w], gate_db, depth)[0] for w in waves])
                pair.append(float((((stats - clean) / scale) ** 2).mean()))
            out["clean" if c is None else c.name] = pair
    return out


def write_model(encoder: WhisperEncoder, base: dict[str, np.ndarray], path: Path) -> None:
    """The base encoder's variables with this (cut) encoder's in their place, as model.bin."""
    names = encoder.ctranslate2_names()  # its own layers; the file's others stay
    state = encoder.state_dict()
    variables = dict(base)
    for ours, theirs in names.items():
        variables[theirs] = state[ours].detach().numpy().astype(np.float32)

    path.parent.mkdir(parents=True, exist_ok=True)
    write_ctranslate2(path, variables)


def tune(train: list, data: dict, target: dict, args: argparse.Namespace, index: int,
         gate_db: float, depth: int):
    """A student encoder tuned on ``train`` (training speakers only); its loss scale; a record."""
    scale = torch.stack([target[u.id] for u in train]).std(dim=0).clamp(min=1e-4)
    torch.manual_seed(index)
    rng = np.random.default_rng([args.seed, index])
    student = WhisperEncoder.from_ctranslate2(None, depth)
    if not args.train_stem:
        for module in (student.conv1, student.conv2):
            module.requires_grad_(False)
    student.train()
    params = [q for q in student.parameters() if q.requires_grad]
    optim = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    t0, running = time.time(), []
    for step in range(args.steps):
        picks = rng.integers(0, len(train), args.batch)
        versions = [0 if rng.random() < args.clean else int(rng.integers(1, args.copies + 1))
                    for _ in picks]
        waves = [data[train[i].id][v] for i, v in zip(picks, versions, strict=True)]
        goal = torch.stack([target[train[i].id] for i in picks])
        loss = (((pooled(student, waves, gate_db, depth) - goal) / scale) ** 2).mean()
        optim.zero_grad()
        loss.backward()
        optim.step()
        running.append(float(loss.detach()))
        if (step + 1) % 50 == 0:
            say(f"fold {index} step {step + 1}: loss {np.mean(running[-50:]):.4f} "
                f"({time.time() - t0:.0f} s)")
    student.eval()
    record = {"steps": args.steps, "lr": args.lr, "clean": args.clean, "copies": args.copies,
              "seed": args.seed, "batch": args.batch, "train_stem": args.train_stem,
              "loss_first_last": [float(np.mean(running[:50])), float(np.mean(running[-50:]))],
              "seconds": round(time.time() - t0)}
    return student, scale, record


def loco(args, config, utts, other, data, target, teacher, base, frontend, chosen, variant,
         gate_db, depth) -> int:
    """Leave one corpus out: tuned and trained on ``--corpus``, tested on ``--other``."""
    folder = Path(args.out) / variant / f"loco-{args.corpus}-to-{args.other}"
    if (folder / "results.json").exists():
        say(f"kept {folder / 'results.json'}")
        return 0
    student, scale, tuning = tune(utts, data, target, args, 0, gate_db, depth)
    test_babble = spread(utts, 60)  # the harness makes babble of the other corpora given
    shift = invariance(teacher, student, other, chosen, [load(u.path, RATE) for u in test_babble],
                       frontend, scale, gate_db, depth)
    say("test-corpus distance to clean, frozen -> tuned: "
        + ", ".join(f"{k} {a:.3f} -> {b:.3f}" for k, (a, b) in shift.items()))
    model_bin = Path(args.work) / variant / f"{args.corpus}-all" / "model.bin"
    write_model(student, base, model_bin)
    model = fit(dataclasses.replace(config, frontend={**config.frontend,
                                                      "model_path": str(model_bin)}),
                utts, [], cache_dir=None, progress=False)
    doc = evaluate_conditions(Recognizer(model, threads=1), other, chosen, adaptations=["none"],
                              seed=0, babble=test_babble, progress=say)
    doc = {"test": args.other, "model": f"default trained on {args.corpus}, tuned encoder",
           **doc, "tuning": tuning, "distance_to_clean": shift, **provenance()}
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / "results.json", json.dumps(doc, indent=1))
    say(f"written {folder / 'results.json'}")
    return 0


def table(out: Path) -> int:
    """Markdown: each explored variant beside today's default (default_cv, default_loco)."""
    base = Path(__file__).resolve().parents[2] / "results" / "robustness"

    def ua(doc: dict, cond: str) -> float:
        return doc["results"][cond]["none"]["ua"]

    def in_corpus(doc: dict) -> str:
        cells = [doc["drop"][c]["none"] for c in ("babble_10db", "reverb_0.6s", "telephone")]
        drops = " / ".join(f"{d['ua']:.1f} ± {d['ua_se']:.1f}" for d in cells)
        ece = doc["results"]["clean"]["none"]["ece"]
        return f"{ua(doc, 'clean'):.1f} (ECE {ece:.1f}) / {drops}"

    def cross(doc: dict) -> str:
        excess = doc["results"]["clean"]["none"]["max_share_excess"]
        return (f"{ua(doc, 'clean'):.1f} (`{excess['class']}` {excess['points']:+.1f}) / "
                f"{ua(doc, 'telephone'):.1f}")

    def read(path: Path) -> dict | None:
        return json.loads(path.read_text()) if path.exists() else None

    rows = [("default (`default_cv`, `default_loco`)", base / "default_cv",
             base / "default_loco" / "emodb", base / "default_loco" / "ravdess")]
    for variant in sorted(p for p in out.iterdir() if p.is_dir()):
        rows.append((f"tuned encoder `{variant.name}`", variant,
                     variant / "loco-ravdess-to-emodb", variant / "loco-emodb-to-ravdess"))
    print("In-corpus: clean UA (ECE of the pooled folds) / UA drops ± standard error over the "
          "folds; cross-corpus: each file alone, shared classes, clean UA (the most "
          "over-answered class, its excess share in points) / telephone UA.\n")
    print("| encoder | RAVDESS clean / drops babble 10 dB / RT60 0.6 s / telephone "
          "| EmoDB clean / drops | RAVDESS->EmoDB clean / telephone "
          "| EmoDB->RAVDESS clean / telephone |")
    print("| --- | --- | --- | --- | --- |")
    for name, cv, r2e, e2r in rows:
        cells = []
        for doc in (read(cv / "ravdess-ravdess6" / "results.json"),
                    read(cv / "emodb-emodb_loso" / "results.json")):
            cells.append("—" if doc is None else in_corpus(doc))
        for doc in (read(r2e / "results.json"), read(e2r / "results.json")):
            cells.append("—" if doc is None else cross(doc))
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--other", required=True, help="corpus the test babble is made of")
    p.add_argument("--other-root", required=True)
    p.add_argument("--folds", default=None, help="comma-separated fold numbers (default all)")
    p.add_argument("--work", required=True, help="folder for copies and fold encoders")
    p.add_argument("--out", required=True)
    p.add_argument("--copies", type=int, default=6)
    p.add_argument("--seed", type=int, default=7, help="seed of the fine-tuning copies")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--clean", type=float, default=0.25, help="share of clean inputs")
    p.add_argument("--train-stem", action="store_true", help="also train the conv stem")
    p.add_argument("--conditions", default="babble_10db,reverb_0.6s,telephone")
    p.add_argument("--merge", action="store_true", help="only merge the fold files there are")
    p.add_argument("--loco", action="store_true",
                   help="tune and train on all of --corpus, test on all of --other")
    p.add_argument("--table", action="store_true",
                   help="print the committed variants beside the default as markdown")
    args = p.parse_args()
    if args.table:
        return table(Path(args.out))
    torch.set_num_threads(1)

    config = load_recipe("default")
    options = frontend_options(config)
    frontend = build_frontend(options)
    depth = int(options["depth"])
    gate_db = float(options["gate_db"])
    utts = sorted(load_corpus(args.corpus, args.root, classes="default7"), key=lambda u: u.id)
    labels = list(ordered(str(u.label) for u in utts))
    protocol = CORPORA[args.corpus].protocol
    variant = (f"steps{args.steps}-lr{args.lr:g}-clean{args.clean:g}-copies{args.copies}"
               + ("-stem" if args.train_stem else ""))
    folder = Path(args.out) / variant / f"{args.corpus}-{protocol}"
    folds = make_folds(utts, protocol, seed=0)
    if args.merge:
        docs = [json.loads(f.read_text()) for f in sorted((folder / "folds").glob("fold_*.json"))]
        doc = {"test": f"{args.corpus} ({protocol}, {len(docs)} folds)",
               "model": f"default recipe on a fold-tuned encoder ({variant})",
               **merge_folds(docs), **provenance()}
        write_text(folder / "results.json", json.dumps(doc, indent=1))
        say(f"merged {len(docs)} folds -> {folder / 'results.json'}")
        return 0
    chosen = conditions_named(args.conditions.split(","))
    other = load_corpus(args.other, args.other_root, classes="default7")
    babble = spread(other, 60)
    babble_waves = [load(u.path, RATE) for u in babble]
    families = list(config.augment.conditions)
    work = Path(args.work)
    data = signals(utts, frontend, families, args.copies, args.seed,
                   work / f"{args.corpus}-copies{args.copies}-seed{args.seed}.pkl")
    base = read_ctranslate2(_model_file(None))
    teacher = WhisperEncoder.from_ctranslate2(None, depth).requires_grad_(False)
    with torch.no_grad():
        target = {u.id: pooled(teacher, [data[u.id][0]], gate_db, depth)[0] for u in utts}

    if args.loco:
        return loco(args, config, utts, other, data, target, teacher, base, frontend, chosen,
                    variant, gate_db, depth)
    selected = None if args.folds is None else {int(f) for f in args.folds.split(",")}
    (folder / "folds").mkdir(parents=True, exist_ok=True)
    for fold in folds:
        if selected is not None and fold.index not in selected:
            continue
        path = folder / "folds" / f"fold_{fold.index}.json"
        if path.exists():
            say(f"fold {fold.index}: kept")
            continue
        train = list(fold.train) + list(fold.valid)
        student, scale, tuning = tune(train, data, target, args, fold.index, gate_db, depth)
        shift = invariance(teacher, student, fold.test, chosen, babble_waves, frontend, scale,
                           gate_db, depth)
        say(f"fold {fold.index}: test-speaker distance to clean, frozen -> tuned: "
            + ", ".join(f"{k} {a:.3f} -> {b:.3f}" for k, (a, b) in shift.items()))
        model_bin = work / variant / f"{args.corpus}-fold{fold.index}" / "model.bin"
        write_model(student, base, model_bin)
        fold_config = dataclasses.replace(
            config, frontend={**config.frontend, "model_path": str(model_bin)})
        say(f"fold {fold.index}: training the recipe on the tuned encoder")
        model = fit(fold_config, fold.train, fold.valid, labels=labels, extra=fold.test,
                    cache_dir=None, progress=False)
        recognizer = Recognizer(model, threads=1)
        doc = evaluate_conditions(recognizer, fold.test, chosen, adaptations=["none"], seed=0,
                                  babble=babble, progress=say)
        doc = {"fold": fold.index, "test_speakers": fold.test_speakers, **doc,
               "tuning": tuning,
               "distance_to_clean": shift, **provenance()}
        write_text(path, json.dumps(doc, indent=1))
        say(f"fold {fold.index}: written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
