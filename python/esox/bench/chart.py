"""The chart of a run: esox's speed-up over eventsourcing per workload, as
horizontal bars, with a marker where the practical limit's speed-up is."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from esox.bench.harness import Measurement
from esox.bench.latency import LatencyResult

__all__ = ["chart_rows", "draw_speedups", "matplotlib_missing", "write_chart"]


def matplotlib_missing() -> bool:
    """Whether matplotlib (the ``bench`` extra) is not installed."""
    return importlib.util.find_spec("matplotlib") is None


def chart_rows(
    measurements: Sequence[Measurement],
    latencies: Sequence[LatencyResult],
    *,
    scale: int,
    against: str = "eventsourcing",
) -> list[tuple[str, float, float | None]]:
    """(label, esox's speed-up, the limit's speed-up) per workload, at
    ``scale`` (or the nearest scale below it that the workload ran at); the
    speed-ups are over ``against``."""
    chosen: dict[str, Measurement] = {}
    for m in measurements:
        name, this = m.workload.name, m.workload.scale
        if not m.ratio(against):
            continue
        best = chosen.get(name)
        if best is None or _closer(this, best.workload.scale, scale):
            chosen[name] = m
    rows: list[tuple[str, float, float | None]] = []
    for name, m in chosen.items():
        ratio = m.ratio(against)
        assert ratio is not None
        limit = None
        if against == "eventsourcing" and m.ratio("limit"):
            limit = ratio / (m.ratio("limit") or 1.0)
        rows.append((f"{name} ({m.workload.scale:,})", ratio, limit))
    if against == "eventsourcing":
        for result in latencies:
            ratio = result.ratio("p50")
            if ratio:
                rows.append((f"command latency p50, {result.persistence}", ratio, None))
    return rows


def _closer(this: int, best: int, target: int) -> bool:
    """Whether scale ``this`` is a better pick than ``best`` for ``target``:
    at or below it, and nearer."""
    if (this <= target) != (best <= target):
        return this <= target
    return abs(this - target) < abs(best - target)


def write_chart(
    path: Path,
    measurements: Sequence[Measurement],
    latencies: Sequence[LatencyResult],
    *,
    title: str,
    scale: int,
    against: str = "eventsourcing",
) -> bool:
    """Draw the chart as a PNG at ``path``; False if there is nothing to draw."""
    rows = chart_rows(measurements, latencies, scale=scale, against=against)
    return draw_speedups(path, rows, title=title, against=against)


def draw_speedups(
    path: Path,
    rows: list[tuple[str, float, float | None]],
    *,
    title: str,
    against: str = "eventsourcing",
) -> bool:
    """The one chart of esox's benchmarks (``esox bench`` and ``make bench``):
    a bar per (label, esox's speed-up, the limit's speed-up) row, as a PNG at
    ``path``; False if there is nothing to draw."""
    if not rows:
        return False
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    rows = list(rows)
    rows.reverse()  # first workload at the top
    labels = [label for label, _, _ in rows]
    ratios = [ratio for _, ratio, _ in rows]
    positions = list(range(len(rows)))
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.24 * len(rows)))
    colors = ["#2b7bba" if r >= 1 else "#d62728" for r in ratios]
    ax.barh(positions, ratios, color=colors, height=0.7)
    limits = [(p, lim) for p, (_, _, lim) in zip(positions, rows, strict=True) if lim]
    if limits:
        ax.scatter(
            [lim for _, lim in limits],
            [p for p, _ in limits],
            marker="|",
            s=140,
            linewidths=2,
            color="black",
            zorder=3,
            label="practical limit (orjson, sqlite3, psycopg COPY)",
        )
        ax.legend(loc="lower right", fontsize=8)
    ax.axvline(1.0, color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(positions)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    who = "eventsourcing 9.x" if against == "eventsourcing" else "the practical limit"
    ax.set_xlabel(f"esox speed-up over {who} (log scale; 1x = same speed)")
    ax.set_title(title, fontsize=10)
    for p, ratio in zip(positions, ratios, strict=True):
        ax.text(ratio, p, f" {ratio:.1f}x", va="center", fontsize=6)
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True
