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


def test_write_between_replaces_only_the_marked_block_and_refuses_a_file_without_it(tmp_path):
    from emovox.errors import EmovoxError
    from emovox.files import write_between

    page = tmp_path / "page.md"
    page.write_text("before\n<!-- a -->\nold\nlines\n<!-- b -->\nafter\n")
    write_between(page, "<!-- a -->", "<!-- b -->", "new")
    assert page.read_text() == "before\n<!-- a -->\nnew\n<!-- b -->\nafter\n"
    (tmp_path / "plain.md").write_text("no markers\n")
    with pytest.raises(EmovoxError, match="no <!-- a --> ... <!-- b --> markers"):
        write_between(tmp_path / "plain.md", "<!-- a -->", "<!-- b -->", "x")
    assert (tmp_path / "plain.md").read_text() == "no markers\n"
