"""pytest plugin loaded into each conformance run (-p esox_conformance_plugin).

Writes one JSON line per event to $ESOX_CONFORMANCE_OUT as it happens, so a
run that crashes (a segfault, a hang past the timeout's reach) still leaves
the outcomes before the crash: "started" when a test begins, its combined
outcome when it ends, collection errors, and "session-finished".

Deselects (and records as "deferred") tests matching the patterns in
$ESOX_CONFORMANCE_DEFERRED (JSON [[pattern, note], ...]; a pattern is a node
id, or a node-id prefix ending in "*") and, silently, the
node ids listed in the file $ESOX_CONFORMANCE_EXCLUDE (tests already run
before a crash). Once a module has had $ESOX_CONFORMANCE_MODULE_TIMEOUTS
(default 3) tests time out, its remaining tests are recorded as failed
without running. In a pass with another default persistence module,
$ESOX_CONFORMANCE_PASS_ENV is put back into os.environ before every test and,
for PostgreSQL, the tables of $ESOX_CONFORMANCE_PG_CLEAN's database are
dropped. This file is copied beside the trees; it imports neither library.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

_OUT = os.environ.get("ESOX_CONFORMANCE_OUT", "")
_DEFERRED: list[list[str]] = json.loads(
    os.environ.get("ESOX_CONFORMANCE_DEFERRED", "[]")
)
_EXCLUDE_FILE = os.environ.get("ESOX_CONFORMANCE_EXCLUDE", "")
# A pass with another default persistence module: these settings are put back
# before every test (tests that set PERSISTENCE_MODULE delete it when done).
_PASS_ENV: dict[str, str] = json.loads(
    os.environ.get("ESOX_CONFORMANCE_PASS_ENV", "{}")
)
# PostgreSQL pass: connection settings of the database whose tables are dropped
# before every test, as the corpus's own PostgreSQL tests do in setUp.
_PG_CLEAN: dict[str, str] = json.loads(
    os.environ.get("ESOX_CONFORMANCE_PG_CLEAN", "{}")
)
_TIMEOUTS_PER_MODULE = int(os.environ.get("ESOX_CONFORMANCE_MODULE_TIMEOUTS", "3"))
_phases: dict[str, dict[str, Any]] = {}
_timeouts: dict[str, int] = {}  # module -> tests that timed out


def _serialise_ast_parse() -> None:
    """One ``ast.parse`` at a time, across threads.

    CPython before 3.13 (at least 3.11.7 and 3.12.1, as here) keeps
    ast.parse's recursion counter in state shared by all threads (CPython
    gh-106905): a thread that formats a traceback (3.11's
    traceback module parses the source line for its carets) while pytest
    formats a failure in another, which a garbage collection that joins
    threads can interleave, fails with "SystemError: AST constructor
    recursion depth mismatch" inside pytest, which then ends the session.
    """
    import ast
    import sys
    import threading

    if sys.version_info >= (3, 13):
        return
    parse = ast.parse
    lock = threading.RLock()

    def serialised(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return parse(*args, **kwargs)

    ast.parse = serialised  # type: ignore[assignment]


_serialise_ast_parse()


def _write(record: dict[str, Any]) -> None:
    if not _OUT:
        return
    with open(_OUT, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


def matches(nodeid: str, pattern: str) -> bool:
    """A node id, or a node-id prefix ending in "*" (brackets are literal)."""
    if pattern.endswith("*"):
        return nodeid.startswith(pattern[:-1])
    return nodeid == pattern


def _first_error_line(report: pytest.BaseReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, lineno, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    message = getattr(crash, "message", "") if crash is not None else ""
    if not message:
        text = report.longreprtext or ""
        errors = [
            line[1:].strip() for line in text.splitlines() if line.startswith("E ")
        ]
        message = errors[0] if errors else (text.strip().splitlines() or [""])[-1]
    first = message.strip().splitlines()[0] if message.strip() else ""
    return first[:300]


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    excluded: set[str] = set()
    if _EXCLUDE_FILE and os.path.exists(_EXCLUDE_FILE):
        with open(_EXCLUDE_FILE, encoding="utf-8") as f:
            excluded = {line.strip() for line in f if line.strip()}
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        note = next(
            (n for pattern, n in _DEFERRED if matches(item.nodeid, pattern)), None
        )
        if note is not None:
            _write({"nodeid": item.nodeid, "outcome": "deferred", "message": note})
            drop.append(item)
        elif item.nodeid in excluded:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _write(
            {
                "nodeid": report.nodeid,
                "outcome": "collect-error",
                "message": _first_error_line(report),
            }
        )


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


NOT_RUN = "not run: "


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before each test: the pass's settings, and empty PostgreSQL tables in the
    PostgreSQL pass. Once a module has had its share of timeouts, its other
    tests are not run (recorded as failed): a hanging library would otherwise
    cost the timeout once per test."""
    timed_out = _timeouts.get(_module(item.nodeid), 0)
    if _TIMEOUTS_PER_MODULE and timed_out >= _TIMEOUTS_PER_MODULE:
        pytest.skip(f"{NOT_RUN}{timed_out} tests of this module timed out")
    os.environ.update(_PASS_ENV)
    if _PG_CLEAN:
        _drop_tables(_PG_CLEAN)


def _drop_tables(settings: dict[str, str]) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(**settings, autocommit=True) as conn:  # type: ignore[arg-type]
        # Applications of earlier tests that were never closed (the corpus
        # expects POPO by default) keep their connections: end them, or they
        # use up the server's connection slots.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE usename = current_user AND pid <> pg_backend_pid()"
        )
        rows = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('public', 'myschema')"
        ).fetchall()
        for schema, table in rows:
            conn.execute(
                sql.SQL("DROP TABLE IF EXISTS {}.{} CASCADE").format(
                    sql.Identifier(schema), sql.Identifier(table)
                )
            )


def pytest_runtest_logstart(nodeid: str, location: object) -> None:
    _write({"nodeid": nodeid, "outcome": "started"})
    _phases[nodeid] = {"outcome": "passed", "message": "", "duration": 0.0}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    state = _phases.setdefault(
        report.nodeid, {"outcome": "passed", "message": "", "duration": 0.0}
    )
    state["duration"] += report.duration
    if state["outcome"] in {"failed", "error"}:
        return  # the first failure is the one that counts
    if hasattr(report, "wasxfail"):
        state["outcome"] = "xfailed" if report.skipped else "xpassed"
        state["message"] = str(report.wasxfail)
    elif report.failed:
        state["outcome"] = "failed" if report.when == "call" else "error"
        prefix = "" if report.when == "call" else f"in {report.when}: "
        state["message"] = prefix + _first_error_line(report)
    elif report.skipped:
        state["message"] = _first_error_line(report)
        if NOT_RUN in state["message"]:  # see pytest_runtest_setup
            state["outcome"] = "failed"
            state["message"] = state["message"][state["message"].index(NOT_RUN) :]
        else:
            state["outcome"] = "skipped"


def pytest_runtest_logfinish(nodeid: str, location: object) -> None:
    state = _phases.pop(nodeid, {"outcome": "passed", "message": "", "duration": 0.0})
    if "Timeout" in state["message"] and state["outcome"] in {"failed", "error"}:
        _timeouts[_module(nodeid)] = _timeouts.get(_module(nodeid), 0) + 1
    _write({"nodeid": nodeid, **state})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _write({"nodeid": "", "outcome": "session-finished", "exitstatus": int(exitstatus)})
