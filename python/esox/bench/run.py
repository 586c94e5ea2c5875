"""``esox bench``: every workload, esox against eventsourcing 9.x and the
practical limits, in one process; a table, JSON and a chart (and, when asked,
the project's own performance goals)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from esox._progress import Progress
from esox.bench import latency
from esox.bench.chart import matplotlib_missing, write_chart
from esox.bench.goals import evaluate, explain
from esox.bench.harness import Measurement, measure, profile_side
from esox.bench.plan import (
    KINDS,
    Plan,
    eventsourcing_installed,
    postgres_unreachable,
)
from esox.bench.report import (
    format_goals,
    format_latency,
    format_table,
    machine,
    rate_text,
    ratio_text,
)
from esox.bench.workloads import FAMILIES, all_workloads
from esox.bench.workloads.mapper import limit_missing

__all__ = ["Options", "run_bench"]

# Families with workloads on PostgreSQL only.
POSTGRES_ONLY = ("pg writers", "partitions")

# Settings that would change what the applications do; a run ignores them.
CONFIGURATION = (
    "PERSISTENCE_MODULE",
    "COMPRESSOR_TOPIC",
    "CIPHER_TOPIC",
    "CIPHER_KEY",
    "IS_SNAPSHOTTING_ENABLED",
    "AGGREGATE_CACHE_MAXSIZE",
    "TRANSCODER_TOPIC",
    "MAPPER_TOPIC",
)


@dataclass
class Options:
    """What ``esox bench`` runs and where its files go."""

    quick: bool = False
    compare: str = "eventsourcing"
    persistence: tuple[str, ...] = KINDS
    out: Path = Path("bench-out")
    scale: int | None = None
    repeats: int | None = None
    only: tuple[str, ...] = ()
    latency: bool = True
    profile: bool = True
    chart: bool = True
    # The project's performance goals (esox.bench.goals): for its developers.
    goals: bool = False
    notes: list[str] = field(default_factory=list)


@contextmanager
def ignored_configuration(notes: list[str]) -> Iterator[None]:
    """Take the applications' settings out of os.environ for the run."""
    saved = {key: os.environ.pop(key) for key in CONFIGURATION if key in os.environ}
    if saved:
        notes.append(f"ignored while running: {', '.join(sorted(saved))}")
    try:
        yield
    finally:
        os.environ.update(saved)


def _selected(name: str, only: Sequence[str]) -> bool:
    return not only or any(name.startswith(prefix) for prefix in only)


def _summary(m: Measurement) -> str:
    if m.error:
        return f"error: {m.error}"
    text = "esox " + rate_text(m.rate("esox"), m.workload.unit)
    for side, short in (("eventsourcing", "es"), ("limit", "limit")):
        if m.ratio(side):
            text += f", {ratio_text(m.ratio(side))} {short}"
    return text


