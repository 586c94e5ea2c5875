"""Print esox/eventsourcing speed ratios per benchmark group from pytest-benchmark JSON.

Usage: python benches/report.py bench-out/results.json
Within a group, the member named ``*_esox`` is compared with every other member
(``*_eventsourcing``, ``*_orjson``, ...): ratio = other mean / esox mean, so
"12.0x" means esox takes a twelfth of the time.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


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


def main(path: str) -> None:
    rows = ratios(json.loads(Path(path).read_text()))
    width = max((len(r[0]) for r in rows), default=10)
    print(f"{'group':<{width}}  {'vs':<14} {'esox':>11} {'other':>11} {'ratio':>8}")
    for group, other, esox, mean, ratio in rows:
        print(
            f"{group:<{width}}  {other:<14} {esox * 1e6:>9.1f}us {mean * 1e6:>9.1f}us "
            f"{ratio:>7.1f}x"
        )


if __name__ == "__main__":
    main(sys.argv[1])
