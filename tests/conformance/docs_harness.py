"""One test per documentation file, around the corpus's own TestDocs.

Copied into both trees as tests/docs_tests/test_conformance_docs.py. The
corpus's TestDocs.test_docs runs every .rst file in one test, so one broken
page would hide all the others. This module
calls the same TestDocs.check_code_snippets_in_file on each file on its own,
with the same set-up, tear-down, environment and skip list as test_docs; it
adds no checks and removes none. The mypy pass that check_code_snippets_in_file
runs after the code has passed only prints its findings (test_docs never
asserts on it), so it is stubbed out unless ESOX_CONFORMANCE_DOCS_MYPY=1:
it costs seconds per file and cannot change an outcome.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

# Imported as a module only: a TestDocs name here would be collected again.
from tests.docs_tests import test_docs as corpus_docs

SKIPPED = ("aggregate6.rst", "part4.rst")  # test_docs.test_docs's own skip list
REDEFINITION_ENV = "EVENTSOURCING_DISABLE_REDEFINITION_CHECK"  # as test_docs sets


def _has_code(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    return any(
        marker in text
        for marker in (
            ".. code-block:: python",
            "include-when-testing",
            ".. literalinclude::",
        )
    )


def _doc_files() -> list[str]:
    docs = corpus_docs.base_dir / "docs"
    if not docs.exists():
        return []
    return sorted(
        str(path.relative_to(corpus_docs.base_dir))
        for path in docs.rglob("*.rst")
        if path.name not in SKIPPED and _has_code(path)
    )


class _NoMypy:
    """Stands in for the Popen of the mypy pass: no findings, exit 0."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def communicate(self) -> tuple[str, str]:
        return "", ""

    def wait(self) -> int:
        return 0


def _settle(before: set[threading.Thread]) -> None:
    """Wait (up to 5 s each) for threads a page started, ignoring interrupts
    meanwhile: projection.rst starts one that sends SIGINT after 1 s, and when
    the page fails first, that signal would interrupt whichever test runs
    next. Adds no check; only keeps a page's effects within its own test."""
    started = [t for t in threading.enumerate() if t not in before and not t.daemon]
    if not started:
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for thread in started:
            thread.join(timeout=5)
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("doc", _doc_files())
def test_doc(doc: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.environ.get("ESOX_CONFORMANCE_DOCS_MYPY") != "1":
        monkeypatch.setattr(corpus_docs, "Popen", _NoMypy)
    before = set(threading.enumerate())
    try:
        _run_doc(doc)
    finally:
        _settle(before)


def _run_doc(doc: str) -> None:
    case = corpus_docs.TestDocs("test_docs")
    case.setUp()
    failures: list[tuple[Path, str]] = []
    try:
        case._out = ""
        os.environ[REDEFINITION_ENV] = "y"
        try:
            case.check_code_snippets_in_file(
                corpus_docs.base_dir / doc, failures=failures
            )
        except case.failureException:
            error = failures[-1][1] if failures else "failed"
            lines = [line for line in error.strip().splitlines() if line.strip()]
            raise AssertionError(f"{lines[-1] if lines else error}\n{error}") from None
        finally:
            os.environ.pop(REDEFINITION_ENV, None)
    finally:
        case.tearDown()
