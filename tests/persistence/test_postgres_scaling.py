"""esox.postgres under many writers: the no-skip guarantee with the id lock
released before COMMIT, and waits that never hang (timed polls, poll-only
mode). Real processes on a real server; each test has its own schema."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql

from esox._core import StoredEvent
from esox.persistence.errors import IntegrityError
from esox.postgres import PostgresApplicationRecorder, PostgresFactory
from esox.postgres.recorders import TRANSACTION_ID
from esox.utils import Environment
from tests.persistence_envs import POSTGRES, admin, postgres_conninfo
from tests.stored_events import event, stream

from .test_postgres_recorder import (
    DogSchool,
    EsApplication,
    es_env,
    follow,
    sleeping_pid,
    slow_writer_fast_writer_and_reader,
    wait_until,
)


def application_recorder(env: dict[str, str]) -> PostgresApplicationRecorder:
    recorder = PostgresFactory(Environment("Race", env)).application_recorder()
    assert isinstance(recorder, PostgresApplicationRecorder)
    return recorder


def write_until_stopped(env: dict[str, str], stop: Any, prefix: str) -> None:
    """In a spawned process: one-event batches (new aggregates) until ``stop``."""
    recorder = application_recorder(env)
    n = 0
    while not stop.is_set():
        n += 1
        recorder.insert_events([StoredEvent(f"{prefix}-{n}", 1, "t:E", b"x")])


def hold_transaction_open(
    env: dict[str, str], ready: Any, seconds: float, prefix: str
) -> None:
    """In a spawned process: draw ids with esox's own INSERT in an explicit
    transaction, then keep it open for ``seconds`` (or until killed), then
    commit."""
    recorder = application_recorder(env)
    assert recorder.horizon
    columns = recorder._columns(stream(prefix, range(1, 4)))
    with psycopg.connect(postgres_conninfo()) as conn:
        conn.execute(recorder._sql_insert_events, columns, binary=True)
        ready.set()
        time.sleep(seconds)
        conn.commit()


def test_follower_never_skips_with_writer_processes_racing_killed_and_stalled(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    # Four writer processes insert as fast as they can. Meanwhile one writer
    # holds its transaction open for seconds after drawing its ids, and
    # another is killed with SIGKILL while its transaction is open. A
    # follower reads by position the whole time: in the end it must have
    # seen every stored id, once, in order, and none of the killed writer's.
    reader = make_factory("Race", ORIGINATOR_ID_TYPE="text").application_recorder()
    assert isinstance(reader, PostgresApplicationRecorder) and reader.horizon
    env = {**POSTGRES, "POSTGRES_SCHEMA": schema, "ORIGINATOR_ID_TYPE": "text"}
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    writers = [
        context.Process(target=write_until_stopped, args=(env, stop, f"w{i}"))
        for i in range(4)
    ]
    stalled_ready, killed_ready = context.Event(), context.Event()
    stalled = context.Process(
        target=hold_transaction_open, args=(env, stalled_ready, 3.0, "stalled")
    )
    killed = context.Process(
        target=hold_transaction_open, args=(env, killed_ready, 60.0, "killed")
    )
    seen: list[int] = []
    done = threading.Event()
    table = sql.Identifier(schema, "race_events")
    follower = threading.Thread(target=follow, args=(reader, seen, done, 0.005))
    follower.start()
    try:
        for process in writers:
            process.start()
        wait_until(lambda: (reader.max_notification_id() or 0) > 50, timeout=60)
        stalled.start()
        killed.start()
        assert stalled_ready.wait(60) and killed_ready.wait(60)
        time.sleep(1.0)  # others commit past both open transactions
        # Readers are held back: committed ids wait for the open transactions.
        ((committed,),) = admin(
            sql.SQL("SELECT max(notification_id) FROM {}").format(table)
        )
        settled = reader.max_notification_id()
        assert settled is not None and settled < committed
        assert killed.pid is not None
        os.kill(killed.pid, signal.SIGKILL)
        killed.join(timeout=30)
        assert killed.exitcode == -signal.SIGKILL
        stalled.join(timeout=60)
        assert stalled.exitcode == 0
        time.sleep(0.5)
    finally:
        stop.set()
        for process in writers:
            process.join(timeout=60)
        done.set()
        follower.join(timeout=60)
    assert all(p.exitcode == 0 for p in writers)
    stored = admin(
        sql.SQL("SELECT notification_id, originator_id FROM {} ORDER BY 1").format(
            table
        )
    )
    assert len(stored) > 200
    assert [i for i, _ in stored] == seen
    origins = {name for _, name in stored}
    assert "stalled" in origins
    assert not any(name.startswith("killed") for name in origins)
    assert seen[-1] > len(seen)  # the killed writer left a gap


def test_a_failed_insert_releases_the_id_lock_at_once(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    first = make_factory("Lock").application_recorder()
    second = make_factory("Lock", POSTGRES_LOCK_TIMEOUT="1").application_recorder()
    taken = uuid4()
    first.insert_events([event(taken, 1)])
    for _ in range(3):
        with pytest.raises(IntegrityError):
            first.insert_events([event(uuid4(), 1), event(taken, 1)])
    held = admin(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
        " WHERE l.locktype = 'advisory' AND a.application_name = 'esox Lock'"
        " AND a.datname = current_database()"
    )
    assert held == [(0,)]
    # Another pool's writer is not kept waiting (lock timeout 1s).
    assert second.insert_events([event(uuid4(), 1)]) == [8]  # 2 ids a failure
    # The gaps the failures left are settled: the reader is not held back.
    assert isinstance(second, PostgresApplicationRecorder)
    assert [n.id for n in second.settled(0, 10)[0]] == [1, 8]
    assert second.max_notification_id() == 8


def test_readers_are_not_held_back_by_an_unrelated_open_transaction(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    # A transaction that writes elsewhere and stays open (in any database of
    # the server) has a transaction id older than what is written next; it
    # does not hold back ids that follow each other, or gaps it cannot fill.
    recorder = make_factory("Busy").application_recorder()
    assert isinstance(recorder, PostgresApplicationRecorder)
    admin(sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(schema, "other")))
    with psycopg.connect(postgres_conninfo()) as other:
        other.execute(
            sql.SQL("INSERT INTO {} VALUES (1)").format(sql.Identifier(schema, "other"))
        )
        taken = uuid4()
        assert recorder.insert_events([event(taken, 1)]) == [1]
        with pytest.raises(IntegrityError):
            recorder.insert_events([event(taken, 1)])  # leaves gap 2
        assert recorder.insert_events([event(uuid4(), 1)]) == [3]
        assert [n.id for n in recorder.select_notifications(1, 10)] == [1, 3]
        # From start=0 too (no id 0: the first row follows the position).
        assert [n.id for n in recorder.select_notifications(0, 10)] == [1, 3]
        assert [n.id for n in recorder.select_notifications(0, 1)] == [1]
        assert recorder.max_notification_id() == 3
        assert recorder.wait_for_notification(1, 0.5)
        other.rollback()


def test_a_stalled_writer_holds_readers_back_not_writers(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    slow, fast, reader = slow_writer_fast_writer_and_reader(make_factory, "Stall", 2.0)
    writer = threading.Thread(target=slow.insert_events, args=([event(uuid4(), 1)],))
    writer.start()
    # It sleeps after its ids are drawn and the lock released, before COMMIT.
    wait_until(lambda: sleeping_pid("esox Stall"))
    started = time.monotonic()
    assert fast.insert_events([event(uuid4(), 1)]) == [2]
    assert time.monotonic() - started < 1.0  # the lock was not held to COMMIT
    assert reader.select_notifications(1, 10) == []
    assert reader.max_notification_id() is None
    assert not reader.wait_for_notification(0, 0.2)
    assert reader.wait_for_notification(0, 10)
    writer.join()
    assert [n.id for n in reader.select_notifications(1, 10)] == [1, 2]


# Compatibility of the transaction id column.


def has_transaction_id(schema: str, table: str) -> bool:
    rows = admin(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = %s"
        " AND table_name = %s AND column_name = %s",
        (schema, table, TRANSACTION_ID),
    )
    return bool(rows)


def test_an_eventsourcing_table_gains_the_column_and_both_libraries_continue(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    if EsApplication is None:  # pragma: no cover
        pytest.skip("eventsourcing is not installed")
    from .test_postgres_recorder import Dog

    app = DogSchool(env=es_env(schema))
    try:
        first = Dog("Fido")
        app.save(first)
        assert not has_transaction_id(schema, "dogschool_events")
        # CREATE_TABLE=no: esox leaves the table as it is, writes serialised.
        lazy = make_factory("DogSchool", CREATE_TABLE="no").application_recorder()
        assert isinstance(lazy, PostgresApplicationRecorder)
        assert lazy.insert_events([event(uuid4(), 1)]) == [2]
        assert not lazy.horizon
        assert [n.id for n in lazy.select_notifications(1, 10)] == [1, 2]
        # By default, esox adds the column (old rows have none).
        recorder = make_factory("DogSchool").application_recorder()
        assert isinstance(recorder, PostgresApplicationRecorder)
        assert has_transaction_id(schema, "dogschool_events")
        assert recorder.horizon
        assert recorder.insert_events([event(uuid4(), 1)]) == [3]
        # eventsourcing writes and reads on, its rows get transaction ids.
        second = Dog("Rex")
        app.save(second)
        assert app.repository.get(second.id).name == "Rex"
        assert [n.id for n in app.notification_log.select(start=1, limit=10)] == [
            1,
            2,
            3,
            4,
        ]
        rows = admin(
            sql.SQL("SELECT notification_id, {} IS NULL FROM {} ORDER BY 1").format(
                sql.Identifier(TRANSACTION_ID),
                sql.Identifier(schema, "dogschool_events"),
            )
        )
        assert rows == [(1, True), (2, True), (3, False), (4, False)]
        assert [n.id for n in recorder.select_notifications(1, 10)] == [1, 2, 3, 4]
        assert recorder.max_notification_id() == 4
    finally:
        app.close()


# Waits that never hang.


def insert_without_notify(schema: str, table: str) -> None:
    """A row written by plain SQL: no NOTIFY (as if it were lost)."""
    admin(
        sql.SQL(
            "INSERT INTO {} (originator_id, originator_version, topic, state)"
            " VALUES (gen_random_uuid(), 1, 't:E', '')"
        ).format(sql.Identifier(schema, table))
    )


def test_a_lost_notify_delays_a_subscriber_by_one_poll_only(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    factory = make_factory("Lost", POSTGRES_POLL_INTERVAL="0.3")
    recorder = factory.application_recorder()
    received: list[int] = []
    with recorder.subscribe(gt=0) as subscription:

        def consume() -> None:
            for notification in subscription:
                received.append(notification.id)

        consumer = threading.Thread(target=consume)
        consumer.start()
        listener = factory.datastore.listener
        wait_until(lambda: "lost_events" in listener._listening)
        time.sleep(0.4)  # the subscriber is waiting on LISTEN
        started = time.monotonic()
        insert_without_notify(schema, "lost_events")
        wait_until(lambda: received == [1], timeout=5)
        assert time.monotonic() - started < 1.5
        assert recorder.wait_for_notification(0, 0.01)
        # And wait_for_notification, on its own, polls too.
        waited = threading.Timer(0.1, insert_without_notify, (schema, "lost_events"))
        waited.start()
        assert recorder.wait_for_notification(1, 5)
        waited.join()
        subscription.stop()
        consumer.join(timeout=10)
    assert received[0] == 1


def test_poll_only_mode_opens_no_listen_connection_and_still_wakes(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    factory = make_factory(
        "Pooled", POSTGRES_LISTEN_NOTIFY="no", POSTGRES_POLL_INTERVAL="0.05"
    )
    assert factory.datastore.listen_notify is False
    recorder = factory.application_recorder()
    writer = make_factory("Pooled").application_recorder()
    received: list[int] = []
    with recorder.subscribe(gt=0) as subscription:

        def consume() -> None:
            for notification in subscription:
                received.append(notification.id)
                if len(received) == 3:
                    return

        consumer = threading.Thread(target=consume)
        consumer.start()
        for _ in range(3):
            writer.insert_events([event(uuid4(), 1)])
        consumer.join(timeout=10)
    assert received == [1, 2, 3]
    timer = threading.Timer(0.1, writer.insert_events, ([event(uuid4(), 1)],))
    timer.start()
    assert recorder.wait_for_notification(3, 5)
    timer.join()
    # No LISTEN connection was opened (the writer's factory never waits).
    assert factory.datastore.listener._thread is None
    listening = admin(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name ="
        " 'esox Pooled' AND datname = current_database() AND query ILIKE 'LISTEN%%'"
    )
    assert listening == [(0,)]


def test_poll_settings_are_read_and_checked(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    assert make_factory("A").datastore.poll_interval == 1.0
    assert make_factory("B", POSTGRES_LISTEN_NOTIFY="no").datastore.poll_interval == 0.1
    assert (
        make_factory("C", POSTGRES_POLL_INTERVAL="0.25").datastore.poll_interval == 0.25
    )
    from esox.persistence.errors import InfrastructureFactoryError

    with pytest.raises(InfrastructureFactoryError, match="POSTGRES_POLL_INTERVAL"):
        make_factory("D", POSTGRES_POLL_INTERVAL="0")
    with pytest.raises(InfrastructureFactoryError, match="POSTGRES_LISTEN_NOTIFY"):
        make_factory("E", POSTGRES_LISTEN_NOTIFY="maybe")
