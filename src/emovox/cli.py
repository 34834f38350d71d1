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

from . import __version__
from .errors import EmovoxError

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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
    from .train import load_recipe

    return load_recipe(args.recipe, args.set or [])


def _class_spec(args: argparse.Namespace, config: Any) -> str | None:
    if args.classes:
        return str(args.classes)
    value = config.data.classes
    if value is None:
        return None
    return value if isinstance(value, str) else ",".join(value)


def cmd_cv(args: argparse.Namespace) -> int:
    """Cross-validate a recipe on a corpus's speaker-independent protocol."""
    from .corpora import CORPORA
    from .experiment import run_cv

    config = _recipe(args)
    utterances = _load_corpora([args.corpus], [args.root], _class_spec(args, config))[0]
    protocol = args.protocol or CORPORA[args.corpus].protocol
    doc = run_cv(config, utterances, corpus=args.corpus, protocol=protocol, out_dir=args.out,
                 folds=args.folds, k=args.k, cache_dir=args.cache, progress=not args.quiet,
                 save_models=args.save_models)
    m = doc["mean"]
    done = f"{len(doc['folds'])}/{doc['n_folds']} folds"
    _print(f"{config.name} on {args.corpus} ({protocol}, {done}): UA {m['ua']:.2f}  "
           f"WA {m['wa']:.2f}  macro-F1 {m['macro_f1']:.2f}  -> {args.out}/results.json")
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    """Train one model on one or more corpora and write a checkpoint."""
    from .corpora import CORPORA
    from .folds import make_folds
    from .train import fit, save_checkpoint

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
    model = fit(config, train, valid, cache_dir=args.cache, progress=not args.quiet)
    model.info["training_data"] = {
        "corpora": list(args.corpus),
        "n_train": len(train),
        "valid_speakers": sorted({u.speaker for u in valid}),
    }
    save_checkpoint(model, args.out)
    _print(f"wrote {args.out} (labels: {', '.join(model.labels)}; "
           f"validation UA {model.scores.get('valid_ua', float('nan')):.2f})")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a checkpoint on a corpus (cross-corpus tests)."""
    from .experiment import evaluate_model
    from .files import provenance
    from .train import load_checkpoint

    model = load_checkpoint(args.model)
    utterances = _load_corpora([args.corpus], [args.root], args.classes)[0]
    scores = evaluate_model(model, utterances, cache_dir=args.cache, progress=not args.quiet)
    doc = {"model": args.model, "corpus": args.corpus, **scores, **provenance()}
    if args.format == "json":
        _emit(json.dumps(doc, indent=1), args.output)
    else:
        text = (f"{args.corpus}: {scores['n']} utterances, classes {', '.join(scores['classes'])}"
                f"\nUA {scores['ua']:.2f}  WA {scores['wa']:.2f}  "
                f"macro-F1 {scores['macro_f1']:.2f}")
        _emit(text, args.output)
    return EXIT_OK


def _add_recipe_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", required=True, help="shipped recipe name or a TOML file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set model.pooling=mean (repeatable)")
    p.add_argument("--classes", help="class subset: a name (iemocap4) or a,b,c")
    p.add_argument("--cache", default=None,
                   help="feature cache folder (default: $EMOVOX_CACHE or ~/.cache/emovox)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")


# --- the parser -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Build the ``emovox`` argument parser with every subcommand."""
    parser = _Parser(prog="emovox", description="Speech emotion recognition.")
    parser.add_argument("--version", action="version", version=f"emovox {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

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

    p = sub.add_parser("cv", help="cross-validate a recipe on a corpus (speaker-independent)")
    p.add_argument("--corpus", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--protocol", help="override the corpus's literature protocol")
    p.add_argument("--folds", type=_parse_int_list, help="only these folds, e.g. 1,3")
    p.add_argument("--k", type=int, help="number of folds for speaker k-fold protocols")
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
    p.add_argument("--model", required=True, help="checkpoint file")
    p.add_argument("--corpus", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--classes", help="class subset: a name or a,b,c")
    p.add_argument("--cache", default=None, help="feature cache folder")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--output", "-o", help="write to this file (atomically) instead of stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return func(args)
    except EmovoxError as exc:
        sys.stderr.write(f"emovox: error: {exc}\n")
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
        if os.environ.get("EMOVOX_DEBUG"):
            raise
        sys.stderr.write(
            f"emovox: internal error: {type(exc).__name__}: {exc} "
            "(set EMOVOX_DEBUG=1 for a traceback and please report it)\n"
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
