"""The run's report: a text table of rates and ratios, the goals, the machine,
and ``results.json``."""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
from collections.abc import Sequence
from typing import Any

from esox.bench.goals import GoalResult
from esox.bench.harness import Measurement
from esox.bench.latency import QUANTILES, LatencyResult

__all__ = ["format_goals", "format_latency", "format_table", "machine", "rate_text"]


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(
                (
                    line.split(":", 1)[1].strip()
                    for line in cpuinfo
                    if line.startswith("model name")
                ),
                "",
            )
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    versions = {"python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version}
    for name in ("esox", "eventsourcing", "orjson", "psycopg"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:
            continue
    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "loadavg": [round(x, 2) for x in load],
        "versions": versions,
    }


def rate_text(rate: float | None, unit: str = "event") -> str:
    """A rate as ``1.23M ev/s`` or ``456 op/s``."""
    if rate is None:
        return "-"
    suffix = "ev/s" if unit == "event" else "op/s"
    for scale, letter in ((1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:.3g}{letter} {suffix}"
    return f"{rate:.3g} {suffix}"


def time_text(ns: float | None) -> str:
    """Nanoseconds as ns, us, ms or s, three significant digits."""
    if ns is None:
        return "-"
    if ns >= 1e9:
        return f"{ns / 1e9:.3g}s"
    if ns >= 1e6:
        return f"{ns / 1e6:.3g}ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3g}us"
    return f"{ns:.3g}ns"


def ratio_text(ratio: float | None) -> str:
    """A speed ratio as ``12.3x`` (or ``-``)."""
    if ratio is None:
        return "-"
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.1f}x"


COLUMNS = (
    ("workload", "<"),
    ("events", ">"),
    ("esox", ">"),
    ("eventsourcing", ">"),
    ("limit", ">"),
    ("x es", ">"),
    ("x limit", ">"),
    ("esox/unit", ">"),
    ("es/unit", ">"),
)


def _render(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for row in rows:
        cells = [
            f"{cell:{align}{width}}"
            for cell, (_, align), width in zip(row, COLUMNS, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def format_table(measurements: Sequence[Measurement], *, with_es: bool) -> str:
    """One row per workload and scale: rates, ratios and per-unit cost.

    "x es" is esox's speed over eventsourcing's; "x limit" is esox's speed
    over the practical limit's (below 1x: slower than the limit).
    """
    header = tuple(name for name, _ in COLUMNS)
    rows: list[tuple[str, ...]] = [header]
    family = ""
    for m in measurements:
        w = m.workload
        if w.family != family:
            family = w.family
            rows.append((f"-- {family}", *[""] * (len(COLUMNS) - 1)))
        label = f"  {w.variant or w.family}"
        if w.limit_name and "limit" in m.times_ns:
            label += f" [limit: {w.limit_name}]"
        if m.error:
            rows.append((label, f"{w.scale:,}", f"error: {m.error}"[:60], *[""] * 6))
            continue
        rows.append(
            (
                label,
                f"{w.scale:,}",
                rate_text(m.rate("esox"), w.unit),
                rate_text(m.rate("eventsourcing"), w.unit) if with_es else "-",
                rate_text(m.rate("limit"), w.unit),
                ratio_text(m.ratio("eventsourcing")) if with_es else "-",
                ratio_text(m.ratio("limit")),
                time_text(m.per_unit_ns("esox")),
                time_text(m.per_unit_ns("eventsourcing")) if with_es else "-",
            )
        )
    return "\n".join(_render(rows))


def format_latency(results: Sequence[LatencyResult], *, with_es: bool) -> str:
    """Command latency percentiles per side, and eventsourcing/esox ratios."""
    lines = [
        "-- command latency (get an aggregate, trigger one event, save it)",
    ]
    for result in results:
        if result.error:
            lines.append(f"  {result.persistence}: error: {result.error}")
            continue
        lines.append(f"  {result.persistence}, {result.commands:,} commands per side:")
        for side in ("esox", "eventsourcing", "limit"):
            if side not in result.samples_ns:
                continue
            name = "floor (sqlite3)" if side == "limit" else side
            cells = "  ".join(
                f"{q} {time_text(result.percentile(side, q)):>7}" for q in QUANTILES
            )
            lines.append(f"    {name:<16} {cells}")
        if with_es and result.ratio("p50"):
            ratios = "  ".join(f"{q} {ratio_text(result.ratio(q))}" for q in QUANTILES)
            lines.append(f"    {'eventsourcing/esox':<16} {ratios}")
            overhead = "  ".join(
                f"{q} {ratio_text(result.overhead_ratio(q))}" for q in QUANTILES
            )
            lines.append(f"    {'overhead ratio':<16} {overhead}")
    return "\n".join(lines)


def format_goals(goals: Sequence[GoalResult]) -> str:
    """One line per goal, met or MISSED, with the numbers behind it."""
    lines = ["Goals (esox against eventsourcing 9.x, this machine, this run):"]
    for goal in goals:
        mark = {"met": "met   ", "missed": "MISSED"}.get(goal.status, "n/a   ")
        line = f"  [{mark}] {goal.title}"
        if goal.value:
            line += f": {goal.value}"
        lines.append(line)
        if goal.status == "missed" and goal.detail:
            lines.append(f"           {goal.detail}")
    return "\n".join(lines)
