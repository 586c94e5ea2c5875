"""Partitioned processing: one follower shared by several processes (PostgreSQL).

The leases are checked alone (sharing, take-over after a process stops
renewing, rebalancing when it returns), then whole ``esox run`` processes
are killed with SIGKILL at random while events flow, and every upstream
event must have been processed exactly once, each aggregate's in order.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from esox.bench.workloads.partition_apps import (
    Handling,
    Orders,
    esox_run_command,
    system,
)
from esox.persistence import ProgrammingError
from esox.postgres import PostgresDatastore
from esox.postgres.leases import PartitionLeases, assign_partitions
from esox.system import SystemDefinitionError, run_application
from esox.system.partition import partition_of, partition_tracking_name, partitioned
from tests.persistence_envs import (
    POSTGRES,
    POSTGRES_CONNECT,
    postgres_conninfo,
    postgres_schema,
)

ROOT = Path(__file__).resolve().parents[2]
KILLS = 6


@pytest.fixture
def pg_env() -> Iterator[dict[str, str]]:
    with postgres_schema() as schema:
        # Small pools: the server is shared, and these tests start processes.
        yield POSTGRES | {
            "PERSISTENCE_MODULE": "esox.postgres",
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_POOL_SIZE": "1",
        }


@pytest.fixture
def datastore(pg_env: dict[str, str]) -> Iterator[PostgresDatastore]:
    store = PostgresDatastore(
        **POSTGRES_CONNECT,
        schema=pg_env["POSTGRES_SCHEMA"],
    )
    yield store
    store.close()


def test_partition_of_is_stable_and_computable_in_sql(datastore: Any) -> None:
    ids: list[UUID | str] = [uuid4() for _ in range(50)]
    ids += ["order-1", "Ünïcode id"]
    with psycopg.connect(postgres_conninfo()) as conn:
        for originator_id in ids:
            row = conn.execute(
                "SELECT (('x' || left(md5(%s::text), 8))::bit(32)::bigint) %% 64",
                (str(originator_id),),
            ).fetchone()
            assert row is not None
            assert partition_of(originator_id, 64) == row[0]
    # Pinned: a change of hash would move every aggregate's partition.
    assert partition_of(UUID("ffffffff-0000-0000-0000-000000000000"), 64) == 31
    assert partition_tracking_name("Orders", 3, 64) == "Orders#3/64"
    counts = Counter(partition_of(uuid4(), 8) for _ in range(8000))
    assert set(counts) == set(range(8)) and min(counts.values()) > 800


def test_assign_partitions_splits_all_among_live_workers() -> None:
    workers = ["b", "a", "c"]
    shares = [assign_partitions(workers, 64, w) for w in workers]
    assert set().union(*shares) == set(range(64))
    assert sum(len(s) for s in shares) == 64
    assert sorted(len(s) for s in shares) == [21, 21, 22]
    assert assign_partitions(workers, 64, "z") == set()


def test_leases_share_move_to_a_survivor_and_come_back(datastore: Any) -> None:
    ttl = 3.0  # long next to the steps between heartbeats, on a loaded machine
    a = PartitionLeases(
        datastore, name="Handling", partitions=8, ttl=ttl, worker_id="a"
    )
    b = PartitionLeases(
        datastore, name="Handling", partitions=8, ttl=ttl, worker_id="b"
    )
    a.create_tables()
    b.create_tables()
    assert a.heartbeat() == set(range(8))
    # b joins: a still holds everything until its next heartbeat releases b's share.
    assert b.heartbeat() == frozenset()
    assert a.heartbeat() == {0, 2, 4, 6}
    assert b.heartbeat() == {1, 3, 5, 7}
    assert set(a.owners().values()) == {"a", "b"}
    # a stops renewing (killed): after ttl, b takes its partitions.
    assert b.heartbeat() == {1, 3, 5, 7}
    time.sleep(ttl + 0.2)
    assert b.heartbeat() == set(range(8))
    # a returns: the share comes back at b's next heartbeat, then a's.
    assert a.heartbeat() == frozenset()
    assert b.heartbeat() == {1, 3, 5, 7}
    assert a.heartbeat() == {0, 2, 4, 6}
    # A clean stop releases at once.
    a.release()
    assert b.heartbeat() == set(range(8))
    assert set(b.owners().values()) == {"b"}


def test_leases_refuse_another_partition_count(datastore: Any) -> None:
    PartitionLeases(datastore, name="Handling", partitions=8).create_tables()
    with pytest.raises(ProgrammingError, match=r"partitioned 8 ways.*not 16"):
        PartitionLeases(datastore, name="Handling", partitions=16).create_tables()
    with pytest.raises(ValueError, match="partitions must be an int from 1"):
        PartitionLeases(datastore, name="Handling", partitions=0)
    with pytest.raises(ValueError, match="ttl must be a positive number"):
        PartitionLeases(datastore, name="Handling", partitions=8, ttl=0)


def test_partitioned_processing_needs_postgres(tmp_path: Path) -> None:
    env = {
        "PERSISTENCE_MODULE": "esox.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "handling.db"),
    }
    with Handling(env) as app, pytest.raises(SystemDefinitionError, match="PostgreSQL"):
        partitioned(app, partitions=8)


def handled(env: dict[str, str]) -> list[Any]:
    """The follower's Handled events, in its notification order."""
    with Handling(env) as app:
        notifications = app.recorder.select_notifications(0, 1_000_000)
        return list(app.mapper.to_domain_events(notifications))


