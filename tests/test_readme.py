"""The README's Python examples run as written (from the repository root)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_python_examples():
    assert BLOCKS


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_each_python_example_runs(code, monkeypatch, capsys):
    monkeypatch.chdir(README.parent)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})  # noqa: S102
    out = capsys.readouterr().out
    assert out.strip()  # every example shows something
