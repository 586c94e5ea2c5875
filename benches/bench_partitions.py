"""One follower spread over K processes (partitioned), a policy costing 1 ms of CPU.

Run: pytest benches/bench_partitions.py --benchmark-only -s
The system is ``Orders -> Handling`` (esox/bench/workloads/partition_apps.py): each
upstream event costs the policy ``BURN_MS`` of CPU, then one ``Handled``
event is recorded with the event's partition position, in one transaction.
esox runs ``Handling`` as K ``esox run --partitions 16`` processes, started
(and their leases settled) before the clock starts; a round records
``N_EVENTS`` upstream events at once and waits until all are handled.
eventsourcing 9.5 has no partitioned processing: its twin follower runs in
one process (``pull_and_process``), on the same server, in the K = 1 group;
the K = 2 and 4 groups show esox's scaling (``events_per_second`` in
``extra_info``, printed with ``-s``). ``ESOX_BENCH_BURN_MS`` changes the
policy's cost (0: the follower's own cost alone), ``ESOX_BENCH_EVENTS`` the
events per round. ``esox bench --only partitions`` runs the same workers
and twins (``esox.bench.workloads.partitions``), without the CPU accounting.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from tests.persistence_envs import POSTGRES, postgres_conninfo, postgres_schema

from esox.bench.es_models import EsHandling, EsOrders
from esox.bench.workloads.partition_apps import Orders, esox_run_command
from esox.bench.workloads.partitions import (
    PARTITIONS,
    cpu_seconds,
    server_pids,
    table_count,
    wait_for_count,
    wait_for_leases,
)

N_EVENTS = int(os.environ.get("ESOX_BENCH_EVENTS", "1000"))
BURN_MS = float(os.environ.get("ESOX_BENCH_BURN_MS", "1"))
ROUNDS = 3
GROUP = f"partitions: {N_EVENTS} events, {BURN_MS:g} ms CPU policy, PostgreSQL"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    with postgres_schema() as schema:
        yield schema


def pg_env(schema: str, persistence: str, **more: str) -> dict[str, str]:
    return (
        POSTGRES | {"PERSISTENCE_MODULE": persistence, "POSTGRES_SCHEMA": schema} | more
    )


def report(benchmark: Any, workers: int, cpu: dict[str, float] | None = None) -> None:
    per_second = N_EVENTS / benchmark.stats.stats.mean
    benchmark.extra_info["events_per_second"] = round(per_second)
    benchmark.extra_info["processes"] = workers
    line = f"{per_second:,.0f} events per second"
    for name, seconds in (cpu or {}).items():
        per_event = seconds / (N_EVENTS * ROUNDS) * 1000
        benchmark.extra_info[f"{name}_cpu_ms_per_event"] = round(per_event, 3)
        line += f", {name} CPU {per_event:.2f} ms/event"
    print(f"\n{benchmark.name}: {line}, load {os.getloadavg()[0]:.1f}")


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_partitions_esox(benchmark: Any, pg_schema: str, workers: int) -> None:
    # A small pool: the server is shared, and each process needs few connections.
    env = pg_env(
        pg_schema,
        "esox.postgres",
        HANDLING_BURN_MS=str(BURN_MS),
        POSTGRES_POOL_SIZE="1",
    )
    with Orders(env) as orders:
        orders.place(1)
    command = esox_run_command(
        "--partitions", str(PARTITIONS), "--log-level", "warning"
    )
    processes = [
        subprocess.Popen(command, env=os.environ | env) for _ in range(workers)
    ]
    try:
        wait_for_leases(postgres_conninfo(), pg_schema, workers)
        wait_for_count(postgres_conninfo(), pg_schema, "handling_events", 1, 30)
        pids = [p.pid for p in processes]
        backends = server_pids(postgres_conninfo())
        before = cpu_seconds(pids), cpu_seconds(backends)
        with Orders(env) as orders:

            def one_round() -> None:
                conninfo = postgres_conninfo()
                target = table_count(conninfo, pg_schema, "handling_events") + N_EVENTS
                orders.place(N_EVENTS)
                wait_for_count(conninfo, pg_schema, "handling_events", target, 300)

            benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
        cpu = {
            "workers": cpu_seconds(pids) - before[0],
            "server": cpu_seconds(backends) - before[1],
        }
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
    report(benchmark, workers, cpu)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("workers", [1])
def test_partitions_eventsourcing(benchmark: Any, pg_schema: str, workers: int) -> None:
    env = pg_env(pg_schema, "eventsourcing.postgres", HANDLING_BURN_MS=str(BURN_MS))
    orders = EsOrders(env=env)
    handling = EsHandling(env=env)
    handling.follow("Orders", orders.notification_log)
    try:

        def one_round() -> None:
            orders.place(N_EVENTS)
            handling.pull_and_process("Orders")

        benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    finally:
        orders.close()
        handling.close()
    report(benchmark, 1)
