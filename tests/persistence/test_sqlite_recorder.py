"""esox.sqlite: the Rust SqliteRecorder, its persistence module and factory."""

from __future__ import annotations

import ast
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from esox._core import (
    Notification,
    SqliteDatabase,
    SqliteRecorder,
    StoredEvent,
    Tracking,
)
from esox.persistence import InfrastructureFactory
from esox.persistence.errors import (
    DataError,
    InfrastructureFactoryError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
)
from esox.sqlite import (
    SQLiteAggregateRecorder,
    SQLiteApplicationRecorder,
    SQLiteFactory,
    SQLiteProcessRecorder,
    SQLiteTrackingRecorder,
)
from esox.utils import Environment
from tests.stored_events import event, stream
from tests.writer_processes import (
    insert_batches_until_killed,
    killed_at_the_end,
    results_of,
)


@pytest.fixture(params=["file", "memory"])
def db_name(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database file in tmp_path, or ":memory:"."""
    return str(tmp_path / "events.db") if request.param == "file" else ":memory:"


@pytest.fixture
def recorder(db_name: str) -> Iterator[SqliteRecorder]:
    """An application and tracking (process) recorder."""
    r = SqliteRecorder(db_name, tracking=True)
    yield r
    r.close()


# esox links its own copy of SQLite. Two copies of SQLite in one process do
# not see each other's POSIX locks (and closing one's file releases the
# other's), so the tests look at files with Python's sqlite3 in a subprocess.


def sqlite3_rows(path: Path | str, sql: str) -> list[tuple[object, ...]]:
    """Rows of ``sql`` on ``path``, read by Python's sqlite3 in another process."""
    script = (
        "import sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1])\n"
        "print(repr(conn.execute(sys.argv[2]).fetchall()))\n"
        "conn.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path), sql],
        capture_output=True,
        text=True,
        check=True,
    )
    rows: list[tuple[object, ...]] = ast.literal_eval(done.stdout)
    return rows


def sqlite3_script(path: Path | str, sql: str) -> None:
    """Run ``sql`` on ``path`` with Python's sqlite3 in another process."""
    script = (
        "import sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1])\n"
        "conn.executescript(sys.argv[2])\n"
        "conn.close()\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path), sql], check=True)


# insert_events


def test_a_refused_batch_leaves_the_ids_contiguous(recorder: SqliteRecorder) -> None:
    # The conflict itself is the contract's (esox.testing); unlike
    # PostgreSQL's sequence, SQLite uses up no id for a refused batch.
    a, b = uuid4(), uuid4()
    recorder.insert_events([event(a, 1)])
    with pytest.raises(IntegrityError):
        recorder.insert_events([event(b, 1), event(b, 2), event(a, 1)])
    assert recorder.insert_events([event(b, 1)]) == [2]


def test_integrity_error_names_a_text_originator(tmp_path: Path) -> None:
    recorder = SqliteRecorder(str(tmp_path / "t.db"), originator_id_type="text")
    recorder.insert_events([event("dog-1", 1)])
    with pytest.raises(IntegrityError, match=r'originator_id "dog-1" version 1'):
        recorder.insert_events([event("dog-1", 1)])


# originator ids


def test_uuid_ids_are_stored_as_hex_and_read_back_as_uuids(tmp_path: Path) -> None:
    path = tmp_path / "u.db"
    recorder = SqliteRecorder(str(path))
    a = uuid4()
    recorder.insert_events([event(a, 1)])
    assert sqlite3_rows(path, "SELECT originator_id FROM stored_events") == [(a.hex,)]
    (n,) = recorder.select_notifications(None, 10)
    (e,) = recorder.select_events(a)
    for got in (n.originator_id, e.originator_id):
        assert type(got) is UUID
        assert got == a and hash(got) == hash(a) and str(got) == str(a)
        assert got.version == a.version and got.is_safe == a.is_safe
        assert pickle.loads(pickle.dumps(got)) == a


def test_uuid_ids_given_as_strings_are_the_same_originator(
    recorder: SqliteRecorder,
) -> None:
    a = uuid4()
    recorder.insert_events([event(str(a), 1)])
    recorder.insert_events([event(a.hex.upper(), 2)])
    with pytest.raises(IntegrityError):
        recorder.insert_events([event(a, 1)])
    selected = recorder.select_events(str(a))
    assert [(e.originator_id, e.originator_version) for e in selected] == [
        (a, 1),
        (a, 2),
    ]


def test_uuid_type_rejects_strings_that_are_not_uuids(recorder: SqliteRecorder) -> None:
    with pytest.raises(DataError, match="ORIGINATOR_ID_TYPE=text"):
        recorder.insert_events([event("dog-1", 1)])
    with pytest.raises(DataError, match="not a UUID"):
        recorder.select_events("dog-1")


def test_text_ids_are_read_back_as_str(db_name: str) -> None:
    recorder = SqliteRecorder(db_name, originator_id_type="text")
    a = uuid4()
    recorder.insert_events([event("dog-1", 1), event("dög-2", 1), event(a, 1)])
    assert [e.originator_id for e in recorder.select_events("dog-1")] == ["dog-1"]
    assert [n.originator_id for n in recorder.select_notifications(1, 10)] == [
        "dog-1",
        "dög-2",
        a.hex,  # as eventsourcing stores a UUID
    ]
    assert recorder.select_events(a)[0].originator_id == a.hex
    assert recorder.select_events(a.hex)[0].originator_id == a.hex


def test_stored_text_that_is_not_a_uuid_is_a_data_error(tmp_path: Path) -> None:
    path = str(tmp_path / "x.db")
    SqliteRecorder(path, originator_id_type="text").insert_events([event("dog", 1)])
    with pytest.raises(DataError, match=r"notification 1 .*\"dog\".*not a UUID"):
        SqliteRecorder(path).select_notifications(1, 10)


def test_originator_id_type_must_be_uuid_or_text(db_name: str) -> None:
    with pytest.raises(ValueError, match="originator_id_type"):
        SqliteRecorder(db_name, originator_id_type="int")


# insert with tracking


def test_insert_with_tracking_needs_a_tracking_table(db_name: str) -> None:
    recorder = SqliteRecorder(db_name)
    with pytest.raises(ProgrammingError, match="no tracking table"):
        recorder.insert_events([event(uuid4(), 1)], tracking=Tracking("up", 1))
    assert recorder.max_notification_id() is None


# snapshots: an aggregate recorder without notification ids


def test_snapshot_recorder_uses_a_without_rowid_table_and_returns_no_ids(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    recorder = SqliteRecorder(str(path), "stored_snapshots", notifications=False)
    a = uuid4()
    assert recorder.insert_events([event(a, 1), event(a, 5)]) is None
    assert recorder.insert_events([]) is None
    assert [e.originator_version for e in recorder.select_events(a, desc=True)] == [
        5,
        1,
    ]
    with pytest.raises(IntegrityError, match="version 5"):
        recorder.insert_events([event(a, 5)])
    with pytest.raises(ProgrammingError, match="keeps no notifications"):
        recorder.select_notifications(1, 10)
    ((sql,),) = sqlite3_rows(
        path, "SELECT sql FROM sqlite_master WHERE name='stored_snapshots'"
    )
    assert sql.endswith("WITHOUT ROWID")
    assert not recorder.keeps_notifications


# tracking


def test_tracking_table_has_one_row_per_application_like_eventsourcing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.db"
    recorder = SqliteRecorder(str(path), None, tracking=True)
    recorder.insert_tracking(Tracking("up", 1))
    recorder.insert_tracking(Tracking("up", 2))
    assert sorted(sqlite3_rows(path, "SELECT * FROM tracking")) == [
        ("__migration__", 1),
        ("up", 2),
    ]


def test_tracking_only_recorder_has_no_events_table(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    recorder = SqliteRecorder(str(path), None, tracking=True)
    with pytest.raises(ProgrammingError, match="no events table"):
        recorder.insert_events([event(uuid4(), 1)])
    tables = sqlite3_rows(path, "SELECT name FROM sqlite_master WHERE type='table'")
    assert tables == [("tracking",)]
    with pytest.raises(ValueError, match="tracking=True"):
        SqliteRecorder(str(path), None)


def test_tracking_recorder_needs_a_tracking_table(db_name: str) -> None:
    recorder = SqliteRecorder(db_name)
    with pytest.raises(ProgrammingError, match="no tracking table"):
        recorder.insert_tracking(Tracking("up", 1))


def test_old_tracking_table_with_a_row_per_notification_is_migrated(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    sqlite3_script(
        path,
        "CREATE TABLE tracking (application_name TEXT, notification_id INTEGER, "
        "PRIMARY KEY (application_name, notification_id)) WITHOUT ROWID; "
        "INSERT INTO tracking VALUES ('up', 1), ('up', 7), ('b', 2);",
    )
    recorder = SqliteRecorder(str(path), tracking=True)
    assert recorder.max_tracking_id("up") == 7
    assert recorder.max_tracking_id("b") == 2
    recorder.insert_tracking(Tracking("up", 8))
    assert recorder.max_tracking_id("up") == 8


# waiting


def insert_later(
    recorder: SqliteRecorder, delay: float, **kwargs: object
) -> threading.Timer:
    timer = threading.Timer(
        delay, recorder.insert_events, args=([event(uuid4(), 1)],), kwargs=kwargs
    )
    timer.start()
    return timer


def test_wait_for_notification_sees_another_connection_to_the_file(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "w.db")
    waiter, writer = SqliteRecorder(path), SqliteRecorder(path)
    timer = insert_later(writer, 0.05)
    try:
        assert waiter.wait_for_notification(0, 30.0)
    finally:
        timer.join()


def test_wait_for_tracking_is_woken_by_insert_tracking(db_name: str) -> None:
    database = SqliteDatabase(db_name)
    tracking = SqliteRecorder(database, None, tracking=True)
    timer = threading.Timer(0.05, tracking.insert_tracking, args=(Tracking("up", 9),))
    timer.start()
    try:
        assert SqliteRecorder(database, None, tracking=True).wait_for_tracking(
            "up", 5, 30.0
        )
    finally:
        timer.join()


# database options and errors


def test_files_use_wal_mode_and_full_synchronous_by_default(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    recorder = SqliteRecorder(str(path))
    assert sqlite3_rows(path, "PRAGMA journal_mode") == [("wal",)]
    assert recorder.database.synchronous == "FULL"
    assert recorder.database.lock_timeout == 5.0
    normal = SqliteDatabase(str(tmp_path / "n.db"), synchronous="normal")
    assert normal.synchronous == "NORMAL"
    with pytest.raises(ValueError, match="synchronous"):
        SqliteDatabase(str(tmp_path / "x.db"), synchronous="OFF")
    with pytest.raises(ValueError, match="lock_timeout"):
        SqliteDatabase(str(tmp_path / "x.db"), lock_timeout=-1)


def test_memory_database_is_one_database_for_all_threads() -> None:
    recorder = SqliteRecorder(":memory:")
    thread = threading.Thread(
        target=recorder.insert_events, args=([event(uuid4(), 1)],)
    )
    thread.start()
    thread.join()
    assert recorder.max_notification_id() == 1
    assert recorder.database.is_memory


def test_shared_cache_memory_uri_is_one_database() -> None:
    database = SqliteDatabase("file::memory:?cache=shared")
    events = SqliteRecorder(database)
    events.insert_events([event(uuid4(), 1)])
    assert SqliteRecorder(database).max_notification_id() == 1
    database.close()


def test_lock_timeout_bounds_the_wait_for_another_writer(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    recorder = SqliteRecorder(str(path), lock_timeout=0.2)
    # Another process holds the write lock until told to commit.
    blocker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "conn.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "conn.execute('COMMIT')\n",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert blocker.stdout is not None and blocker.stdin is not None
        assert blocker.stdout.readline() == "locked\n"
        started = time.monotonic()
        with pytest.raises(OperationalError, match=r"locked.*SQLITE_BUSY"):
            recorder.insert_events([event(uuid4(), 1)])
        assert 0.15 < time.monotonic() - started < 3
        # A writer that finishes within the timeout is waited for.
        patient = SqliteRecorder(str(path), lock_timeout=30)
        stdin = blocker.stdin
        timer = threading.Timer(0.2, lambda: (stdin.write("go\n"), stdin.flush()))
        timer.start()
        started = time.monotonic()
        assert patient.insert_events([event(uuid4(), 1)]) == [1]
        assert time.monotonic() - started > 0.1
        timer.join()
    finally:
        blocker.kill()
        blocker.wait()
        for pipe in (blocker.stdin, blocker.stdout):
            if pipe is not None:
                pipe.close()


def test_create_table_false_creates_nothing_until_asked(db_name: str) -> None:
    database = SqliteDatabase(db_name)
    recorder = SqliteRecorder(database, tracking=True, create_table=False)
    with pytest.raises(ProgrammingError, match="no such table: stored_events"):
        recorder.max_notification_id()
    with pytest.raises(ProgrammingError, match="no such table: tracking"):
        recorder.max_tracking_id("up")
    recorder.create_table()
    recorder.create_table()
    assert recorder.max_notification_id() is None
    assert recorder.max_tracking_id("up") is None


def test_custom_events_table_name(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    recorder = SqliteRecorder(str(path), "my_events")
    recorder.insert_events([event(uuid4(), 1)])
    assert sqlite3_rows(path, "SELECT COUNT(*) FROM my_events") == [(1,)]
    assert recorder.events_table == "my_events"
    with pytest.raises(ValueError, match="not a valid table name"):
        SqliteRecorder(str(path), "events; DROP TABLE my_events")


def test_corrupt_file_is_a_data_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not an SQLite database file" * 200)
    with pytest.raises(DataError, match=rf"{path}.*not a database"):
        SqliteRecorder(str(path))


def test_read_only_database_reads_but_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    SqliteRecorder(str(path)).insert_events([event(uuid4(), 1)])
    read_only = SqliteRecorder(f"file:{path}?mode=ro")
    assert read_only.max_notification_id() == 1
    with pytest.raises(OperationalError, match=r"readonly.*SQLITE_READONLY"):
        read_only.insert_events([event(uuid4(), 1)])
    with pytest.raises(OperationalError, match=r"creating tables.*SQLITE_READONLY"):
        SqliteRecorder(f"file:{path}?mode=ro", tracking=True)


def test_unopenable_path_is_an_operational_error(tmp_path: Path) -> None:
    with pytest.raises(OperationalError, match=r"opening database .*missing"):
        SqliteRecorder(str(tmp_path / "missing" / "dir" / "x.db"))


def test_closed_recorder_and_database_raise_interface_error(db_name: str) -> None:
    recorder = SqliteRecorder(db_name)
    recorder.close()
    recorder.close()
    with pytest.raises(InterfaceError, match="closed"):
        recorder.max_notification_id()
    assert recorder.database.closed
    database = SqliteDatabase(db_name)
    shared = SqliteRecorder(database)
    SqliteRecorder(database).close()  # does not close a shared database
    assert shared.max_notification_id() is None
    database.close()
    with pytest.raises(InterfaceError, match="closed"):
        shared.insert_events([event(uuid4(), 1)])


def test_database_options_belong_to_the_shared_database(db_name: str) -> None:
    with pytest.raises(TypeError, match="shared SqliteDatabase"):
        SqliteRecorder(SqliteDatabase(db_name), lock_timeout=1.0)
    with pytest.raises(TypeError, match="path"):
        SqliteRecorder(42)  # type: ignore[arg-type]


# concurrency: threads and processes


def insert_batches(
    path: str, name: str, batches: int, batch_size: int
) -> list[list[int]]:
    recorder = SqliteRecorder(path, originator_id_type="text")
    results = []
    for b in range(batches):
        versions = range(b * batch_size + 1, (b + 1) * batch_size + 1)
        ids = recorder.insert_events(stream(name, versions))
        assert ids is not None
        results.append(ids)
    recorder.close()
    return results


def check_batches(
    path: str, results: dict[str, list[list[int]]], batch_size: int
) -> None:
    """Nothing lost or duplicated; ids contiguous overall and per batch."""
    total = sum(len(ids) for batches in results.values() for ids in batches)
    all_ids = sorted(i for batches in results.values() for ids in batches for i in ids)
    assert all_ids == list(range(1, total + 1))
    for batches in results.values():
        for ids in batches:
            assert ids == list(range(ids[0], ids[0] + batch_size))
    recorder = SqliteRecorder(path, originator_id_type="text")
    notifications = recorder.select_notifications(1, total + 1)
    assert [n.id for n in notifications] == list(range(1, total + 1))
    for name, batches in results.items():
        count = len(batches) * batch_size
        selected = recorder.select_events(name)
        assert [e.originator_version for e in selected] == list(range(1, count + 1))
        ids = [i for ids in batches for i in ids]
        assert {notifications[i - 1].originator_id for i in ids} == {name}


def test_threads_inserting_into_one_file_lose_and_duplicate_nothing(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "threads.db")
    SqliteRecorder(path)
    threads, batches, batch_size = 10, 100, 10
    results: dict[str, list[list[int]]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work(name: str) -> None:
        try:
            barrier.wait()
            results[name] = insert_batches(path, name, batches, batch_size)
        except BaseException as e:  # reported below
            errors.append(e)

    workers = [
        threading.Thread(target=work, args=(f"thread-{t}",)) for t in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    check_batches(path, results, batch_size)


def test_threads_sharing_one_recorder_lose_and_duplicate_nothing(db_name: str) -> None:
    recorder = SqliteRecorder(db_name, originator_id_type="text")
    threads, batches, batch_size = 8, 50, 10
    results: dict[str, list[list[int]]] = {f"t{t}": [] for t in range(threads)}

    def work(name: str) -> None:
        for b in range(batches):
            versions = range(b * batch_size + 1, (b + 1) * batch_size + 1)
            results[name].append(recorder.insert_events(stream(name, versions)) or [])
            recorder.select_notifications(None, 100)

    workers = [threading.Thread(target=work, args=(name,)) for name in results]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    all_ids = sorted(i for batches in results.values() for ids in batches for i in ids)
    assert all_ids == list(range(1, threads * batches * batch_size + 1))


def process_worker(
    path: str, name: str, batches: int, batch_size: int, queue: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    try:
        queue.put((name, insert_batches(path, name, batches, batch_size)))
    except BaseException as e:
        queue.put((name, repr(e)))


def test_processes_inserting_into_one_file_lose_and_duplicate_nothing(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "processes.db")
    SqliteRecorder(path)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes, batches, batch_size = 4, 100, 10
    workers = [
        context.Process(
            target=process_worker, args=(path, f"p{p}", batches, batch_size, queue)
        )
        for p in range(processes)
    ]
    results = dict(results_of(workers, queue, timeout=120))
    failed = {name: r for name, r in results.items() if isinstance(r, str)}
    assert failed == {}
    check_batches(path, results, batch_size)


def write_forever(path: str, prefix: str, batch_size: int) -> None:
    recorder = SqliteRecorder(path, originator_id_type="text")
    insert_batches_until_killed(recorder, prefix, batch_size, os.urandom(2000))


def test_writer_killed_mid_write_leaves_no_partial_batch(tmp_path: Path) -> None:
    path = str(tmp_path / "killed.db")
    recorder = SqliteRecorder(path, originator_id_type="text")
    batch_size = 50
    context = multiprocessing.get_context("spawn")
    total = 0
    for round_ in range(3):
        writer = context.Process(
            target=write_forever, args=(path, f"round{round_}", batch_size)
        )
        with killed_at_the_end(writer):
            assert recorder.wait_for_notification(total + 20 * batch_size, 60.0)
        assert writer.exitcode == -signal.SIGKILL

        assert sqlite3_rows(path, "PRAGMA integrity_check") == [("ok",)]
        new_total = recorder.max_notification_id()
        assert new_total is not None and new_total % batch_size == 0
        counts = sqlite3_rows(
            path,
            "SELECT originator_id, COUNT(*) FROM stored_events GROUP BY originator_id",
        )
        assert {count for _, count in counts} == {batch_size}
        assert len(counts) * batch_size == new_total
        assert new_total > total
        total = new_total
    # The file opens cleanly and is writable at once.
    reopened = SqliteRecorder(path, originator_id_type="text")
    assert reopened.insert_events([event("after", 1)]) == [total + 1]


# compatibility with eventsourcing's SQLite module


def test_file_written_by_eventsourcing_is_read_by_esox(tmp_path: Path) -> None:
    from eventsourcing import persistence as es
    from eventsourcing import sqlite as es_sqlite

    path = str(tmp_path / "es.db")
    datastore = es_sqlite.SQLiteDatastore(path)
    es_recorder = es_sqlite.SQLiteProcessRecorder(datastore)
    es_recorder.create_table()
    es_snapshots = es_sqlite.SQLiteAggregateRecorder(datastore, "stored_snapshots")
    es_snapshots.create_table()
    a, b = uuid4(), uuid4()
    es_recorder.insert_events(
        [es.StoredEvent(a, 1, "m:A", b"1"), es.StoredEvent(b, 1, "m:B", b"2")],
        tracking=es.Tracking("up", 4),
    )
    es_recorder.insert_events([es.StoredEvent(a, 2, "m:A", b"3")])
    es_snapshots.insert_events([es.StoredEvent(a, 2, "m:S", b"snap")])
    datastore.close()

    recorder = SqliteRecorder(path, tracking=True)
    assert recorder.select_notifications(1, 10) == [
        Notification(a, 1, "m:A", b"1", 1),
        Notification(b, 1, "m:B", b"2", 2),
        Notification(a, 2, "m:A", b"3", 3),
    ]
    assert [e.state for e in recorder.select_events(a)] == [b"1", b"3"]
    assert recorder.max_tracking_id("up") == 4
    snapshots = SqliteRecorder(path, "stored_snapshots", notifications=False)
    assert snapshots.select_events(a) == [StoredEvent(a, 2, "m:S", b"snap")]
    assert recorder.insert_events([event(b, 2)], tracking=Tracking("up", 5)) == [4]


def test_file_written_by_esox_is_read_by_eventsourcing(tmp_path: Path) -> None:
    from eventsourcing import persistence as es
    from eventsourcing import sqlite as es_sqlite

    path = str(tmp_path / "esox.db")
    with SQLiteFactory({"SQLITE_DBNAME": path}) as factory:
        recorder = factory.process_recorder()
        snapshots = factory.aggregate_recorder("snapshots")
        a = uuid4()
        recorder.insert_events(
            [event(a, 1, "m:A"), event(a, 2, "m:B")], tracking=Tracking("up", 3)
        )
        snapshots.insert_events([StoredEvent(a, 2, "m:S", b"snap")])

    datastore = es_sqlite.SQLiteDatastore(path)
    es_recorder = es_sqlite.SQLiteProcessRecorder(datastore)
    es_recorder.create_table()
    notifications = es_recorder.select_notifications(1, 10)
    assert [
        (n.id, n.originator_id, n.originator_version, n.topic, n.state)
        for n in notifications
    ] == [
        (1, a, 1, "m:A", b"state 1"),
        (2, a, 2, "m:B", b"state 2"),
    ]
    assert es_recorder.max_tracking_id("up") == 3
    es_recorder.insert_tracking(es.Tracking("up", 4))
    es_snapshots = es_sqlite.SQLiteAggregateRecorder(datastore, "stored_snapshots")
    es_snapshots.create_table()
    (snapshot,) = es_snapshots.select_events(a)
    assert (snapshot.originator_id, snapshot.topic, snapshot.state) == (
        a,
        "m:S",
        b"snap",
    )
    datastore.close()
    # eventsourcing found the one-row-per-application tracking table: no migration.
    tables = {name for (name,) in sqlite3_rows(path, "SELECT name FROM sqlite_master")}
    assert "old1_tracking" not in tables
    assert SqliteRecorder(path, tracking=True).max_tracking_id("up") == 4


# the persistence module and its factory


def test_persistence_module_recorders_are_the_abstract_recorders(
    tmp_path: Path,
) -> None:
    from esox.persistence import (
        AggregateRecorder,
        ApplicationRecorder,
        ProcessRecorder,
        TrackingRecorder,
    )

    path = str(tmp_path / "m.db")
    snapshots = SQLiteAggregateRecorder(path, "stored_snapshots")
    assert (
        isinstance(snapshots, AggregateRecorder) and not snapshots.keeps_notifications
    )
    assert isinstance(SQLiteApplicationRecorder(path), ApplicationRecorder)
    tracking = SQLiteTrackingRecorder(path)
    assert isinstance(tracking, TrackingRecorder) and tracking.events_table is None
    process = SQLiteProcessRecorder(path)
    assert isinstance(process, ProcessRecorder) and process.has_tracking
    tracking.insert_tracking(Tracking("up", 2))
    tracking.wait("up", 2, timeout=1.0)
    with pytest.raises(TimeoutError):
        tracking.wait("up", 3, timeout=0.05)


def test_factory_is_constructed_from_persistence_module(tmp_path: Path) -> None:
    path = str(tmp_path / "f.db")
    for module in ("esox.sqlite", "eventsourcing.sqlite"):
        factory = InfrastructureFactory.construct(
            {"PERSISTENCE_MODULE": module, "SQLITE_DBNAME": path}
        )
        assert type(factory) is SQLiteFactory
        factory.close()


def test_factory_recorders_share_one_memory_database() -> None:
    with SQLiteFactory({"SQLITE_DBNAME": ":memory:"}) as factory:
        application = factory.application_recorder()
        process = factory.process_recorder()
        tracking = factory.tracking_recorder()
        a = uuid4()
        application.insert_events([event(a, 1)])
        factory.aggregate_recorder("snapshots").insert_events([event(a, 1)])
        process.insert_events([event(a, 2)], tracking=Tracking("up", 1))
        assert [n.id for n in process.select_notifications(1, 10)] == [1, 2]
        assert tracking.max_tracking_id("up") == 1
        assert len(factory.aggregate_recorder("snapshots").select_events(a)) == 1
    with pytest.raises(InterfaceError):
        application.max_notification_id()


def test_factory_aggregate_recorder_uses_table_named_for_its_purpose(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.db"
    with SQLiteFactory({"SQLITE_DBNAME": str(path)}) as factory:
        recorder = factory.aggregate_recorder("snapshots")
        assert recorder.events_table == "stored_snapshots"  # type: ignore[attr-defined]
        recorder.insert_events([event(uuid4(), 1)])
    assert sqlite3_rows(path, "SELECT COUNT(*) FROM stored_snapshots") == [(1,)]


def test_factory_requires_a_database_name_and_names_the_keys() -> None:
    with pytest.raises(InfrastructureFactoryError, match="SQLITE_DBNAME"):
        SQLiteFactory({})
    env = Environment(name="Bank", env={})
    with pytest.raises(
        InfrastructureFactoryError, match="BANK_SQLITE_DBNAME, SQLITE_DBNAME"
    ):
        SQLiteFactory(env)


def test_factory_prefers_the_application_prefixed_keys(tmp_path: Path) -> None:
    env = Environment(
        name="bank",
        env={"SQLITE_DBNAME": str(tmp_path / "x.db"), "BANK_SQLITE_DBNAME": ":memory:"},
    )
    with SQLiteFactory(env) as factory:
        assert factory.database.path == ":memory:"


@pytest.mark.parametrize(
    ("value", "seconds"), [("3", 3.0), ("0.25", 0.25), (" 2 ", 2.0), ("", 5.0)]
)
def test_factory_reads_lock_timeout_as_int_or_float(value: str, seconds: float) -> None:
    env = {"SQLITE_DBNAME": ":memory:", "SQLITE_LOCK_TIMEOUT": value}
    with SQLiteFactory(env) as factory:
        assert factory.database.lock_timeout == seconds


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_factory_rejects_an_invalid_lock_timeout_naming_it(value: str) -> None:
    env = {"SQLITE_DBNAME": ":memory:", "SQLITE_LOCK_TIMEOUT": value}
    with pytest.raises(
        InfrastructureFactoryError, match=f"SQLITE_LOCK_TIMEOUT='{value}'"
    ):
        SQLiteFactory(env)


def test_factory_reads_synchronous(tmp_path: Path) -> None:
    for value, expected in (("NORMAL", "NORMAL"), ("full", "FULL"), ("", "FULL")):
        env = {"SQLITE_DBNAME": str(tmp_path / "s.db"), "SQLITE_SYNCHRONOUS": value}
        with SQLiteFactory(env) as factory:
            assert factory.database.synchronous == expected
    with pytest.raises(InfrastructureFactoryError, match="SQLITE_SYNCHRONOUS='OFF'"):
        SQLiteFactory({"SQLITE_DBNAME": ":memory:", "SQLITE_SYNCHRONOUS": "OFF"})


def test_factory_reads_originator_id_type() -> None:
    env = {"SQLITE_DBNAME": ":memory:", "ORIGINATOR_ID_TYPE": "text"}
    with SQLiteFactory(env) as factory:
        recorder = factory.application_recorder()
        recorder.insert_events([event("dog-1", 1)])
        assert recorder.select_notifications(1, 1)[0].originator_id == "dog-1"
    with pytest.raises(InfrastructureFactoryError, match="ORIGINATOR_ID_TYPE='int'"):
        SQLiteFactory({"SQLITE_DBNAME": ":memory:", "ORIGINATOR_ID_TYPE": "int"})


def test_factory_create_table_no_leaves_the_database_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    with SQLiteFactory({"SQLITE_DBNAME": str(path), "CREATE_TABLE": "no"}) as factory:
        factory.application_recorder()
        factory.process_recorder()
        factory.tracking_recorder()
        factory.aggregate_recorder("snapshots")
    assert sqlite3_rows(path, "SELECT name FROM sqlite_master") == []
    with pytest.raises(InfrastructureFactoryError, match="CREATE_TABLE='maybe'"):
        SQLiteFactory({"SQLITE_DBNAME": ":memory:", "CREATE_TABLE": "maybe"})


def test_factory_tracking_recorder_of_a_given_class() -> None:
    class ViewRecorder(SQLiteTrackingRecorder):
        pass

    with SQLiteFactory({"SQLITE_DBNAME": ":memory:"}) as factory:
        assert type(factory.tracking_recorder(ViewRecorder)) is ViewRecorder
        # As in eventsourcing, a process recorder is a tracking recorder.
        assert type(factory.tracking_recorder(SQLiteProcessRecorder)) is (
            SQLiteProcessRecorder
        )
        with pytest.raises(InfrastructureFactoryError, match="SQLiteTrackingRecorder"):
            factory.tracking_recorder(SQLiteApplicationRecorder)  # type: ignore[arg-type]


def test_application_on_sqlite_file_survives_a_restart(tmp_path: Path) -> None:
    from esox.examples.dogschool import DogSchool

    env = {"PERSISTENCE_MODULE": "esox.sqlite", "SQLITE_DBNAME": str(tmp_path / "d.db")}
    school = DogSchool(env=env)
    dog_id = school.register_dog("Fido")
    school.add_trick(dog_id, "roll over")
    school.close()
    school = DogSchool(env=env)
    assert school.get_dog(dog_id) == {"name": "Fido", "tricks": ("roll over",)}
    assert [n.id for n in school.notification_log.select(start=1, limit=10)] == [1, 2]
    school.close()
