"""Print esox's speed ratios per benchmark group from pytest-benchmark JSON, and
draw them: the same table cells and the same chart as ``esox bench``
(``esox.bench.report`` and ``esox.bench.chart``).

Usage: python benches/report.py bench-out/results.json [chart.png]
Within a group, the member named ``*_esox`` is compared with every other member
(``*_eventsourcing``, ``*_limit``, ``*_orjson``, ...): ratio = other mean / esox
mean, so "12.0x" means esox takes a twelfth of the time. The chart (next to the
JSON unless given) shows the ratio over eventsourcing, with the limit's marked.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from esox.bench.chart import draw_speedups, matplotlib_missing
from esox.bench.report import ratio_text, time_text


def ratios(results: dict) -> list[tuple[str, str, float, float, float]]:
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    for bench in results["benchmarks"]:
        suffix = bench["name"].split("[")[0].rsplit("_", 1)[-1]
        param = bench["name"].partition("[")[2].rstrip("]")
        group = bench["group"] + (f" [{param}]" if param else "")
        groups[group][suffix] = bench["stats"]["mean"]
    rows = []
    for group, means in sorted(groups.items()):
        esox = means.get("esox")
        for other, mean in sorted(means.items()):
            if other != "esox" and esox:
                rows.append((group, other, esox, mean, mean / esox))
    return rows


def chart_rows(
    rows: list[tuple[str, str, float, float, float]],
) -> list[tuple[str, float, float | None]]:
    """(group, esox's speed-up over eventsourcing, the limit's) per group."""
    by_group: dict[str, dict[str, float]] = defaultdict(dict)
    for group, other, _, _, ratio in rows:
        by_group[group][other] = ratio
    return [
        (group, ratios["eventsourcing"], ratios.get("limit"))
        for group, ratios in by_group.items()
        if "eventsourcing" in ratios
    ]


def main(path: str, chart: str | None = None) -> None:
    rows = ratios(json.loads(Path(path).read_text()))
    width = max((len(r[0]) for r in rows), default=10)
    print(f"{'group':<{width}}  {'vs':<14} {'esox':>9} {'other':>9} {'ratio':>8}")
    for group, other, esox, mean, ratio in rows:
        print(
            f"{group:<{width}}  {other:<14} {time_text(esox * 1e9):>9} "
            f"{time_text(mean * 1e9):>9} {ratio_text(ratio):>8}"
        )
    chart_path = Path(chart) if chart else Path(path).with_name("chart.png")
    if matplotlib_missing():
        print("Note: no chart: matplotlib is not installed (pip install 'esox[bench]')")
    elif draw_speedups(
        chart_path,
        chart_rows(rows),
        title="esox against eventsourcing 9.x (pytest-benchmark means)",
    ):
        print(f"Wrote {chart_path}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
