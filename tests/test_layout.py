"""The layout: data flows one way through the stages, and using a model never imports training.

Every import in src/emovox (at module level or inside a function) is checked against the stage
order the README's "How the code is arranged" shows: a module may import its own stage and
earlier ones, never a later one.
"""

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "emovox"

#: The stages in the order of the README's table ("How the code is arranged").
STAGES = [
    "_version", "errors", "types", "labels", "targets", "files",   # records and plumbing
    "config",                                           # recipes: every option, checked
    "ops", "layers",                                    # numbers (numpy, torch)
    "audio", "vad", "cues", "voice",                    # audio; its cues; voice conversion
    "corpora", "folds",                                 # data and protocols
    "features", "conditions", "augment",                # frontends; test and training audio
    "models", "losses", "evaluate",                     # networks, objectives, metrics
    "bundle",                                           # what a trained model is
    "asr", "fusion", "text",                            # what is said: transcripts, text scores
    "distributed", "dataset", "covada", "textfit", "train", "experiment",  # training, cv
    "explain", "report",                                # why a model said what it said
    "inference", "scale", "robustness", "fairness", "live", "serve", "export",  # using a model
    "edge",                                             # the edge model: distil, export
    "cli", "__main__", "__init__",                      # shells
]
TRAINING = {"distributed", "dataset", "textfit", "train", "experiment", "losses", "augment"}


def stage_of(module: str) -> str:
    """``emovox.features.whisper`` -> ``features``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> set[str]:
    """Every emovox module a file imports, wherever the import statement stands."""
    module = "emovox." + ".".join(path.relative_to(SRC).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("emovox")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
                found |= set(names)
            elif node.module and node.module.startswith("emovox"):
                found.add(node.module)
    return {m for m in found if m != "emovox"} | ({"emovox.__init__"} & found)


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        module = "emovox." + ".".join(path.relative_to(SRC).with_suffix("").parts)
        edges.setdefault(stage_of(module.removesuffix(".__init__")), set()).update(
            stage_of(m) for m in imports_of(path))
    return edges


def test_every_module_is_in_a_stage():
    assert set(graph()) <= set(STAGES), set(graph()) - set(STAGES)


def test_no_stage_imports_a_later_one():
    order = {name: i for i, name in enumerate(STAGES)}
    later = sorted((a, b) for a, targets in graph().items() for b in targets
                   if order[b] > order[a])
    assert later == []


def test_using_a_model_never_imports_training_code():
    edges = graph()
    for start in ("inference", "robustness", "live", "serve", "export"):
        seen, todo = set(), [start]
        while todo:
            stage = todo.pop()
            for nxt in edges.get(stage, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert not seen & TRAINING, (start, seen & TRAINING)


def test_importing_emovox_and_loading_a_model_stay_light():
    code = ("import sys, emovox; assert 'torch' not in sys.modules, 'torch'; "
            "import emovox.serve, emovox.live; "
            "r = emovox.Recognizer.default(); r.predict_file(emovox.example_path()); "
            "bad = [m for m in sys.modules if m.split('.')[1:2] and m.split('.')[1] in "
            f"{sorted(TRAINING)!r} and m.startswith('emovox.')]; assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
