from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture()
def load_benchmark(monkeypatch):
    """Import a script of benchmarks/ by name, as a module registered for this test only."""
    import importlib.util
    import sys

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)  # dataclasses look it up
        spec.loader.exec_module(module)
        return module

    return load


#: Overrides that shrink any neural recipe to a model the tone corpus trains in seconds.
TINY_MODEL = [
    'frontend={name = "logmel", n_mels = 32}',
    "model.hidden_dim=32",
    "model.num_heads=4",
    "model.mlp_dim=32",
    "model.embedding_dim=16",
    "model.projection_dim=16",
    "optim.batch_size=8",
    "optim.lr=3e-3",
    "optim.patience=0",
]

def _voice(f0: float, seconds: float, rng: np.random.Generator, sr: int = 16000) -> np.ndarray:
    """A voiced, vowel-like signal: harmonics of f0 with vibrato, an envelope and some noise."""
    t = np.arange(int(seconds * sr)) / sr
    f = f0 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = np.minimum(1, np.minimum(t, t[-1] - t) * 20)
    return (0.2 * env * x + 0.01 * rng.normal(size=t.size)).astype(np.float32)


@pytest.fixture(scope="session")
def tone_corpus(tmp_path_factory) -> Path:
    """A tiny synthetic corpus in manifest form: 6 speakers, 2 'emotions' told apart by pitch.

    "happy" utterances are high-pitched, "sad" ones low, each speaker with its own base pitch,
    so a model must generalise to unseen speakers. Returns the manifest path.
    """
    root = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    rows = ["path,label,speaker,gender"]
    for s in range(6):
        base = 110 + 15 * s
        for i in range(6):
            label = "happy" if i % 2 == 0 else "sad"
            f0 = base * (2.0 if label == "happy" else 1.0) * (1 + 0.03 * rng.normal())
            name = f"s{s}_{i}.wav"
            sf.write(root / name, _voice(f0, 0.6 + 0.1 * (i % 3), rng), 16000)
            rows.append(f"{name},{label},spk{s},{'female' if s % 2 else 'male'}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


@pytest.fixture(autouse=True, scope="session")
def _feature_cache_outside_home(tmp_path_factory):
    """Commands cache features in $EMOVOX_CACHE or ~/.cache/emovox: keep tests out of home."""
    import os

    previous = os.environ.get("EMOVOX_CACHE")
    os.environ["EMOVOX_CACHE"] = str(tmp_path_factory.mktemp("emovox-cache"))
    yield
    if previous is None:
        os.environ.pop("EMOVOX_CACHE", None)
    else:
        os.environ["EMOVOX_CACHE"] = previous
