"""Which eventsourcing modules and names the corpus uses, and which esox lacks.

Scans the corpus's Python files and the Python code blocks of its README.md
and docs for `from eventsourcing.X import N`,
`import eventsourcing.X`, attribute chains `eventsourcing.X.N` and topics
"eventsourcing.X:N", then checks each `esox.X` / `esox.X.N` by importing it in
a subprocess (so the caller's interpreter never imports esox).
"""

from __future__ import annotations

import ast
import difflib
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from tests.conformance.rewrite import MODULES, rewrite_python

_TOPIC = re.compile(
    rf"(?<![\w.])eventsourcing\.((?:{'|'.join(sorted(MODULES))})[\w.]*):(\w+)"
)
# Not for esox to provide: referenced by the corpus to show they do not
# resolve, or names of the DCB domain model newer than eventsourcing 9.5.6
# (the corpus is a later snapshot of the 9.5 branch; 9.5.6 lacks them too).
ABSENT_ON_PURPOSE = frozenset(
    {
        ("domain", "OldClass"),
        ("dcb.domain", "DecoratedFuncCaller"),
        ("dcb.domain", "Initialises"),
        ("dcb.domain", "Mutates"),
    }
)
_DOC_BLOCK_LINE = re.compile(r"^    (.*)$")


def _doc_code(text: str, markdown: bool) -> str:
    """Python code blocks of a doc, as one module (best effort; for the inventory)."""
    out: list[str] = []
    in_block = False
    for line in text.splitlines():
        if markdown:
            if line.startswith("```python"):
                in_block = True
            elif in_block and line.startswith("```"):
                in_block = False
            elif in_block:
                out.append(line)
        else:
            if line.startswith(".. code-block:: python"):
                in_block = True
            elif in_block and line and not line.startswith(" "):
                in_block = False
            elif in_block:
                match = _DOC_BLOCK_LINE.match(line)
                out.append(match.group(1) if match else "")
    return "\n".join(out)


def references(source: str) -> set[tuple[str, str]]:
    """(module, name) pairs; name "" for a module referenced as a whole."""
    found: set[tuple[str, str]] = set()
    for module, name in _TOPIC.findall(source):
        found.add((module, name))
    try:
        tree = ast.parse(source)
    except SyntaxError:
        for line in source.splitlines():  # a doc that does not parse as a whole
            try:
                tree = ast.parse(line.strip())
            except SyntaxError:
                continue
            found |= _from_tree(tree)
        return found
    return found | _from_tree(tree)


def _from_tree(tree: ast.AST) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] != "eventsourcing":
                continue
            module = ".".join(parts[1:])
            found.add((module, ""))
            for alias in node.names:
                found.add((module, alias.name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "eventsourcing":
                    found.add((".".join(parts[1:]), ""))
        elif isinstance(node, ast.Attribute):
            chain: list[str] = []
            current: ast.expr = node
            while isinstance(current, ast.Attribute):
                chain.insert(0, current.attr)
                current = current.value
            if (
                isinstance(current, ast.Name)
                and current.id == "eventsourcing"
                and chain
            ):
                if chain[0] in MODULES and len(chain) >= 2:
                    found.add((chain[0], chain[1]))
                elif chain[0] not in MODULES:
                    found.add(("", chain[0]))
    return found


def scan(corpus: Path) -> dict[tuple[str, str], set[str]]:
    """(module, name) -> the corpus files referring to it."""
    refs: dict[tuple[str, str], set[str]] = defaultdict(set)
    files = list(corpus.rglob("*.py"))
    docs = list(corpus.glob("docs/**/*.rst"))
    for path in [*files, *docs, corpus / "README.md"]:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix != ".py":
            text = _doc_code(text, path.suffix == ".md")
        for ref in references(text):
            if ref not in ABSENT_ON_PURPOSE:
                refs[ref].add(str(path.relative_to(corpus)))
    return refs


_CHECK = """
import importlib, json, sys
wanted = json.loads(sys.stdin.read())
missing = []
for module, name in wanted:
    full = "esox" + ("." + module if module else "")
    try:
        mod = importlib.import_module(full)
    except Exception as exc:
        missing.append([module, name, f"{type(exc).__name__}: {exc}"])
        continue
    if name and not hasattr(mod, name):
        try:
            importlib.import_module(full + "." + name)
        except Exception:
            missing.append([module, name, ""])
print(json.dumps(missing))
"""


def missing_in_esox(
    refs: dict[tuple[str, str], set[str]],
    python: str = sys.executable,
    cwd: Path | None = None,
) -> list[tuple[str, str, str, int]]:
    """(module, name, error, number of corpus files) for what esox lacks."""
    wanted = sorted(refs)
    out = subprocess.run(
        [python, "-c", _CHECK],
        input=json.dumps(wanted),
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
    )
    return [(m, n, e, len(refs[(m, n)])) for m, n, e in json.loads(out.stdout)]


def format_missing(missing: list[tuple[str, str, str, int]]) -> str:
    modules = sorted({m for m, n, e, _ in missing if not n})
    lines = []
    for module in modules:
        error = next(e for m, n, e, _ in missing if m == module and not n)
        lines.append(f"- module esox.{module}: {error}")
    by_module: dict[str, list[str]] = defaultdict(list)
    for module, name, _error, count in missing:
        if name and module not in modules:
            by_module[module].append(f"{name} ({count})")
    for module, names in sorted(by_module.items()):
        where = f"esox.{module}" if module else "esox"
        lines.append(f"- {where}: " + ", ".join(sorted(names)))
    return "\n".join(lines)


def helper_drift(
    refs: dict[tuple[str, str], set[str]], control_tree: Path, esox_tree: Path
) -> list[tuple[str, str]]:
    """The eventsourcing.tests modules the corpus imports, against esox's.

    Their test-case classes hold test logic that test_sqlite, test_postgres,
    test_popo, ... inherit, so esox.tests.X should be eventsourcing 9.5.6's
    eventsourcing/tests/X.py ported by the same rules: this says how far each is.
    """
    modules = sorted({m for m, _ in refs if m.startswith("tests.")})
    drift = []
    for module in modules:
        rel = Path(*module.split(".")).with_suffix(".py")
        original, ours = control_tree / "eventsourcing" / rel, esox_tree / "esox" / rel
        if not ours.exists():
            drift.append((f"esox.{module}", "missing"))
            continue
        if not original.exists():
            drift.append((f"esox.{module}", "not in eventsourcing 9.5.6 to compare"))
            continue
        ported = rewrite_python(original.read_text(encoding="utf-8")).splitlines()
        diff = difflib.unified_diff(
            ported, ours.read_text(encoding="utf-8").splitlines()
        )
        changed = sum(
            1
            for line in diff
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        )
        drift.append(
            (
                f"esox.{module}",
                "the port of eventsourcing 9.5.6's, unchanged"
                if not changed
                else f"{changed} lines added or removed against the port of "
                f"eventsourcing 9.5.6's eventsourcing/{rel}",
            )
        )
    return drift


if __name__ == "__main__":
    corpus = Path(sys.argv[1])
    print(format_missing(missing_in_esox(scan(corpus))))
