"""One follower spread over K processes (partitioned), a policy costing 1 ms of CPU.

Run: pytest benches/bench_partitions.py --benchmark-only -s
The system is ``Orders -> Handling`` (tests/system/partition_apps.py): each
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
events per round.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.application import Application as EsApplication
from eventsourcing.dispatch import singledispatchmethod as es_singledispatchmethod
from eventsourcing.domain import Aggregate as EsAggregate
from eventsourcing.domain import event as es_event
from eventsourcing.system import ProcessApplication as EsProcessApplication
from tests.persistence_envs import POSTGRES, postgres_conninfo, postgres_schema
from tests.system.partition_apps import Orders, burn, esox_run_command

N_EVENTS = int(os.environ.get("ESOX_BENCH_EVENTS", "1000"))
BURN_MS = float(os.environ.get("ESOX_BENCH_BURN_MS", "1"))
PARTITIONS = 16
ROUNDS = 3
ROOT = Path(__file__).resolve().parent.parent
GROUP = f"partitions: {N_EVENTS} events, {BURN_MS:g} ms CPU policy, PostgreSQL"


class EsOrder(EsAggregate):
    @es_event("Placed")
    def __init__(self, label: str) -> None:
        self.label = label


class EsOrders(EsApplication):
    name = "Orders"

    def place(self, count: int) -> None:
        self.save(*[EsOrder(f"order {i}") for i in range(count)])


class EsHandled(EsAggregate):
    @es_event("Done")
    def __init__(self, source_id: UUID, notification_id: int) -> None:
        self.source_id = source_id
        self.notification_id = notification_id


class EsHandling(EsProcessApplication):
    name = "Handling"

    @es_singledispatchmethod
    def policy(self, domain_event: Any, processing_event: Any) -> None:
        burn(BURN_MS / 1000)
        processing_event.collect_events(
            EsHandled(
                domain_event.originator_id, processing_event.tracking.notification_id
            )
        )


@pytest.fixture
def pg_schema() -> Iterator[str]:
    with postgres_schema() as schema:
        yield schema


def count(schema: str, table: str) -> int:
    with psycopg.connect(postgres_conninfo()) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".{table}').fetchone()
        return int(row[0]) if row else 0


def wait_for_count(schema: str, table: str, target: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
        while True:
            row = conn.execute(f'SELECT count(*) FROM "{schema}".{table}').fetchone()
            if row and row[0] >= target:
                return
            if time.monotonic() > deadline:
                msg = f"{table}: {row} of {target} after {timeout}s"
                raise TimeoutError(msg)
            time.sleep(0.01)  # the same polling for both libraries


def wait_for_leases(schema: str, workers: int, timeout: float = 60) -> None:
    """Until the K workers hold every partition between them, evenly."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
        while time.monotonic() < deadline:
            try:
                rows = conn.execute(
                    f'SELECT owner, count(*) FROM "{schema}".handling_leases '
                    "WHERE expires_at > now() GROUP BY owner"
                ).fetchall()
            except psycopg.errors.UndefinedTable:
                rows = []
            counts = {owner: n for owner, n in rows if owner}
            if len(counts) == workers and sum(counts.values()) == PARTITIONS:
                return
            time.sleep(0.1)
    msg = f"{workers} workers did not share the partitions in {timeout}s"
    raise TimeoutError(msg)


def pg_env(schema: str, persistence: str, **more: str) -> dict[str, str]:
    return (
        POSTGRES | {"PERSISTENCE_MODULE": persistence, "POSTGRES_SCHEMA": schema} | more
    )


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def server_pids(schema: str) -> list[int]:
    """The PostgreSQL backends of the workers (their pools and listeners)."""
    with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = "
            "'esox Handling' AND datname = current_database()"
        ).fetchall()
    return [row[0] for row in rows]


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
        subprocess.Popen(command, cwd=ROOT, env=os.environ | env)
        for _ in range(workers)
    ]
    try:
        wait_for_leases(pg_schema, workers)
        wait_for_count(pg_schema, "handling_events", 1, 30)
        pids = [p.pid for p in processes]
        backends = server_pids(pg_schema)
        before = cpu_seconds(pids), cpu_seconds(backends)
        with Orders(env) as orders:

            def one_round() -> None:
                target = count(pg_schema, "handling_events") + N_EVENTS
                orders.place(N_EVENTS)
                wait_for_count(pg_schema, "handling_events", target, 300)

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
    env = pg_env(pg_schema, "eventsourcing.postgres")
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
