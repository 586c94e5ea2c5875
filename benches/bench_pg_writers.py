"""Writers that scale on PostgreSQL: esox, eventsourcing 9.x and pgbench in one run.

Run: pytest benches/bench_pg_writers.py --benchmark-only, then benches/report.py.
The workloads are ``esox bench``'s own (``esox.bench.workloads.writers``,
family "pg writers"): 1, 4 and 8 writer processes save new one-event
aggregates between them, one command and one transaction each; ``_limit`` is
pgbench running a one-row INSERT transaction into the same table shape with
as many clients, on the same server. After every block, the notification ids
must be exactly 1..N. PostgreSQL is skipped if unreachable; the limit if
pgbench is not on PATH.
"""

from __future__ import annotations

from typing import Any

import pytest

from esox.bench.harness import Workload
from esox.bench.workloads.writers import workloads
from support import bench_side, each_workload, plan_at

WRITES = workloads(plan_at(10_000))
GROUP = "pg writers (new one-event aggregates, a transaction each)"


@pytest.mark.benchmark(group=GROUP)
@each_workload(WRITES)
def test_pg_writers_esox(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "esox")


@pytest.mark.benchmark(group=GROUP)
@each_workload(WRITES)
def test_pg_writers_eventsourcing(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "eventsourcing")


@pytest.mark.benchmark(group=GROUP)
@each_workload(WRITES)
def test_pg_writers_limit(benchmark: Any, workload: Workload) -> None:
    bench_side(benchmark, workload, "limit")