def upstream(env: dict[str, str]) -> list[Any]:
    with Orders(env) as app:
        notifications = app.recorder.select_notifications(0, 1_000_000)
        events = app.mapper.to_domain_events(notifications)
        return [(n.id, e) for n, e in zip(notifications, events, strict=True)]


def check_exactly_once_in_order(env: dict[str, str]) -> Counter[int]:
    """Every upstream event handled once, each aggregate's in version order;
    returns how many events each process handled."""
    source = upstream(env)
    done = handled(env)
    counts = Counter(h.notification_id for h in done)
    duplicates = {n: c for n, c in counts.items() if c > 1}
    assert not duplicates, (
        f"{len(duplicates)} processed more than once: {list(duplicates.items())[:10]}"
    )
    assert set(counts) == {n for n, _ in source}
    versions: dict[UUID, list[int]] = defaultdict(list)
    for h in done:
        versions[h.source_id].append(h.source_version)
    for source_id, seen in versions.items():
        assert seen == sorted(seen), f"{source_id} processed out of order: {seen}"
    return Counter(h.pid for h in done)


def wait_for_all(env: dict[str, str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    expected = len(upstream(env))
    while True:
        got = len(handled(env))
        if got >= expected:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{got} of {expected} events processed after {timeout}s")
        time.sleep(0.5)


def test_threads_share_the_work_and_a_partitioned_restart_carries_on(
    pg_env: dict[str, str],
) -> None:
    with Orders(pg_env) as orders:
        ids = orders.place(40)
        orders.step(ids)
    # First unpartitioned, as eventsourcing would: the single tracking row.
    stop = threading.Event()
    runner = threading.Thread(
        target=run_application,
        args=(system, "Handling", pg_env),
        kwargs={"stop": stop, "poll_interval": 0.2},
    )
    runner.start()
    wait_for_all(pg_env, 30)
    stop.set()
    runner.join()
    with Orders(pg_env) as orders:
        orders.step(ids)
        orders.step(ids[:10])
    # Then two partitioned workers in threads: they start from that row.
    stops = [threading.Event() for _ in range(2)]
    workers = [
        threading.Thread(
            target=run_application,
            args=(system, "Handling", pg_env),
            kwargs={
                "stop": s,
                "poll_interval": 0.2,
                "partitions": 4,
                "lease_ttl": 1.0,
            },
        )
        for s in stops
    ]
    for worker in workers:
        worker.start()
    wait_for_all(pg_env, 30)
    for s in stops:
        s.set()
    for worker in workers:
        worker.join()
    check_exactly_once_in_order(pg_env)
    assert len(handled(pg_env)) == 130
    with Handling(pg_env) as app:
        assert app.recorder.max_tracking_id("Orders") == 80  # left as it was
        positions = [
            app.recorder.max_tracking_id(partition_tracking_name("Orders", p, 4))
            for p in range(4)
        ]
        assert max(p or 0 for p in positions) == 130


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = esox_run_command(
        "--partitions", "16", "--lease-ttl", "1.5", "--poll-interval", "0.5"
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=os.environ | env,
            stdout=out,
            stderr=out,
            preexec_fn=die_with_parent,
        )


def die_with_parent() -> None:
    """In a worker: be killed when the test process dies (Linux's prctl)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def worker_pids(env: dict[str, str], query: str) -> set[int]:
    """The pids in the worker names that ``query`` selects (none before the
    first process has created the tables)."""
    try:
        with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
            rows = conn.execute(query.format(schema=env["POSTGRES_SCHEMA"]))
            return {int(row[0].split(":")[1]) for row in rows.fetchall()}
    except psycopg.errors.UndefinedTable:
        return set()


def lease_holders(env: dict[str, str]) -> set[int]:
    """The pids of the processes holding unexpired leases."""
    return worker_pids(
        env,
        'SELECT DISTINCT owner FROM "{schema}".handling_leases '
        "WHERE owner IS NOT NULL AND expires_at > now()",
    )


def wait_for_registration(env: dict[str, str], pids: list[int]) -> None:
    """Until each process has had a heartbeat (so it has its signal handlers)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        query = 'SELECT worker FROM "{schema}".handling_workers'
        if worker_pids(env, query) >= set(pids):
            return
        time.sleep(0.1)
    pytest.fail(f"workers {pids} did not all register in 60s")


def test_workers_killed_at_random_lose_and_repeat_nothing(
    pg_env: dict[str, str], tmp_path: Path
) -> None:
    rng = random.Random(os.environ.get("ESOX_TEST_SEED", "18"))
    log = tmp_path / "workers.log"
    with Orders(pg_env) as orders:
        orders.place(1)  # creates the tables before the workers race to
    workers = [start_worker(pg_env, log) for _ in range(3)]
    writing = threading.Event()
    writing.set()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with Orders(pg_env) as orders:
                ids: list[UUID] = []
                while writing.is_set():
                    ids += orders.place(5)
                    orders.step(rng.sample(ids, min(10, len(ids))))
                    time.sleep(0.01)
        except BaseException as e:
            errors.append(e)

    writer = threading.Thread(target=write)
    writer.start()
    kills = 0
    try:
        deadline = time.monotonic() + 60
        while kills < KILLS and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.5, 2.0))
            # A process that holds partitions (not one still starting).
            holding = lease_holders(pg_env)
            candidates = [i for i, w in enumerate(workers) if w.pid in holding]
            if not candidates:
                continue
            victim = rng.choice(candidates)
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            kills += 1
            if rng.random() < 0.7:  # sometimes the survivors carry on alone a while
                workers[victim] = start_worker(pg_env, log)
            else:
                time.sleep(rng.uniform(1.0, 2.5))
                workers[victim] = start_worker(pg_env, log)
        writing.clear()
        writer.join()
        assert not errors, errors
        wait_for_all(pg_env, 60)
        wait_for_registration(pg_env, [w.pid for w in workers])
    finally:
        writing.clear()
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    assert kills == KILLS
    by_process = check_exactly_once_in_order(pg_env)
    # The killed processes held partitions, so they shared the work.
    assert len(by_process) >= 4, (by_process, log.read_text()[-3000:])
    # A clean stop (SIGTERM) exits 0 and gives its leases back.
    assert [w.returncode for w in workers] == [0, 0, 0], log.read_text()[-3000:]
    with psycopg.connect(postgres_conninfo()) as conn:
        row = conn.execute(
            f'SELECT count(*) FROM "{pg_env["POSTGRES_SCHEMA"]}".handling_leases '
            "WHERE owner IS NOT NULL AND expires_at > now()"
        ).fetchone()
        assert row == (0,)


