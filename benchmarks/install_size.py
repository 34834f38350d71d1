"""What a plain ``pip install`` of emovox brings: size, no PyTorch, and a working ``predict``.

In a fresh virtual environment (a temporary folder), ``pip install <this checkout>`` without
extras, then:

- ``python -c "import torch"`` must fail (the runtime is ONNX Runtime + numpy);
- ``emovox predict`` on the bundled example and on a folder of recordings (``--folder``,
  default: the bundled example's folder) must succeed;
- the environment's size on disk (every file under the venv, bytes), the largest installed
  packages, and the wheel count.

Writes ``benchmarks/results/install_size.json`` (with the provenance record). The size depends
on the platform's wheels (here: Linux x86-64, CPython of the running interpreter).

Usage: ``python benchmarks/install_size.py [--folder DIR] [--out FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emovox.files import provenance, write_text  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "install_size.json"


def tree_bytes(folder: Path) -> int:
    """Bytes of every regular file under ``folder`` (symlinks not followed)."""
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def main() -> None:
    """Install, check, measure, write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=REPO / "src" / "emovox" / "data")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    doc = provenance()
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / "bin" / "python"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        subprocess.run([str(python), "-m", "pip", "install", "-q", str(REPO)], check=True,
                       env=env)
        torch = subprocess.run([str(python), "-c", "import torch"], capture_output=True,
                               env=env)
        example = REPO / "src" / "emovox" / "data" / "example.wav"
        one = subprocess.run([str(venv / "bin" / "emovox"), "predict", str(example)],
                             capture_output=True, text=True, env=env)
        folder = subprocess.run([str(venv / "bin" / "emovox"), "predict", str(args.folder)],
                                capture_output=True, text=True, env=env)
        site = next((venv / "lib").glob("python*/site-packages"))
        packages = sorted(((tree_bytes(p), p.name) for p in site.iterdir() if p.is_dir()
                           and not p.name.endswith((".dist-info", "__pycache__"))),
                          reverse=True)
        doc.update({
            "venv_megabytes": round(tree_bytes(venv) / 1e6, 1),
            "site_packages_megabytes": round(tree_bytes(site) / 1e6, 1),
            "distributions": len(list(site.glob("*.dist-info"))),
            "largest": {name: round(size / 1e6, 1) for size, name in packages[:10]},
            "import_torch_fails": torch.returncode != 0,
            "predict_example": {"exit": one.returncode, "output": one.stdout.strip()[:300]},
            "predict_folder": {"exit": folder.returncode,
                               "records": len(folder.stdout.strip().splitlines())},
        })
    doc["targets"] = {"no_torch": doc["import_torch_fails"],
                      "predict_works": doc["predict_example"]["exit"] == 0
                      and doc["predict_folder"]["exit"] == 0,
                      "under_300_mb": doc["venv_megabytes"] < 300}
    write_text(args.out, json.dumps(doc, indent=1))
    print(json.dumps({k: doc[k] for k in ("venv_megabytes", "largest", "targets")}, indent=1))


if __name__ == "__main__":
    main()
