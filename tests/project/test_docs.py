"""Every python code block in README.md and docs/*.md runs, in order, per file."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(path: Path) -> list[tuple[int, str]]:
    text = path.read_text()
    return [
        (text.count("\n", 0, m.start()) + 2, m.group(1)) for m in BLOCK.finditer(text)
    ]


@pytest.mark.parametrize(
    "path", DOC_FILES, ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_code_blocks_run(path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    blocks = python_blocks(path)
    if path.name == "README.md":
        assert blocks, "README.md has no python code blocks"
    monkeypatch.chdir(tmp_path)
    for key in (
        "PERSISTENCE_MODULE",
        "SQLITE_DBNAME",
        "CIPHER_KEY",
        "COMPRESSOR_TOPIC",
    ):
        monkeypatch.delenv(key, raising=False)
    # A real module, so that topics of classes defined in the docs resolve.
    name = "docs_" + re.sub(r"\W", "_", path.stem)
    module = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, module)
    for line, code in blocks:
        compiled = compile(code, f"{path}:{line}", "exec")
        exec(compiled, module.__dict__)
