"""One follower spread over K processes, a policy costing CPU, on PostgreSQL
(family "partitions").

The system is ``Orders -> Handling`` (``esox.bench.workloads.partition_apps``):
each upstream event costs the policy ``BURN_MS`` of CPU, then one event is
recorded with its tracking position, in one transaction. esox runs
``Handling`` as K = 1, 2, 4 ``esox run --partitions 16`` processes, started
(and their leases settled) before the clock starts; a timed block records
N upstream events at once and waits until all are handled. eventsourcing 9.x
has no partitioned processing: its twin follower runs in one process
(``pull_and_process``), on the same server, in the K = 1 workload only.
PostgreSQL only.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from esox.bench.harness import Twin, Workload, closed_on_error
from esox.bench.plan import Plan, postgres_conninfo
from esox.bench.workloads.storage import Fresh, Kind, database_env, kinds, new_database

__all__ = [
    "BURN_MS",
    "PARTITIONS",
    "PROCESS_COUNTS",
    "cpu_seconds",
    "server_pids",
    "table_count",
    "wait_for_count",
    "wait_for_leases",
    "workloads",
]

FAMILY = "partitions"
PROCESS_COUNTS = (1, 2, 4)
PARTITIONS = 16
BURN_MS = 1.0
# How long a block may take to handle its events before the workload fails.
HANDLE_TIMEOUT = 300


def events_per_block(plan: Plan) -> int:
    """Upstream events of one timed block (a second or so of policy CPU)."""
    return min(max(plan.scales), 300 if plan.quick else 1_000)


def workloads(
    plan: Plan, *, events: int | None = None, burn_ms: float = BURN_MS
) -> list[Workload]:
    """One workload per number of ``esox run`` processes, on PostgreSQL only."""
    if not any(kind.store == "postgres" for kind in kinds(plan)):
        return []
    events = events or events_per_block(plan)
    found = []
    for count in PROCESS_COUNTS:
        plural = "processes" if count > 1 else "process"
        es_note = "; eventsourcing: one follower" if count == 1 else "; esox only"
        found.append(
            Workload(
                family=FAMILY,
                variant=f"PostgreSQL, {count} esox run {plural}",
                scale=events,
                units=events,
                build=partial(build, plan, count, events, burn_ms),
                repeats=plan.repeats,
                persistence="PostgreSQL",
                note=f"a {burn_ms:g} ms CPU policy, {PARTITIONS} partitions{es_note}",
            )
        )
    return found


def table_count(conninfo: str, schema: str, table: str) -> int:
    """The rows of ``schema.table``."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".{table}').fetchone()
        return int(row[0]) if row else 0


def wait_for_count(
    conninfo: str, schema: str, table: str, target: int, timeout: float
) -> None:
    """Until ``schema.table`` has ``target`` rows (polled every 10 ms)."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while True:
            row = conn.execute(f'SELECT count(*) FROM "{schema}".{table}').fetchone()
            if row and row[0] >= target:
                return
            if time.monotonic() > deadline:
                msg = f"{table}: {row} of {target} after {timeout}s"
                raise TimeoutError(msg)
            time.sleep(0.01)  # the same polling for both libraries


def wait_for_leases(
    conninfo: str, schema: str, workers: int, timeout: float = 60
) -> None:
    """Until the ``workers`` processes hold every partition between them."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(conninfo, autocommit=True) as conn:
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


def server_pids(conninfo: str) -> list[int]:
    """The PostgreSQL backends of the ``Handling`` workers."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = "
            "'esox Handling' AND datname = current_database()"
        ).fetchall()
    return [row[0] for row in rows]


def build(plan: Plan, count: int, events: int, burn_ms: float) -> dict[str, Twin]:
    """esox's K processes, and eventsourcing's one follower when K is 1."""
    twins: dict[str, Twin] = {}
    if plan.eventsourcing and count == 1:
        twins["eventsourcing"] = _es_twin(plan, events, burn_ms)
    with closed_on_error(twins):
        twins["esox"] = _esox_twin(plan, count, events, burn_ms)
    return twins


KIND = Kind("PostgreSQL", "postgres")


def _esox_twin(plan: Plan, count: int, events: int, burn_ms: float) -> Twin:
    from esox.bench.workloads.partition_apps import Orders, esox_run_command

    fresh = Fresh()
    conninfo = postgres_conninfo()
    with fresh.released_on_error():
        schema = new_database(KIND, plan, fresh)
        # A small pool: the server is shared, and a worker needs few connections.
        env = database_env(KIND, "esox", schema) | {
            "HANDLING_BURN_MS": str(burn_ms),
            "POSTGRES_POOL_SIZE": "1",
        }
        orders = Orders(env)
        fresh.on_release(orders.close)
        orders.place(1)
        command = esox_run_command(
            "--partitions", str(PARTITIONS), "--log-level", "warning"
        )
        processes: list[subprocess.Popen[bytes]] = []
        fresh.on_release(partial(_stop, processes))
        # The workers' output goes to a file, shown if one of them exits.
        log = plan.workdir / f"esox-run-{schema}.log"
        with log.open("wb") as output:
            for _ in range(count):
                processes.append(
                    subprocess.Popen(
                        command, env=os.environ | env, stdout=output, stderr=output
                    )
                )
        fresh.on_release(partial(log.unlink, missing_ok=True))
        wait_for_leases(conninfo, schema, count)
        wait_for_count(conninfo, schema, "handling_events", 1, 60)

    def prepare() -> Callable[[], object]:
        if any(p.poll() is not None for p in processes):
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            msg = f"an esox run process exited: {' / '.join(tail)}"
            raise RuntimeError(msg)
        target = table_count(conninfo, schema, "handling_events") + events

        def block() -> None:
            orders.place(events)
            wait_for_count(conninfo, schema, "handling_events", target, HANDLE_TIMEOUT)

        return block

    return Twin(prepare, fresh.release)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _es_twin(plan: Plan, events: int, burn_ms: float) -> Twin:
    from esox.bench.es_models import EsHandling, EsOrders

    fresh = Fresh()
    with fresh.released_on_error():
        schema = new_database(KIND, plan, fresh)
        env: dict[str, Any] = database_env(KIND, "eventsourcing", schema)
        orders = EsOrders(env=env)
        fresh.on_release(orders.close)
        handling = EsHandling(env=env | {"HANDLING_BURN_MS": str(burn_ms)})
        fresh.on_release(handling.close)
        handling.follow("Orders", orders.notification_log)

    def prepare() -> Callable[[], object]:
        def block() -> None:
            orders.place(events)
            handling.pull_and_process("Orders")

        return block

    return Twin(prepare, fresh.release)
