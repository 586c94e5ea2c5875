"""The report on stdout: the per-module table, causes, what esox lacks, the gate."""

from __future__ import annotations

from tests.conformance import compare as cmp
from tests.conformance import inventory

SHOW = 25  # list entries shown on stdout (all are in report.json)


def print_report(
    version: str,
    comparison: cmp.Comparison,
    result: cmp.Gate,
    *,
    backends: dict[str, str],
    control_errors: dict[str, str],
    missing: list[tuple[str, str, str, int]],
    drift: list[tuple[str, str]],
    flaky: list[str],
) -> None:
    print(
        "## Conformance: eventsourcing 9.5 corpus on esox (control: eventsourcing "
        f"{version})\n"
    )
    print(cmp.markdown_table(comparison, backends))
    print("\n### Failures on esox of control-passing tests, by first error line\n")
    for message, count in cmp.failure_causes(comparison)[:40]:
        print(f"- {count}: {message}")
    if control_errors:
        print("\n### Collection errors on the control\n")
        for nodeid, message in control_errors.items():
            print(f"- {nodeid}: {message}")
    print("\n### What the corpus uses that esox lacks (number of files using it)\n")
    print(inventory.format_missing(missing) or "- none")
    print("\n### esox.tests helpers (test logic the corpus inherits)\n")
    for module, status in drift:
        print(f"- {module}: {status}")
    if flaky:
        print("\n### Flaky: failed, then passed when run again\n")
        for line in flaky:
            print(f"- {line}")
    print("\n### Gate\n")
    print(f"- known differences failing on esox: {len(result.known_failing)}")
    print(f"- pending (pending.txt) still failing: {len(result.pending_failing)}")
    for nodeid in result.pending_now_passing[:SHOW]:
        print(f"- now passing: remove from pending.txt: {nodeid}")
    if len(result.pending_now_passing) > SHOW:
        more = len(result.pending_now_passing) - SHOW
        print(f"- ... and {more} more now passing (make conformance-update)")
    for nodeid in result.known_now_passing:
        print(f"- now passing: a known difference no longer differs: {nodeid}")
    for nodeid in result.pending_unknown[:SHOW]:
        print(
            f"- pending.txt names a test that is not a control-passing test: {nodeid}"
        )
    if len(result.pending_unknown) > SHOW:
        print(f"- ... and {len(result.pending_unknown) - SHOW} more such entries")
    for nodeid in result.unexplained[:SHOW]:
        row = comparison.tests[nodeid]
        print(
            "- REGRESSION (passes on control, fails on esox): "
            f"{nodeid}: {row['esox_message']}"
        )
    if len(result.unexplained) > SHOW:
        print(f"- ... and {len(result.unexplained) - SHOW} more (all in report.json)")
