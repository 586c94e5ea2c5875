"""esox.postgres: the PostgreSQL recorders and factory, against a real server.

Each test gets a fresh schema, dropped afterwards. Without a server the tests
skip, except under CI=true, where they fail (see persistence_envs).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg import sql

from esox._core import Notification, StoredEvent, Tracking
from esox.persistence import InfrastructureFactory
from esox.persistence.errors import (
    DataError,
    InfrastructureFactoryError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
)
from esox.persistence.recorders import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    TrackingRecorder,
)
from esox.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
    PostgresProcessRecorder,
    PostgresTrackingRecorder,
)
from esox.testing import in_threads
from esox.utils import Environment
from tests.persistence_envs import POSTGRES, admin, postgres_conninfo
from tests.stored_events import event, stream
from tests.writer_processes import (
    insert_batches_until_killed,
    killed_at_the_end,
    results_of,
)

# eventsourcing's own classes, at module level so that their topics resolve.
try:
    from eventsourcing.application import Application as EsApplication
    from eventsourcing.domain import Aggregate as EsAggregate
    from eventsourcing.domain import event as es_event
except ImportError:  # pragma: no cover
    EsApplication = None  # type: ignore[assignment, misc]
else:

    class Dog(EsAggregate):
        @es_event("Registered")
        def __init__(self, name: str) -> None:
            self.name = name
            self.tricks: list[str] = []

        @es_event("TrickAdded")
        def add_trick(self, trick: str) -> None:
            self.tricks.append(trick)

    class DogSchool(EsApplication):  # type: ignore[type-arg]
        pass


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for a condition"
        time.sleep(0.01)


@pytest.fixture
def recorder(make_factory: Callable[..., PostgresFactory]) -> PostgresProcessRecorder:
    recorder = make_factory().process_recorder()
    assert isinstance(recorder, PostgresProcessRecorder)
    return recorder


def table_names(schema: str) -> set[str]:
    rows = admin(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind = 'r'",
        (schema,),
    )
    return {name for (name,) in rows}


def backend_pids(application_name: str) -> list[int]:
    rows = admin(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
        (application_name,),
    )
    return [pid for (pid,) in rows]


def terminate_backends(application_name: str) -> int:
    rows = admin(
        # Waits (up to 5s) until they are gone, as after a server restart.
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
        " WHERE application_name = %s AND pid <> pg_backend_pid()",
        (application_name,),
    )
    return len(rows)


def sleeping_pid(application_name: str) -> int | None:
    """The backend of that application that is in pg_sleep, if any."""
    rows = admin(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
        " AND wait_event = 'PgSleep'",
        (application_name,),
    )
    return rows[0][0] if rows else None


def pause_before_commit(recorder: ApplicationRecorder, seconds: float) -> None:
    """Make the recorder's INSERT sleep after drawing its ids (and releasing
    the lock), before its COMMIT."""
    assert isinstance(recorder, PostgresApplicationRecorder)
    recorder._pause = seconds
    recorder._compose()


def slow_writer_fast_writer_and_reader(
    make_factory: Callable[..., PostgresFactory], name: str, pause: float
) -> tuple[PostgresApplicationRecorder, ApplicationRecorder, ApplicationRecorder]:
    """Two writers and a reader, each of a factory (and pool) of its own; the
    slow writer sleeps ``pause`` seconds after drawing its ids, before COMMIT."""
    slow, fast, reader = (make_factory(name).application_recorder() for _ in range(3))
    assert isinstance(slow, PostgresApplicationRecorder)
    pause_before_commit(slow, pause)
    return slow, fast, reader


def follow(
    reader: ApplicationRecorder, seen: list[int], done: threading.Event, idle: float
) -> None:
    """Read notifications by position into ``seen`` until ``done`` is set
    and one more read finds nothing new; sleep ``idle`` seconds after a read
    that finds nothing."""
    position = 0
    while True:
        finished = done.is_set()  # then one more read sees every commit
        batch = reader.select_notifications(position, 500, inclusive_of_start=False)
        seen.extend(n.id for n in batch)
        if batch:
            position = batch[-1].id
        elif finished:
            return
        elif idle:
            time.sleep(idle)


def read_past_transactions_in_flight(recorder: ApplicationRecorder) -> None:
    """Make the recorder read every committed row, settled or not (for a
    control experiment)."""
    assert isinstance(recorder, PostgresApplicationRecorder)
    recorder._horizon = False


# insert_events


def test_insert_conflicting_version_raises_integrity_error_and_stores_nothing(
    recorder: PostgresProcessRecorder,
) -> None:
    a, b = uuid4(), uuid4()
    recorder.insert_events([event(a, 1)])
    with pytest.raises(IntegrityError) as info:
        recorder.insert_events([event(b, 1), event(a, 1)])
    assert f"originator_id {a} version 1" in str(info.value)
    assert "_events" in str(info.value)
    assert recorder.select_events(b) == []
    assert recorder.max_notification_id() == 1
    # The failed insert used up sequence values: ids have a gap, never a repeat.
    ids = recorder.insert_events([event(b, 1)])
    assert ids[0] > 1
    assert [n.id for n in recorder.select_notifications(None, 10)] == [1, ids[0]]


def test_uuid_ids_are_read_back_as_uuids_and_their_strings_are_the_same_originator(
    recorder: PostgresProcessRecorder,
) -> None:
    a = uuid4()
    recorder.insert_events([event(a, 1), event(str(a), 2)])
    events = recorder.select_events(a)
    assert events == [event(a, 1), event(a, 2)]
    assert all(type(e.originator_id) is UUID for e in events)
    assert recorder.select_events(str(a)) == events
    with pytest.raises(IntegrityError):
        recorder.insert_events([event(a.hex, 1)])
    notification = recorder.select_notifications(1, 1)[0]
    assert type(notification) is Notification
    assert type(notification.originator_id) is UUID


def test_uuid_table_refuses_strings_that_are_not_uuids(
    recorder: PostgresProcessRecorder,
) -> None:
    with pytest.raises(DataError, match="ORIGINATOR_ID_TYPE=text"):
        recorder.insert_events([event("order-7", 1)])
    with pytest.raises(DataError, match="order-7"):
        recorder.select_events("order-7")
    assert recorder.max_notification_id() is None


def test_text_originator_ids_are_stored_and_read_back_as_str(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    recorder = make_factory("TextIds", ORIGINATOR_ID_TYPE="text").process_recorder()
    a = uuid4()
    assert recorder.insert_events([event("order-7", 1), event(a, 1)]) == [1, 2]
    assert recorder.select_events("order-7") == [event("order-7", 1)]
    # A UUID in a text table is its string.
    assert recorder.select_events(a) == [event(str(a), 1)]
    assert type(recorder.select_events(str(a))[0].originator_id) is str
    with pytest.raises(IntegrityError, match="order-7 version 1"):
        recorder.insert_events([event("order-7", 1)])
    assert [n.originator_id for n in recorder.select_notifications(1, 5)] == [
        "order-7",
        str(a),
    ]
    column = admin(
        "SELECT data_type FROM information_schema.columns WHERE table_schema = %s"
        " AND table_name = 'textids_events' AND column_name = 'originator_id'",
        (recorder.schema,),
    )
    assert column == [("text",)]


def test_existing_table_with_the_other_originator_id_type_is_refused(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    make_factory("Mixed").application_recorder()
    with pytest.raises(ProgrammingError, match=r"uuid originator ids.*'text'"):
        make_factory("Mixed", ORIGINATOR_ID_TYPE="text").application_recorder()


def test_application_recorder_refuses_tracking(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    recorder = make_factory().application_recorder()
    with pytest.raises(ProgrammingError, match="process recorder"):
        recorder.insert_events([event(uuid4(), 1)], tracking=Tracking("up", 1))
    assert recorder.insert_events([event(uuid4(), 1)], tracking=None) == [1]


# snapshots


def test_snapshot_recorder_has_no_notification_ids_and_returns_none(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    snapshots = make_factory("Snappy").aggregate_recorder("snapshots")
    assert type(snapshots) is PostgresAggregateRecorder
    a = uuid4()
    assert snapshots.insert_events([event(a, 3)]) is None
    assert snapshots.insert_events([event(a, 7)]) is None
    assert snapshots.select_events(a, desc=True, limit=1) == [event(a, 7)]
    with pytest.raises(IntegrityError, match="version 7"):
        snapshots.insert_events([event(a, 7)])
    columns = admin(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = 'snappy_snapshots'",
        (schema,),
    )
    assert {c for (c,) in columns} == {
        "originator_id",
        "originator_version",
        "topic",
        "state",
    }


# tracking


def test_tracking_table_has_one_row_per_application_like_eventsourcing(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    tracking = make_factory("Follower").tracking_recorder()
    assert type(tracking) is PostgresTrackingRecorder
    for n in (1, 2, 3):
        tracking.insert_tracking(Tracking("up", n))
    rows = admin(
        sql.SQL("SELECT * FROM {} ORDER BY application_name").format(
            sql.Identifier(schema, "follower_tracking")
        )
    )
    # eventsourcing 9.5 marks single-row tracking tables with this row.
    assert rows == [("__migration__", 1), ("up", 3)]
    assert "follower_events" not in table_names(schema)


# waiting and subscribing


def test_wait_for_notification_is_woken_by_notify_from_another_process(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    waiter = make_factory().application_recorder()
    writer = make_factory().application_recorder()  # another pool, as another process
    assert isinstance(waiter, PostgresApplicationRecorder)
    assert not waiter.wait_for_notification(0, 0.3)  # LISTEN is now set up
    listener = waiter.datastore.listener
    wait_until(lambda: waiter.channel in listener._listening)
    before = listener.generation(waiter.channel)
    timer = threading.Timer(0.2, writer.insert_events, args=([event(uuid4(), 1)],))
    started = time.monotonic()
    timer.start()
    try:
        assert waiter.wait_for_notification(0, 30)
    finally:
        timer.join()
    # Woken by the NOTIFY, well before the 1s fallback poll.
    assert time.monotonic() - started < 0.9
    assert listener.generation(waiter.channel) > before


def test_wait_for_tracking_times_out_or_is_woken(
    recorder: PostgresProcessRecorder, make_factory: Callable[..., PostgresFactory]
) -> None:
    assert not recorder.wait_for_tracking("up", 1, 0.05)
    with pytest.raises(ValueError, match="timeout"):
        recorder.wait_for_tracking("up", 1, float("nan"))
    other = make_factory().process_recorder()
    for delay, insert, kwargs in [
        (0.1, other.insert_tracking, {}),
        (0.1, other.insert_events, {"tracking": Tracking("up", 7)}),
    ]:
        args = (Tracking("up", 3),) if not kwargs else ([event(uuid4(), 1)],)
        wanted = 3 if not kwargs else 7
        timer = threading.Timer(delay, insert, args=args, kwargs=kwargs)
        started = time.monotonic()
        timer.start()
        try:
            assert recorder.wait_for_tracking("up", wanted, 30)
        finally:
            timer.join()
        assert time.monotonic() - started < 0.9
    recorder.wait("up", 7, timeout=1)
    with pytest.raises(TimeoutError):
        recorder.wait("up", 8, timeout=0.1)


def test_subscription_yields_existing_then_new_notifications_and_stops(
    recorder: PostgresProcessRecorder, make_factory: Callable[..., PostgresFactory]
) -> None:
    a = uuid4()
    recorder.insert_events(stream(a, range(1, 4)))
    writer = make_factory().application_recorder()
    with recorder.subscribe(gt=1) as subscription:
        assert [next(subscription).id for _ in range(2)] == [2, 3]
        timer = threading.Timer(0.1, writer.insert_events, args=([event(a, 4)],))
        started = time.monotonic()
        timer.start()
        assert next(subscription) == Notification(a, 4, "t:E", b"state 4", 4)
        assert time.monotonic() - started < 0.9
        timer.join()
        stopper = threading.Timer(0.1, subscription.stop)
        started = time.monotonic()
        stopper.start()
        assert list(subscription) == []
        assert time.monotonic() - started < 0.9
        stopper.join()


def test_subscription_with_topics_skips_other_notifications(
    recorder: PostgresProcessRecorder,
) -> None:
    a = uuid4()
    recorder.insert_events(
        [event(a, v, "t:A" if v % 5 == 0 else "t:B") for v in range(1, 21)]
    )
    with recorder.subscribe(topics=["t:A"]) as subscription:
        assert [next(subscription).id for _ in range(4)] == [5, 10, 15, 20]
        threading.Timer(
            0.1, recorder.insert_events, args=([event(a, 21, "t:A")],)
        ).start()
        assert next(subscription).id == 21


# concurrency and the no-skip guarantee


def test_threads_inserting_lose_and_duplicate_nothing(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    recorder = make_factory(POSTGRES_POOL_SIZE="4").application_recorder()
    threads, batches, batch_size = 10, 100, 10
    results: dict[int, list[list[int]]] = {}

    def work(t: int) -> None:
        results[t] = [
            list(recorder.insert_events(stream(uuid4(), range(1, batch_size + 1))))
            for _ in range(batches)
        ]

    in_threads(threads, work)
    check_batches(recorder, [ids for r in results.values() for ids in r], batch_size)


def check_batches(
    recorder: ApplicationRecorder, batches: list[list[int]], batch_size: int
) -> None:
    """Every batch got contiguous ids, no id twice, and all are stored."""
    total = len(batches) * batch_size
    for ids in batches:
        assert ids == list(range(ids[0], ids[0] + batch_size))
    all_ids = sorted(i for ids in batches for i in ids)
    assert all_ids == list(range(1, total + 1))
    notifications = recorder.select_notifications(1, total + 10)
    assert [n.id for n in notifications] == all_ids
    by_batch = {}
    for n in notifications:
        by_batch.setdefault(n.originator_id, []).append((n.id, n.originator_version))
    for rows in by_batch.values():
        # A batch's events are one aggregate's versions 1..n, in id order.
        assert [v for _, v in rows] == list(range(1, batch_size + 1))


def insert_batches(
    env: dict[str, str], batches: int, batch_size: int, queue: Any
) -> None:
    """In a spawned process: insert batches, report their ids (or the error)."""
    try:
        with PostgresFactory(Environment("Procs", env)) as factory:
            recorder = factory.application_recorder()
            ids = [
                list(recorder.insert_events(stream(uuid4(), range(1, batch_size + 1))))
                for _ in range(batches)
            ]
        queue.put(ids)
    except BaseException as e:
        queue.put(repr(e))


def test_processes_inserting_lose_and_duplicate_nothing(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    recorder = make_factory("Procs").application_recorder()
    env = {**POSTGRES, "POSTGRES_SCHEMA": schema, "POSTGRES_POOL_SIZE": "2"}
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes, batches, batch_size = 4, 100, 10
    workers = [
        context.Process(target=insert_batches, args=(env, batches, batch_size, queue))
        for _ in range(processes)
    ]
    results = results_of(workers, queue, timeout=120)
    assert [r for r in results if isinstance(r, str)] == []
    check_batches(recorder, [ids for r in results for ids in r], batch_size)


@pytest.mark.parametrize("same_recorder", [True, False], ids=["same", "separate"])
def test_two_writers_racing_for_the_same_version_exactly_one_wins(
    make_factory: Callable[..., PostgresFactory], same_recorder: bool
) -> None:
    first = make_factory().application_recorder()
    second = first if same_recorder else make_factory().application_recorder()

    def write(
        name: str,
        recorder: ApplicationRecorder,
        a: UUID,
        barrier: threading.Barrier,
        outcomes: dict[str, object],
    ) -> None:
        new = StoredEvent(a, 2, "t:E", name.encode())
        barrier.wait()
        try:
            outcomes[name] = recorder.insert_events([new, event(uuid4(), 1)])
        except IntegrityError as e:
            outcomes[name] = e

    for _ in range(20):
        a = uuid4()
        first.insert_events([event(a, 1)])
        barrier = threading.Barrier(2)
        outcomes: dict[str, object] = {}
        threads = [
            threading.Thread(target=write, args=(name, r, a, barrier, outcomes))
            for name, r in (("one", first), ("two", second))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [n for n, o in outcomes.items() if isinstance(o, list)]
        losers = [n for n, o in outcomes.items() if isinstance(o, IntegrityError)]
        assert len(winners) == 1 and len(losers) == 1, outcomes
        stored = first.select_events(a)
        assert [e.state for e in stored] == [b"state 1", winners[0].encode()]


def test_conflict_in_a_group_commit_fails_only_its_own_batch(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    recorder = make_factory("Grouped").application_recorder()
    taken = uuid4()
    recorder.insert_events([event(taken, 1)])
    threads, rounds = 8, 20
    outcomes: list[object] = []
    barrier = threading.Barrier(threads)

    def work(t: int) -> None:
        for r in range(rounds):
            barrier.wait()
            batch = (
                [event(taken, 1)] if t == 0 and r % 2 else stream(uuid4(), range(1, 4))
            )
            try:
                outcomes.append(recorder.insert_events(batch))
            except IntegrityError as e:
                outcomes.append(e)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    failed = [o for o in outcomes if isinstance(o, IntegrityError)]
    assert len(failed) == rounds // 2
    assert all(f"{taken} version 1" in str(e) for e in failed)
    good = [o for o in outcomes if isinstance(o, list)]
    assert len(good) == threads * rounds - rounds // 2
    stored = recorder.select_notifications(1, 10_000)
    assert len(stored) == 1 + 3 * len(good)
    # Concurrent batches shared transactions (group commit).
    (transactions,) = admin(
        sql.SQL("SELECT count(DISTINCT xmin::text) FROM {}").format(
            sql.Identifier(schema, "grouped_events")
        )
    )[0]
    assert transactions < len(good)


def test_follower_never_sees_a_later_id_before_an_earlier_one_commits(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    # A slow writer holds id 1 uncommitted for a while; a fast writer starts
    # after it and commits id 2 first. The reader holds id 2 back while the
    # transaction that may fill the gap before it is in flight.
    slow, fast, reader = slow_writer_fast_writer_and_reader(make_factory, "NoSkip", 0.5)
    seen = run_slow_then_fast(slow, fast, reader)
    assert seen == [[], [1, 2]]


def test_reading_past_transactions_in_flight_a_follower_would_skip(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    # The control experiment: the same race read without the transaction
    # ids shows the hazard they prevent, so the test above can fail.
    slow, fast, reader = slow_writer_fast_writer_and_reader(make_factory, "Skip", 0.5)
    read_past_transactions_in_flight(reader)
    seen = run_slow_then_fast(slow, fast, reader)
    assert seen == [[2], []]  # a follower at 2 never reads id 1


def run_slow_then_fast(
    slow: ApplicationRecorder, fast: ApplicationRecorder, reader: ApplicationRecorder
) -> list[list[int]]:
    """What a follower reads while the slow writer's transaction is open, and after."""
    assert isinstance(slow, PostgresApplicationRecorder)
    name = slow.datastore.connect_kwargs["application_name"]
    slow_thread = threading.Thread(
        target=slow.insert_events, args=([event(uuid4(), 1)],)
    )
    slow_thread.start()
    wait_until(lambda: sleeping_pid(name))  # id 1 is taken, not committed
    fast_thread = threading.Thread(
        target=fast.insert_events, args=([event(uuid4(), 1)],)
    )
    fast_thread.start()
    time.sleep(0.2)
    first = [n.id for n in reader.select_notifications(None, 10)]
    slow_thread.join()
    fast_thread.join()
    position = first[-1] if first else 0
    later = [
        n.id
        for n in reader.select_notifications(position, 10, inclusive_of_start=False)
    ]
    return [first, later]


