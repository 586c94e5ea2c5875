"""Classification of per-test outcomes, the gate, and the report (pure functions)."""

from __future__ import annotations

import re
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Categories of a test, from its control and esox outcomes.
BOTH_PASSED = "passed on both"
ESOX_FAILED = "failed on esox only"
BOTH_FAILED = "failed on both"
ESOX_ONLY_PASSED = "passed on esox only"
DEFERRED = "deferred"
NOT_COMPARABLE = "skipped on control"
CATEGORIES = (
    BOTH_PASSED,
    ESOX_FAILED,
    BOTH_FAILED,
    ESOX_ONLY_PASSED,
    DEFERRED,
    NOT_COMPARABLE,
)

PASSING = frozenset({"passed", "xfailed"})
FAILING = frozenset(
    {"failed", "error", "crashed", "collect-error", "xpassed", "missing"}
)

Outcome = dict[str, Any]  # {"outcome": str, "message": str, ...}


def matches(nodeid: str, pattern: str) -> bool:
    """A node id, or a pattern in which each "*" stands for any characters
    (brackets are literal): ``...::TestPostgres*::test_x`` names test_x in
    every class whose name starts so."""
    if "*" not in pattern:
        return nodeid == pattern
    regex = ".*".join(re.escape(piece) for piece in pattern.split("*"))
    return re.fullmatch(regex, nodeid) is not None


_PASS_PREFIX = re.compile(r"^\[(\w+)\] ")


def unprefixed(nodeid: str) -> str:
    """A node id without its pass ("[sqlite] tests/x.py::t" -> "tests/x.py::t")."""
    return _PASS_PREFIX.sub("", nodeid)


def pass_of(nodeid: str) -> str:
    """The pass (default persistence module) a node id belongs to."""
    match = _PASS_PREFIX.match(nodeid)
    return match.group(1) if match else "popo"


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def merge_records(
    records: list[dict[str, Any]],
) -> tuple[dict[str, Outcome], dict[str, str]]:
    """Per-test final outcomes and per-file collection errors from plugin records."""
    tests: dict[str, Outcome] = {}
    collect_errors: dict[str, str] = {}
    for record in records:
        nodeid, outcome = record.get("nodeid", ""), record.get("outcome", "")
        if outcome in {"started", "session-finished"}:
            continue
        if outcome == "collect-error":
            collect_errors[nodeid] = record.get("message", "")
            continue
        tests[nodeid] = {k: v for k, v in record.items() if k != "nodeid"}
    return tests, collect_errors


def _collect_error_for(nodeid: str, collect_errors: dict[str, str]) -> str | None:
    path = module_of(nodeid)
    for errored, message in collect_errors.items():
        if errored and (path == errored or path.startswith(errored.rstrip("/") + "/")):
            return message
    return None


def esox_outcome(
    nodeid: str, esox: dict[str, Outcome], collect_errors: dict[str, str]
) -> Outcome:
    if nodeid in esox:
        return esox[nodeid]
    message = _collect_error_for(nodeid, collect_errors)
    if message is not None:
        return {"outcome": "collect-error", "message": message}
    return {"outcome": "missing", "message": "not collected on esox"}


def classify(control: Outcome, esox: Outcome) -> str:
    c, e = control["outcome"], esox["outcome"]
    if c == "deferred":
        return DEFERRED
    if c in PASSING:
        return BOTH_PASSED if e in PASSING else ESOX_FAILED
    if c in FAILING:
        return ESOX_ONLY_PASSED if e in PASSING else BOTH_FAILED
    return NOT_COMPARABLE


@dataclass(frozen=True)
class KnownDifference:
    test: str  # a node id, or a node-id prefix ending in "*"
    reason: str


def load_known_differences(path: Path) -> list[KnownDifference]:
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    entries = data.get("difference", [])
    known = []
    for i, entry in enumerate(entries):
        test, reason = entry.get("test", ""), str(entry.get("reason", "")).strip()
        if not test or not reason:
            raise ValueError(
                f"{path}: [[difference]] number {i + 1} needs both 'test' (a node id "
                f"or pattern) and 'reason' (why esox deliberately differs); "
                f"got {entry!r}"
            )
        known.append(KnownDifference(test=test, reason=reason))
    return known


def load_pending(path: Path) -> list[str]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def known_reason(nodeid: str, known: list[KnownDifference]) -> str | None:
    """An entry names a test in every pass, or (with its "[pass] " prefix) in one."""
    for entry in known:
        if matches(nodeid, entry.test) or matches(unprefixed(nodeid), entry.test):
            return entry.reason
    return None


@dataclass
class Comparison:
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)  # nodeid -> row
    modules: dict[str, Counter[str]] = field(default_factory=dict)
    totals: Counter[str] = field(default_factory=Counter)