def test_multiprocess_runner_runs_a_follower_as_several_processes(
    pg_env: dict[str, str],
) -> None:
    from esox.system import MultiProcessRunner

    env = pg_env
    with MultiProcessRunner(
        system, env=env, workers={"Handling": 2}, partitions=8, lease_ttl=1.0
    ) as runner:
        assert sorted(runner.processes) == ["Handling#0", "Handling#1"]
        orders = runner.get(Orders)
        ids = orders.place(30)
        orders.step(ids)
        runner.wait(timeout=60)
        assert len(handled(env)) == 60
        runner.restart("Handling#1")
        orders.step(ids[:10])
        runner.wait(timeout=60)
    check_exactly_once_in_order(env)
    assert len(handled(env)) == 70


def test_multiprocess_runner_refuses_workers_of_a_leader() -> None:
    from esox.system import MultiProcessRunner

    with pytest.raises(SystemDefinitionError, match="'Orders' is not a follower"):
        MultiProcessRunner(system, workers={"Orders": 2})
    with pytest.raises(ValueError, match="needs a number of processes"):
        MultiProcessRunner(system, workers={"Handling": 0})
    with pytest.raises(ValueError, match="partitions must be an int"):
        MultiProcessRunner(system, workers={"Handling": 2}, partitions=0)


def test_esox_run_partitioned_on_sqlite_says_it_needs_postgres(
    tmp_path: Path,
) -> None:
    env = os.environ | {
        "PERSISTENCE_MODULE": "esox.sqlite",
        "ORDERS_SQLITE_DBNAME": str(tmp_path / "orders.db"),
        "HANDLING_SQLITE_DBNAME": str(tmp_path / "handling.db"),
    }
    result = subprocess.run(
        esox_run_command("--partitions", "8"),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "partitioned processing leases its partitions in PostgreSQL" in (
        result.stderr
    )