def test_follower_reading_under_concurrent_writers_never_skips(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    # Writers in separate pools (as separate processes would be), each with
    # a pause between INSERT and COMMIT to widen the window; one more writer
    # keeps failing on a conflict, which leaves gaps in the ids; and one is
    # eventsourcing's own recorder. A follower reads as fast as it can; at
    # the end it must have seen every id.
    from eventsourcing.persistence import StoredEvent as EsStoredEvent
    from eventsourcing.postgres import PostgresFactory as EsFactory
    from eventsourcing.utils import Environment as EsEnvironment

    reader = make_factory("Race").application_recorder()
    writers = [make_factory("Race").application_recorder() for _ in range(4)]
    for writer in writers:
        assert isinstance(writer, PostgresApplicationRecorder)
        pause_before_commit(writer, 0.002)
    taken = uuid4()
    reader.insert_events([event(taken, 1)])
    stop = threading.Event()
    failures: list[int] = []

    def write(recorder: ApplicationRecorder) -> None:
        while not stop.is_set():
            recorder.insert_events(stream(uuid4(), range(1, 4)))

    def conflict(recorder: ApplicationRecorder) -> None:
        while not stop.is_set():
            try:
                recorder.insert_events([event(uuid4(), 1), event(taken, 1)])
            except IntegrityError:
                failures.append(1)

    es_factory = EsFactory(EsEnvironment("Race", es_env(schema)))
    es_recorder = es_factory.application_recorder()

    def es_write() -> None:
        while not stop.is_set():
            a = uuid4()
            es_recorder.insert_events(
                [EsStoredEvent(a, v, "t:E", b"es") for v in range(1, 4)]
            )

    seen: list[int] = []
    written = threading.Event()
    threads = [threading.Thread(target=write, args=(w,)) for w in writers[:3]]
    threads.append(threading.Thread(target=conflict, args=(writers[3],)))
    threads.append(threading.Thread(target=es_write))
    # The follower reads as fast as it can: no pause between empty reads.
    follower = threading.Thread(target=follow, args=(reader, seen, written, 0.0))
    for t in [*threads, follower]:
        t.start()
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join()
    written.set()
    follower.join()
    es_factory.close()
    notifications = reader.select_notifications(None, 1_000_000)
    stored = [n.id for n in notifications]
    assert len(stored) > 100
    assert sum(n.state == b"es" for n in notifications) > 10
    assert failures, "no conflicting writes: no gaps were tested"
    assert stored[-1] > len(stored), "the failed writes left no gaps"
    assert seen == stored


def test_esox_writers_wait_for_an_eventsourcing_writer_holding_the_table_lock(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    # eventsourcing's writers take LOCK TABLE ... IN EXCLUSIVE MODE, then
    # insert; esox's must not draw ids meanwhile.
    recorder = make_factory("Mixed").application_recorder()
    table = sql.Identifier(schema, "mixed_events")
    outcome: list[object] = []
    with psycopg.connect(postgres_conninfo()) as holder:
        holder.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table))
        holder.execute(
            sql.SQL(
                "INSERT INTO {} (originator_id, originator_version, topic, state)"
                " VALUES (gen_random_uuid(), 1, 't:E', '')"
            ).format(table)
        )
        writer = threading.Thread(
            target=lambda: outcome.append(recorder.insert_events([event(uuid4(), 1)]))
        )
        writer.start()
        time.sleep(0.3)
        assert outcome == []
        assert recorder.select_notifications(None, 10) == []
        holder.commit()
    writer.join()
    assert outcome == [[2]]


