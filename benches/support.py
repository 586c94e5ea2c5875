"""The ``esox bench`` workloads as pytest-benchmark tests (``benches/``).

Each side of a workload is one benchmark: ``test_*_esox``,
``test_*_eventsourcing`` and ``test_*_limit`` in a group, which is what
``benches/report.py`` compares. It lives here, not in ``esox.bench``, because
the library imports no pytest.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

from esox.bench.harness import WARM_UP_BELOW, Workload, close_all, settled
from esox.bench.plan import Plan, eventsourcing_installed, postgres_unreachable

__all__ = ["bench_side", "each_workload", "plan_at", "workloads_at"]


def plan_at(*scales: int) -> Plan:
    """A plan of the given scales, on every persistence kind."""
    return Plan.create(scales=scales, eventsourcing=eventsourcing_installed())


def workloads_at(
    make: Callable[[Plan], list[Workload]],
    *scales: int,
    family: str,
    keep: Callable[[Workload], bool] = lambda w: True,
) -> list[Workload]:
    """The workloads of one ``family`` that ``make`` builds at ``scales``."""
    return [w for w in make(plan_at(*scales)) if w.family == family and keep(w)]


def each_workload(found: list[Workload]) -> Any:
    """Parametrize a benchmark's ``workload`` argument over ``found``, each
    test named by its workload's variant."""
    return pytest.mark.parametrize("workload", found, ids=[w.variant for w in found])


@functools.cache
def _postgres_problem() -> str:
    return postgres_unreachable()


def _run(block: Callable[[], object]) -> object:
    return block()


def bench_side(benchmark: Any, workload: Workload, side: str) -> None:
    """Benchmark one side of a workload: untimed set-up per round, and the
    workload's set-up collected and frozen before the rounds, as ``esox bench``
    does; units per second go in ``extra_info``."""
    if workload.persistence == "PostgreSQL" and _postgres_problem():
        pytest.skip(_postgres_problem())
    twins = workload.build()
    try:
        twin = twins.get(side)
        if twin is None:
            pytest.skip(f"{workload.name} has no {side} side")
        with settled():
            benchmark.pedantic(
                _run,
                setup=lambda: ((twin.prepare(),), {}),
                rounds=workload.repeats,
                warmup_rounds=1 if workload.scale < WARM_UP_BELOW else 0,
            )
        benchmark.extra_info["units"] = workload.units
        benchmark.extra_info["unit"] = workload.unit
        if benchmark.stats:  # None under --benchmark-disable
            mean = benchmark.stats.stats.mean
            benchmark.extra_info["per_second"] = round(workload.units / mean)
    finally:
        close_all(twins.values())