def compare(
    control: dict[str, Outcome],
    esox: dict[str, Outcome],
    esox_collect_errors: dict[str, str],
) -> Comparison:
    result = Comparison()
    modules: dict[str, Counter[str]] = defaultdict(Counter)
    for nodeid in sorted(control):
        c = control[nodeid]
        e = (
            {"outcome": "deferred", "message": c.get("message", "")}
            if c["outcome"] == "deferred"
            else esox_outcome(nodeid, esox, esox_collect_errors)
        )
        category = classify(c, e)
        result.tests[nodeid] = {
            "category": category,
            "control": c["outcome"],
            "esox": e["outcome"],
            "control_message": c.get("message", ""),
            "esox_message": e.get("message", ""),
        }
        modules[module_of(nodeid)][category] += 1
        result.totals[category] += 1
    result.modules = dict(sorted(modules.items()))
    return result


@dataclass
class Gate:
    unexplained: list[str]  # control passes, esox fails, not known, not pending
    pending_failing: list[str]
    known_failing: list[tuple[str, str]]  # (nodeid, reason)
    pending_now_passing: list[str]
    known_now_passing: list[str]
    pending_unknown: list[str]  # pending entries that are not a control-passing test

    def ok(self, strict: bool) -> bool:
        if self.unexplained:
            return False
        return not (strict and (self.pending_now_passing or self.known_now_passing))


def gate(
    comparison: Comparison, known: list[KnownDifference], pending: list[str]
) -> Gate:
    pending_set = set(pending)
    unexplained, pending_failing, known_failing = [], [], []
    for nodeid, row in comparison.tests.items():
        if row["category"] != ESOX_FAILED:
            continue
        reason = known_reason(nodeid, known)
        if reason is not None:
            known_failing.append((nodeid, reason))
        elif nodeid in pending_set:
            pending_failing.append(nodeid)
        else:
            unexplained.append(nodeid)
    passing = {
        n for n, row in comparison.tests.items() if row["category"] == BOTH_PASSED
    }
    control_passing = passing | {
        n for n, row in comparison.tests.items() if row["category"] == ESOX_FAILED
    }
    known_now_passing = sorted(n for n in passing if known_reason(n, known) is not None)
    return Gate(
        unexplained=unexplained,
        pending_failing=pending_failing,
        known_failing=known_failing,
        pending_now_passing=sorted(pending_set & passing),
        known_now_passing=known_now_passing,
        pending_unknown=sorted(pending_set - control_passing),
    )


def pending_from(comparison: Comparison, known: list[KnownDifference]) -> list[str]:
    """The ratchet: every control-passing test esox fails, less known differences."""
    return sorted(
        nodeid
        for nodeid, row in comparison.tests.items()
        if row["category"] == ESOX_FAILED and known_reason(nodeid, known) is None
    )


_WHERE = re.compile(r" \((?:/|[A-Za-z]:\\)[^()]*\)$")


def cause_of(message: str) -> str:
    """A first error line without the file path an ImportError appends."""
    return _WHERE.sub("", message)


def failure_causes(comparison: Comparison) -> list[tuple[str, int]]:
    """Failures on esox (of control-passing tests), grouped by first error line."""
    causes: Counter[str] = Counter()
    for row in comparison.tests.values():
        if row["category"] == ESOX_FAILED:
            causes[cause_of(row["esox_message"]) or row["esox"]] += 1
    return causes.most_common()


SHORT = {
    BOTH_PASSED: "both",
    ESOX_FAILED: "esox-fail",
    BOTH_FAILED: "both-fail",
    ESOX_ONLY_PASSED: "esox-only",
    DEFERRED: "deferred",
    NOT_COMPARABLE: "ctl-skip",
}


def markdown_table(
    comparison: Comparison, backends: dict[str, str] | None = None
) -> str:
    backends = backends or {}
    head = ["module", *(SHORT[c] for c in CATEGORIES), "backends"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(name: str, counts: Counter[str], backend: str) -> str:
        cells = [name, *(str(counts.get(c, 0)) for c in CATEGORIES), backend]
        return "| " + " | ".join(cells) + " |"

    for module, counts in comparison.modules.items():
        lines.append(row(module, counts, backends.get(module, "")))
    by_pass: dict[str, Counter[str]] = defaultdict(Counter)
    for nodeid, test in comparison.tests.items():
        by_pass[pass_of(nodeid)][test["category"]] += 1
    if len(by_pass) > 1:
        for name, counts in sorted(by_pass.items()):
            lines.append(row(f"**total, {name} pass**", counts, name))
    lines.append(row("**total**", comparison.totals, ""))
    legend = ", ".join(f"{SHORT[c]} = {c}" for c in CATEGORIES)
    return "\n".join([*lines, "", legend])