def test_an_eventsourcing_writer_waits_for_an_esox_writer(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    recorder = make_factory("Mixed").application_recorder()
    pause_before_commit(recorder, 0.5)
    writer = threading.Thread(
        target=recorder.insert_events, args=([event(uuid4(), 1)],)
    )
    writer.start()
    wait_until(lambda: sleeping_pid("esox Mixed"))
    lock = sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(
        sql.Identifier(schema, "mixed_events")
    )
    with psycopg.connect(postgres_conninfo()) as holder:
        holder.execute("SET lock_timeout = '100ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            holder.execute(lock)
        holder.rollback()
        writer.join()
        holder.execute(lock)


def write_forever(env: dict[str, str], prefix: str, batch_size: int) -> None:
    """In a spawned process: insert big batches until killed."""
    factory = PostgresFactory(Environment("Killed", env))
    recorder = factory.application_recorder()
    insert_batches_until_killed(recorder, prefix, batch_size, os.urandom(4000))


def test_writer_killed_mid_batch_leaves_nothing_partial(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    recorder = make_factory("Killed", ORIGINATOR_ID_TYPE="text").application_recorder()
    env = {**POSTGRES, "POSTGRES_SCHEMA": schema, "ORIGINATOR_ID_TYPE": "text"}
    batch_size = 500  # 2 MB a batch: a kill often lands while it is being sent
    context = multiprocessing.get_context("spawn")
    previous = 0
    for round_ in range(3):
        writer = context.Process(
            target=write_forever, args=(env, f"round{round_}", batch_size)
        )
        with killed_at_the_end(writer):
            assert recorder.wait_for_notification(previous + 3 * batch_size, 60)
            time.sleep(0.05 * round_)
        assert writer.exitcode == -signal.SIGKILL
        # The server ends the dead client's transaction: the lock is freed.
        started = time.monotonic()
        recorder.insert_events([StoredEvent(f"after{round_}", 1, "t:E", b"")])
        assert time.monotonic() - started < 10
        counts = admin(
            sql.SQL(
                "SELECT originator_id, count(*) FROM {} GROUP BY originator_id"
            ).format(sql.Identifier(schema, "killed_events"))
        )
        sizes = {count for name, count in counts if not name.startswith("after")}
        assert sizes == {batch_size}
        latest = recorder.max_notification_id()
        assert latest is not None and latest > previous
        previous = latest


def write_slowly(env: dict[str, str], originator_id: str) -> None:
    """In a spawned process: insert a batch whose transaction pauses before COMMIT."""
    factory = PostgresFactory(Environment("Held", env))
    recorder = factory.application_recorder()
    assert isinstance(recorder, PostgresApplicationRecorder)
    pause_before_commit(recorder, 1)
    recorder.insert_events(stream(UUID(originator_id), range(1, 101)))


def test_writer_killed_while_its_transaction_holds_the_lock_leaves_all_or_nothing(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    recorder = make_factory("Held").application_recorder()
    env = {**POSTGRES, "POSTGRES_SCHEMA": schema}
    a = uuid4()
    writer = multiprocessing.get_context("spawn").Process(
        target=write_slowly, args=(env, str(a))
    )
    with killed_at_the_end(writer):
        # Its INSERT has run; the table lock is held; COMMIT is yet to run.
        wait_until(lambda: sleeping_pid("esox Held"), timeout=60)
    started = time.monotonic()
    assert recorder.insert_events([event(uuid4(), 1)])
    assert time.monotonic() - started < 10
    # Whether the server got the COMMIT before the client died decides which.
    assert len(recorder.select_events(a)) in (0, 100)


# connection loss and stale statements


def test_reads_and_writes_survive_a_restart_of_the_backends(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    recorder = make_factory("Restart").process_recorder()
    a = uuid4()
    recorder.insert_events([event(a, 1)])
    wait_until(lambda: len(backend_pids("esox Restart")) >= 5)
    assert terminate_backends("esox Restart") >= 5
    # Dead pooled connections are noticed before anything is sent on them.
    assert recorder.insert_events([event(a, 2)]) == [2]
    assert terminate_backends("esox Restart") >= 1
    assert recorder.select_events(a) == stream(a, range(1, 3))
    assert recorder.max_tracking_id("up") is None


def test_reads_are_retried_when_the_connection_is_lost(
    make_factory: Callable[..., PostgresFactory], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = make_factory("Retry").application_recorder()
    a = uuid4()
    recorder.insert_events([event(a, 1)])
    # Hide the death notices, so that the read itself meets the dead connection.
    monkeypatch.setattr(
        "esox.postgres.datastore._has_pending_input", lambda conn: False
    )
    wait_until(lambda: len(backend_pids("esox Retry")) >= 5)
    terminate_backends("esox Retry")
    time.sleep(0.1)
    assert recorder.select_events(a) == [event(a, 1)]
    assert recorder.max_notification_id() == 1


def test_pre_ping_checks_every_connection_before_use(
    make_factory: Callable[..., PostgresFactory], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = make_factory("Ping", POSTGRES_PRE_PING="yes").application_recorder()
    recorder.insert_events([event(uuid4(), 1)])
    monkeypatch.setattr(
        "esox.postgres.datastore._has_pending_input", lambda conn: False
    )
    wait_until(lambda: len(backend_pids("esox Ping")) >= 5)
    terminate_backends("esox Ping")
    assert recorder.insert_events([event(uuid4(), 1)]) == [2]


def test_read_retries_are_bounded(make_factory: Callable[..., PostgresFactory]) -> None:
    datastore = make_factory().datastore
    calls = []

    def lose_connection(conn: object) -> None:
        calls.append(conn)
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    with pytest.raises(OperationalError, match="selecting: server closed"):
        datastore.read("selecting", lose_connection)
    assert len(calls) == datastore.read_attempts == 3


def test_write_whose_connection_dies_before_its_commit_is_run_again(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    recorder = make_factory("Dies").application_recorder()
    assert isinstance(recorder, PostgresApplicationRecorder)
    recorder.insert_events([event(uuid4(), 1)])
    pause_before_commit(recorder, 1)
    a = uuid4()
    outcome: list[object] = []

    def insert() -> None:
        try:
            outcome.append(recorder.insert_events([event(a, 1), event(a, 2)]))
        except OperationalError as e:
            outcome.append(e)

    thread = threading.Thread(target=insert)
    thread.start()
    wait_until(lambda: sleeping_pid("esox Dies"))
    killed = sleeping_pid("esox Dies")
    admin("SELECT pg_terminate_backend(%s)", (killed,))
    thread.join()
    # Killed before its COMMIT: nothing was stored, so it ran again, on
    # another connection, and its ids follow the first batch's (the killed
    # statement's ids were drawn and lost: a gap, never a duplicate).
    [ids] = outcome
    assert isinstance(ids, list) and len(ids) == 2 and ids[1] == ids[0] + 1
    assert [e.originator_version for e in recorder.select_events(a)] == [1, 2]
    assert killed not in backend_pids("esox Dies")
    pause_before_commit(recorder, 0)
    assert [n.id for n in recorder.select_notifications(0, 10)][1:] == ids


@contextmanager
def connection_lost_at(statement: str, *, after: bool = False) -> Iterator[list[int]]:
    """The first statement containing ``statement`` loses its connection
    (its backend ends it, as a server that goes away does): before it is
    sent, or ``after`` it ran (and, in autocommit, committed). Yields the
    list of losses, to assert on."""
    losses: list[int] = []
    execute = psycopg.Connection.execute

    def lose(conn: Any) -> None:
        losses.append(1)
        execute(conn, "SELECT pg_terminate_backend(pg_backend_pid())")

    def losing(conn: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        at = statement in str(query) and not losses
        if at and not after:
            lose(conn)
        cursor = execute(conn, query, *args, **kwargs)
        if at and after:
            lose(conn)
        return cursor

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(psycopg.Connection, "execute", losing)
        yield losses


@pytest.mark.parametrize("kind", ["aggregate", "application", "process"])
def test_write_whose_connection_dies_after_its_commit_is_not_run_again(
    make_factory: Callable[..., PostgresFactory], kind: str
) -> None:
    factory = make_factory("Lost")
    recorder: Any = getattr(factory, f"{kind}_recorder")()
    a = uuid4()
    kwargs: dict[str, Any] = {}
    if kind == "process":
        kwargs["tracking"] = Tracking(notification_id=5, application_name="up")
    with connection_lost_at("INSERT", after=True) as calls:
        ids = recorder.insert_events([event(a, 1), event(a, 2)], **kwargs)
    # The INSERT committed; its connection died before the answer came
    # back; the write found its rows on a new connection and returned their
    # ids instead of running again (which would have failed on them).
    assert calls == [1]
    assert [e.originator_version for e in recorder.select_events(a)] == [1, 2]
    if kind == "aggregate":
        assert ids is None
    else:
        assert ids == [n.id for n in recorder.select_notifications(0, 10)]
    if kind == "process":
        assert recorder.max_tracking_id("up") == 5


def test_write_that_finds_another_writers_rows_is_an_integrity_error(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    recorder = make_factory("Other").application_recorder()
    a = uuid4()
    recorder.insert_events([StoredEvent(a, 1, "other topic", b"other state")])
    with (
        connection_lost_at("INSERT") as calls,
        pytest.raises(IntegrityError, match="version 1"),
    ):
        recorder.insert_events([event(a, 1)])
    assert calls == [1]
    assert [e.topic for e in recorder.select_events(a)] == ["other topic"]


def test_write_whose_outcome_cannot_be_found_says_so(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    datastore = make_factory("Unknown").datastore
    calls = []

    def lose_connection(conn: object) -> None:
        calls.append(conn)
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    with pytest.raises(OperationalError, match="may or may not have been"):
        datastore.write("writing", lose_connection, lose_connection)
    # The write, then one question per attempt, never the write again.
    assert len(calls) == 1 + datastore.read_attempts


def test_lock_timeout_bounds_the_wait_for_the_table_lock(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    recorder = make_factory(
        "Locked", POSTGRES_LOCK_TIMEOUT="0.2"
    ).application_recorder()
    with psycopg.connect(postgres_conninfo()) as holder:
        holder.execute(
            sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(
                sql.Identifier(schema, "locked_events")
            )
        )
        started = time.monotonic()
        with pytest.raises(OperationalError, match="lock timeout"):
            recorder.insert_events([event(uuid4(), 1)])
        assert time.monotonic() - started < 5
        holder.rollback()
    assert recorder.insert_events([event(uuid4(), 1)])


def test_prepared_statements_survive_a_change_of_the_table(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    recorder = make_factory("Altered", POSTGRES_POOL_SIZE="2").application_recorder()
    a = uuid4()
    recorder.insert_events(stream(a, range(1, 4)))
    for _ in range(5):  # prepared on every pooled connection
        assert len(recorder.select_events(a)) == 3
        assert len(recorder.select_notifications(1, 10)) == 3
    admin(
        sql.SQL("ALTER TABLE {} ALTER COLUMN topic TYPE varchar(200)").format(
            sql.Identifier(schema, "altered_events")
        )
    )
    for _ in range(5):
        assert recorder.select_events(a) == stream(a, range(1, 4))
        assert len(recorder.select_notifications(1, 10)) == 3
    assert recorder.insert_events([event(a, 4)]) == [4]


def test_unreachable_server_is_an_operational_error_after_the_connect_timeout() -> None:
    env = {**POSTGRES, "POSTGRES_PORT": "1", "POSTGRES_CONNECT_TIMEOUT": "1"}
    with PostgresFactory(
        Environment("Nowhere", env | {"CREATE_TABLE": "no"})
    ) as factory:
        recorder = factory.application_recorder()
        started = time.monotonic()
        with pytest.raises(
            OperationalError,
            match=r"Could not connect to PostgreSQL database .* at 127\.0\.0\.1:1",
        ):
            recorder.max_notification_id()
        assert time.monotonic() - started < 5


def test_closed_factory_raises_interface_error(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    factory = make_factory()
    recorder = factory.application_recorder()
    factory.close()
    with pytest.raises(InterfaceError, match="closed"):
        recorder.max_notification_id()
    with pytest.raises(InterfaceError, match="closed"):
        recorder.insert_events([event(uuid4(), 1)])


# identifiers


EVIL_NAMES = [
    'x"; DROP TABLE canary; --',
    "a%sb%(x)s%%",
    "'); DROP TABLE canary; --",
    "back\\slash {0} $1 $$",
    "Ünïcödé 名前",
]


@pytest.mark.parametrize("name", EVIL_NAMES)
def test_application_name_cannot_inject_sql(
    make_factory: Callable[..., PostgresFactory], schema: str, name: str
) -> None:
    admin(sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(schema, "canary")))
    factory = make_factory(name)
    recorder = factory.process_recorder()
    snapshots = factory.aggregate_recorder("snapshots")
    a = uuid4()
    assert recorder.insert_events([event(a, 1)], tracking=Tracking(name, 1)) == [1]
    snapshots.insert_events([event(a, 1)])
    assert recorder.select_events(a, gt=0, lte=1, desc=True, limit=1) == [event(a, 1)]
    assert [
        n.id for n in recorder.select_notifications(1, 5, stop=9, topics=["t:E"])
    ] == [1]
    assert recorder.max_tracking_id(name) == 1
    assert recorder.wait_for_notification(0, 1)
    prefix = name.lower()
    assert table_names(schema) == {
        "canary",
        f"{prefix}_events",
        f"{prefix}_snapshots",
        f"{prefix}_tracking",
    }


@pytest.mark.parametrize("evil", ['s"; DROP TABLE canary; --', "s%s %(x)s"])
def test_schema_name_cannot_inject_sql(evil: str, schema: str) -> None:
    admin(sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(schema, "canary")))
    name = f"{schema}{evil}"
    env = {**POSTGRES, "POSTGRES_SCHEMA": name}
    try:
        with PostgresFactory(Environment("Inj", env)) as factory:
            recorder = factory.process_recorder()
            a = uuid4()
            recorder.insert_events([event(a, 1)], tracking=Tracking("up", 1))
            assert recorder.select_events(a) == [event(a, 1)]
            assert recorder.max_tracking_id("up") == 1
        assert table_names(name) == {"inj_events", "inj_tracking"}
        assert table_names(schema) == {"canary"}
    finally:
        admin(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def test_identifiers_longer_than_postgres_allows_are_refused(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    with pytest.raises(InfrastructureFactoryError, match="63 bytes"):
        make_factory("a" * 60).application_recorder()
    with pytest.raises(InfrastructureFactoryError, match="POSTGRES_SCHEMA"):
        make_factory(POSTGRES_SCHEMA="s" * 64)
    datastore = make_factory().datastore
    with pytest.raises(ProgrammingError, match="NUL"):
        PostgresApplicationRecorder(datastore, events_table_name="a\x00b")
    with pytest.raises(ProgrammingError, match="63 bytes"):
        PostgresTrackingRecorder(datastore, tracking_table_name="é" * 32)


# compatibility with eventsourcing's PostgreSQL module


def es_env(schema: str, **extra: str) -> dict[str, str]:
    return {
        **POSTGRES,
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_SCHEMA": schema,
        **extra,
    }


def test_database_written_by_eventsourcing_is_read_by_esox(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    if EsApplication is None:  # pragma: no cover
        pytest.skip("eventsourcing is not installed")
    app = DogSchool(env=es_env(schema, IS_SNAPSHOTTING_ENABLED="yes"))
    try:
        dog = Dog("Fido")
        dog.add_trick("roll over")
        app.save(dog)
        other = Dog("Rex")
        app.save(other)
        app.take_snapshot(dog.id)
        es_notifications = app.recorder.select_notifications(start=1, limit=10)
        es_snapshots = app.snapshots.recorder.select_events(dog.id)  # type: ignore[union-attr]
    finally:
        app.close()

    factory = make_factory("DogSchool")
    recorder = factory.process_recorder()
    notifications = recorder.select_notifications(1, 10)
    assert [
        (n.id, n.originator_id, n.originator_version, n.topic, n.state)
        for n in notifications
    ] == [
        (n.id, n.originator_id, n.originator_version, n.topic, n.state)
        for n in es_notifications
    ]
    assert [e.originator_version for e in recorder.select_events(dog.id)] == [1, 2]
    snapshots = factory.aggregate_recorder("snapshots").select_events(dog.id)
    assert [(s.originator_version, s.topic, s.state) for s in snapshots] == [
        (s.originator_version, s.topic, s.state) for s in es_snapshots
    ]
    # And esox continues the sequence eventsourcing started.
    assert recorder.insert_events([event(uuid4(), 1)]) == [4]


def test_database_written_by_esox_is_read_by_eventsourcing(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    if EsApplication is None:  # pragma: no cover
        pytest.skip("eventsourcing is not installed")
    factory = make_factory("DogSchool")
    recorder = factory.process_recorder()
    mapper_app = DogSchool(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    dog = Dog("Fido")
    dog.add_trick("fetch")
    dog.add_trick("sit")
    pending = [mapper_app.mapper.to_stored_event(e) for e in dog.collect_events()]
    ids = recorder.insert_events(
        [
            StoredEvent(s.originator_id, s.originator_version, s.topic, s.state)
            for s in pending
        ],
        tracking=Tracking("Upstream", 42),
    )
    assert ids == [1, 2, 3]

    # eventsourcing's own writes wake esox's waiters (same NOTIFY channel).
    app = DogSchool(env=es_env(schema))
    try:
        copy = app.repository.get(dog.id)
        assert copy.name == "Fido"
        assert copy.tricks == ["fetch", "sit"]
        assert [n.id for n in app.notification_log.select(start=1, limit=10)] == ids
        es_process = app.factory.process_recorder()
        assert es_process.max_tracking_id("Upstream") == 42
        timer = threading.Timer(0.1, app.save, args=(Dog("Rex"),))
        started = time.monotonic()
        timer.start()
        assert recorder.wait_for_notification(3, 30)
        assert time.monotonic() - started < 0.9
        timer.join()
    finally:
        app.close()
        mapper_app.close()
    # eventsourcing found a single-row tracking table: nothing was migrated.
    assert not any(t.startswith("bkup") for t in table_names(schema))
    assert recorder.max_notification_id() == 4


# the factory


def test_factory_is_constructed_from_persistence_module(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    for module in ("esox.postgres", "eventsourcing.postgres"):
        env = {**POSTGRES, "POSTGRES_SCHEMA": schema, "PERSISTENCE_MODULE": module}
        with InfrastructureFactory.construct(Environment("Bank", env)) as factory:
            assert type(factory) is PostgresFactory
            assert isinstance(factory.aggregate_recorder(), AggregateRecorder)
            assert isinstance(factory.application_recorder(), ApplicationRecorder)
            assert isinstance(factory.tracking_recorder(), TrackingRecorder)
            assert isinstance(factory.process_recorder(), ProcessRecorder)
    assert table_names(schema) == {"bank_events", "bank_tracking"}


def test_factory_names_tables_like_eventsourcing_without_an_application_name(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    factory = make_factory("")
    factory.application_recorder()
    factory.aggregate_recorder("snapshots")
    factory.tracking_recorder()
    assert table_names(schema) == {
        "stored_events",
        "stored_snapshots",
        "notification_tracking",
    }


def test_factory_creates_a_missing_schema_and_nothing_when_create_table_is_no(
    schema: str,
) -> None:
    missing = f"{schema}_new"
    env = {**POSTGRES, "POSTGRES_SCHEMA": missing}
    try:
        with PostgresFactory(Environment("Lazy", env | {"CREATE_TABLE": "no"})) as f:
            recorder = f.application_recorder()
            assert table_names(missing) == set()
            with pytest.raises(ProgrammingError, match="CREATE_TABLE=yes"):
                recorder.max_notification_id()
        with PostgresFactory(Environment("Lazy", env)) as factory:
            assert factory.application_recorder().max_notification_id() is None
        assert table_names(missing) == {"lazy_events"}
    finally:
        admin(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(missing))
        )


def test_factories_creating_tables_at_once_do_not_collide(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    factories = [make_factory("Racing") for _ in range(6)]
    # Any error in a thread is raised here.
    in_threads(len(factories), lambda i: factories[i].process_recorder())
    assert table_names(schema) == {"racing_events", "racing_tracking"}


def test_factory_applies_the_connection_settings(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    factory = make_factory(
        "Tuned",
        POSTGRES_POOL_SIZE="3",
        POSTGRES_MAX_OVERFLOW="2",
        POSTGRES_LOCK_TIMEOUT="1.5",
        POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT="7",
    )
    datastore = factory.datastore
    assert (datastore.pool.min_size, datastore.pool.max_size) == (3, 5)
    settings = datastore.read(
        "show",
        lambda conn: conn.execute(
            "SELECT current_setting('lock_timeout'),"
            " current_setting('idle_in_transaction_session_timeout'),"
            " current_setting('application_name')"
        ).fetchone(),
    )
    assert settings == ("1500ms", "7s", "esox Tuned")
    factory = make_factory(
        POSTGRES_CONN_MAX_AGE="60", POSTGRES_MAX_WAITING="7", POSTGRES_PORT="5432"
    )
    assert factory.datastore.pool.max_lifetime == 60
    assert factory.datastore.pool.max_waiting == 7
    assert factory.datastore.connect_kwargs["port"] == 5432


def test_factory_tracking_recorder_of_a_given_class(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    class Custom(PostgresTrackingRecorder):
        pass

    factory = make_factory("Custom")
    recorder = factory.tracking_recorder(Custom)
    assert type(recorder) is Custom
    assert recorder.tracking_table_name == "custom_tracking"
    with pytest.raises(InfrastructureFactoryError, match="PostgresTrackingRecorder"):
        factory.tracking_recorder(TrackingRecorder)


def test_factory_prefers_the_application_prefixed_keys(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    factory = make_factory("Bank", BANK_POSTGRES_POOL_SIZE="2", POSTGRES_POOL_SIZE="9")
    assert factory.datastore.pool.min_size == 2


def test_factory_requires_a_database_name_and_names_the_keys() -> None:
    env = {k: v for k, v in POSTGRES.items() if k != "POSTGRES_DBNAME"}
    with pytest.raises(
        InfrastructureFactoryError, match="BANK_POSTGRES_DBNAME or POSTGRES_DBNAME"
    ):
        PostgresFactory(Environment("Bank", env))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("POSTGRES_PORT", "http"),
        ("POSTGRES_PORT", "70000"),
        ("POSTGRES_POOL_SIZE", "0"),
        ("POSTGRES_POOL_SIZE", "five"),
        ("POSTGRES_MAX_OVERFLOW", "-1"),
        ("POSTGRES_CONNECT_TIMEOUT", "soon"),
        ("POSTGRES_CONNECT_TIMEOUT", "0"),
        ("POSTGRES_LOCK_TIMEOUT", "-2"),
        ("POSTGRES_LOCK_TIMEOUT", "nan"),
        ("POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT", "x"),
        ("POSTGRES_PRE_PING", "maybe"),
        ("ORIGINATOR_ID_TYPE", "int"),
        ("CREATE_TABLE", "perhaps"),
        ("BANK_POSTGRES_POOL_SIZE", "many"),
    ],
)
def test_factory_names_the_variable_with_a_bad_value(key: str, value: str) -> None:
    with pytest.raises(
        InfrastructureFactoryError, match=f"^{key}={value!r} is not valid"
    ):
        PostgresFactory(Environment("Bank", {**POSTGRES, key: value}))


def test_factory_accepts_empty_values_as_defaults(
    make_factory: Callable[..., PostgresFactory],
) -> None:
    factory = make_factory(
        POSTGRES_PORT="",
        POSTGRES_POOL_SIZE="",
        POSTGRES_LOCK_TIMEOUT="",
        POSTGRES_SCHEMA="",
        ORIGINATOR_ID_TYPE="UUID",
        CREATE_TABLE="",
    )
    assert factory.datastore.schema == "public"
    assert factory.datastore.originator_id_type == "uuid"
    assert factory.datastore.pool.min_size == 5
    assert factory.create_tables


def test_datastore_rejects_an_unknown_originator_id_type() -> None:
    with pytest.raises(ValueError, match="originator_id_type"):
        PostgresDatastore(dbname="test", originator_id_type="int")


def test_an_application_dropped_without_close_releases_its_connections(
    schema: str,
) -> None:
    settings = {**POSTGRES, "POSTGRES_SCHEMA": schema}
    factory = PostgresFactory(Environment("Dropped", settings))
    recorder = factory.application_recorder()
    recorder.create_table()
    recorder.insert_events([event(uuid4(), 1)])  # the NOTIFY connection
    with recorder.subscribe(0) as subscription:  # the LISTEN connection
        next(iter(subscription))
    wait_until(lambda: len(backend_pids("esox Dropped")) >= 3)
    del factory, recorder, subscription
    gc.collect()
    # The pool, the notifier's and the listener's connections all go.
    wait_until(lambda: not backend_pids("esox Dropped"))


def test_create_table_whose_connection_dies_runs_again(
    make_factory: Callable[..., PostgresFactory], schema: str
) -> None:
    with connection_lost_at("CREATE TABLE") as calls:
        recorder = make_factory("Creates").application_recorder()
    # Lost before its COMMIT: the transaction rolled back, and ran again.
    assert calls == [1]
    assert "creates_events" in table_names(schema)
    assert recorder.insert_events([event(uuid4(), 1)]) == [1]