def run_bench(
    options: Options, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> dict[str, Any]:
    """Run the benchmark; print the report; write results.json and chart.png.
    The goals are judged (and missed ones profiled) only if ``options.goals``."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    notes = list(options.notes)
    with_es = options.compare == "eventsourcing"
    if with_es and not eventsourcing_installed():
        notes.append(
            "eventsourcing is not installed (pip install 'esox[bench]'): "
            "esox-only numbers, no ratios against it"
        )
        with_es = False
    kinds = tuple(k for k in options.persistence if k in KINDS)
    why = "PostgreSQL is not in --persistence"
    if "postgres" in kinds:
        why = postgres_unreachable()
        if why:
            notes.append(f"PostgreSQL workloads skipped: {why}")
            kinds = tuple(k for k in kinds if k != "postgres")
    skipped = [f for f in POSTGRES_ONLY if _selected(f, options.only)]
    if skipped and "postgres" not in kinds:
        notes.append(f"{', '.join(skipped)}: PostgreSQL only, not run ({why})")
    if any(_selected(f, options.only) for f in ("mapper encode", "mapper decode")):
        for variant in ("plain", "zlib+AES"):
            missing = limit_missing(variant)
            if missing:
                notes.append(
                    f"{missing} is not installed: no practical limit for {variant}"
                )
        if with_es:
            notes.append("mapper zstd: eventsourcing has no zstd; its side is its zlib")

    options.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with (
        tempfile.TemporaryDirectory(prefix="esox-bench-") as workdir,
        ignored_configuration(notes),
    ):
        plan = Plan.create(
            quick=options.quick,
            scales=(options.scale,) if options.scale else None,
            kinds=kinds,
            eventsourcing=with_es,
            workdir=Path(workdir),
            repeats=options.repeats,
        )
        workloads = [
            w for w in all_workloads(plan) if _selected(w.family, options.only)
        ]
        if with_es and any(w.side_repeats for w in workloads):
            notes.append(
                f"eventsourcing's side ran once at the largest scale of each "
                f"workload (its blocks take seconds there); esox's and the "
                f"limit's ran {plan.repeats_at(max(plan.scales))} to "
                f"{plan.repeats} times; the chart shows {plan.chart_scale:,} events"
            )
        latency_kinds = []
        if options.latency and _selected("command latency", options.only):
            latency_kinds = latency.latency_kinds(plan)
        before = machine()
        progress = Progress(len(workloads) + len(latency_kinds), err)
        measurements = []
        for workload in workloads:
            progress.start(workload.key)
            t0 = time.monotonic()
            measurement = measure(workload)
            measurements.append(measurement)
            progress.finish(workload.key, time.monotonic() - t0, _summary(measurement))
        latencies = []
        for kind in latency_kinds:
            label = f"command latency, {kind.name}"
            progress.start(label)
            t0 = time.monotonic()
            result = latency.measure(plan, kind)
            latencies.append(result)
            status = result.error or (
                f"p50 esox {(result.percentile('esox', 'p50') or 0) / 1000:.0f}us"
            )
            progress.finish(label, time.monotonic() - t0, status)
        progress.close("workloads")

        goals = (
            evaluate(measurements, latencies, plan.repository_scale)
            if with_es and options.goals
            else []
        )
        for goal in goals:
            if goal.status != "missed":
                continue
            goal.explanation = explain(goal, measurements)
            if not options.profile:
                continue
            try:
                if goal.worst is not None:
                    goal.profile = profile_side(goal.worst.workload)
                elif goal.latency is not None:
                    kind = next(
                        k for k in latency_kinds if k.name == goal.latency.persistence
                    )
                    goal.profile = latency.profile(plan, kind)
            except Exception as e:
                goal.profile = f"(profile failed: {type(e).__name__}: {e})"

    after = machine()
    elapsed = time.time() - started
    print(format_table(measurements, with_es=with_es), file=out)
    if latencies:
        print(file=out)
        print(format_latency(latencies, with_es=with_es), file=out)
    print(file=out)
    if goals:
        print(format_goals(goals), file=out)
        for goal in goals:
            if goal.status == "missed" and (goal.explanation or goal.profile):
                print(f"\nMissed: {goal.title}", file=out)
                if goal.explanation:
                    print(f"  {goal.explanation}", file=out)
                if goal.profile:
                    print("  Profile of esox's side (cProfile, by own time):", file=out)
                    for line in goal.profile.splitlines():
                        print(f"    {line}", file=out)
    elif options.goals:
        print("Goals: not evaluated (no eventsourcing to compare with).", file=out)
    for note in notes:
        print(f"Note: {note}", file=out)

    results: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(elapsed, 1),
        "machine": before | {"loadavg_after": after["loadavg"]},
        "plan": {
            "quick": plan.quick,
            "scales": list(plan.scales),
            "persistence": list(plan.kinds),
            "eventsourcing": plan.eventsourcing,
            "repeats": plan.repeats,
            "max_transactions": plan.max_transactions,
            "families": [f for f in FAMILIES if _selected(f, options.only)],
        },
        "notes": notes,
        "workloads": [m.as_dict() for m in measurements],
        "latency": [r.as_dict() for r in latencies],
        "goals": [g.as_dict() for g in goals],
    }
    json_path = options.out / "results.json"
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"Wrote {json_path}", file=out)
    if options.chart:
        if matplotlib_missing():
            print(
                "Note: no chart: matplotlib is not installed "
                "(pip install 'esox[bench]')",
                file=out,
            )
        else:
            chart_path = options.out / "chart.png"
            title = (
                f"esox against eventsourcing 9.x: {before['nproc']} x {before['cpu']}"
                if with_es
                else "esox against the practical limits (eventsourcing not installed)"
            )
            against = "eventsourcing" if with_es else "limit"
            if write_chart(
                chart_path,
                measurements,
                latencies,
                title=title,
                scale=plan.chart_scale,
                against=against,
            ):
                print(f"Wrote {chart_path}", file=out)
    return results
