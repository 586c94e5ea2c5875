"""Recorders: esox against eventsourcing 9.x and the plain drivers, in one run.

Run: pytest benches/bench_recorders.py --benchmark-only, then benches/report.py.
The workloads are ``esox bench``'s own (``esox.bench.workloads.recorders``) at
1,000 events: insert in batches of 1 and 100 on memory, SQLite FULL and
NORMAL, and PostgreSQL (skipped if unreachable); select one aggregate's
events; select notifications, 1,000 per call. The ``_limit`` members are the
practical limits: ``sqlite3.executemany`` and psycopg ``COPY`` of the same
rows for inserts, the same query's ``fetchall()`` for selects.
"""

from __future__ import annotations

from typing import Any

import pytest

from esox.bench.harness import Workload
from esox.bench.workloads.recorders import workloads
from support import bench_side, each_workload, workloads_at

SCALE = 1_000
INSERTS = workloads_at(
    workloads,
    SCALE,
    family="recorder insert",
    keep=lambda w: w.variant.endswith(("batch 1", "batch 100")),
)
SELECTS = workloads_at(workloads, SCALE, family="recorder select")
NOTIFICATIONS = workloads_at(workloads, SCALE, family="notification select")


INSERT = f"recorder insert ({SCALE:,} events)"
SELECT = f"recorder select ({SCALE:,} events of one aggregate)"
NOTIFY = f"notification select ({SCALE:,} notifications)"


@pytest.mark.benchmark(group=INSERT)
@each_workload(INSERTS)
def test_insert_esox(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "esox")


@pytest.mark.benchmark(group=INSERT)
@each_workload(INSERTS)
def test_insert_eventsourcing(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "eventsourcing")


@pytest.mark.benchmark(group=INSERT)
@each_workload(INSERTS)
def test_insert_limit(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "limit")


@pytest.mark.benchmark(group=SELECT)
@each_workload(SELECTS)
def test_select_events_esox(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "esox")


@pytest.mark.benchmark(group=SELECT)
@each_workload(SELECTS)
def test_select_events_eventsourcing(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "eventsourcing")


@pytest.mark.benchmark(group=SELECT)
@each_workload(SELECTS)
def test_select_events_limit(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "limit")


@pytest.mark.benchmark(group=NOTIFY)
@each_workload(NOTIFICATIONS)
def test_select_notifications_esox(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "esox")


@pytest.mark.benchmark(group=NOTIFY)
@each_workload(NOTIFICATIONS)
def test_select_notifications_eventsourcing(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "eventsourcing")


@pytest.mark.benchmark(group=NOTIFY)
@each_workload(NOTIFICATIONS)
def test_select_notifications_limit(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "limit")
