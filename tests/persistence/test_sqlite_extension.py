"""SQL extension points on SQLite, as eventsourcing users write them:
``SQLiteDatastore.transaction()``, ``construct_create_table_statements()`` and
``_insert_events(c, ...)`` in recorder subclasses, on the recorders' own
(Rust) connections."""

from __future__ import annotations

import datetime
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from esox.persistence import (
    IntegrityError,
    MissingTableError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
    Tracking,
)
from esox.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteProcessRecorder,
    SQLiteTransaction,
)
from tests.insert_hook_cases import InsertHookCases, event


class NotedRecorder(SQLiteApplicationRecorder):
    """Keeps a note per event in a table of its own, in the same transaction."""

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        statements.append(
            "CREATE TABLE IF NOT EXISTS notes (originator_id TEXT, note TEXT)"
        )
        return statements

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        for stored in stored_events:
            c.execute(
                "INSERT INTO notes VALUES (?, ?)",
                (str(stored.originator_id), kwargs.get("note", "")),
            )
        if kwargs.get("fail"):
            c.execute("INSERT INTO nowhere VALUES (1)")
        return ids


@pytest.fixture(params=["memory", "file"])
def datastore(request: pytest.FixtureRequest, tmp_path: Path) -> SQLiteDatastore:
    name = ":memory:" if request.param == "memory" else str(tmp_path / "ext.db")
    return SQLiteDatastore(name)


def notes(datastore: SQLiteDatastore) -> list[tuple[str, str]]:
    with datastore.transaction(commit=False) as c:
        c.execute("SELECT originator_id, note FROM notes ORDER BY rowid")
        return [(row["originator_id"], row[1]) for row in c.fetchall()]


class TestInsertHook(InsertHookCases):
    missing_table_error = OperationalError
    missing_table_message = "no such table: nowhere"

    def noted_recorder(self, datastore: SQLiteDatastore) -> NotedRecorder:
        recorder = NotedRecorder(datastore)
        recorder.create_table()
        return recorder

    def notes(self, datastore: SQLiteDatastore) -> list[tuple[str, str]]:
        return notes(datastore)

    def check_writers_go_on_after_a_failed_hook(
        self, datastore: SQLiteDatastore, recorder: Any, stored: StoredEvent
    ) -> None:
        # The connection is usable afterwards.
        assert recorder.insert_events([stored]) == [1]


def test_recorders_without_an_override_keep_the_native_insert() -> None:
    native = SQLiteApplicationRecorder.insert_events
    assert type(native).__name__ == "method_descriptor"
    assert NotedRecorder.insert_events is not native

    class Plain(SQLiteApplicationRecorder):
        pass

    assert Plain.insert_events is native


def test_a_recorder_on_a_datastore_creates_tables_only_when_asked() -> None:
    recorder = SQLiteApplicationRecorder(SQLiteDatastore(":memory:"))
    with pytest.raises(ProgrammingError, match="no such table: stored_events"):
        recorder.insert_events([event()])
    recorder.create_table()
    assert recorder.insert_events([event()]) == [1]
    # esox's own construction (from a path) creates them, as before.
    assert SQLiteApplicationRecorder(":memory:").insert_events([event()]) == [1]


def test_broken_create_table_statements_raise_and_create_nothing() -> None:
    datastore = SQLiteDatastore(":memory:")
    recorder = SQLiteApplicationRecorder(datastore)
    recorder.create_table_statements = [*recorder.create_table_statements, "BLAH"]
    with pytest.raises(OperationalError, match="BLAH"):
        recorder.create_table()
    with datastore.transaction(commit=False) as c:
        c.execute("SELECT name FROM sqlite_master")
        assert c.fetchall() == []


def test_process_recorder_subclass_inserts_tracking_in_the_same_transaction() -> None:
    class Process(SQLiteProcessRecorder):
        def _insert_events(
            self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
        ) -> Sequence[int] | None:
            ids = super()._insert_events(c, stored_events, **kwargs)
            c.execute("INSERT INTO seen VALUES (?)", [len(stored_events)])
            return ids

        def construct_create_table_statements(self) -> list[str]:
            return [
                *super().construct_create_table_statements(),
                "CREATE TABLE IF NOT EXISTS seen (n INTEGER)",
            ]

    recorder = Process(SQLiteDatastore(":memory:"))
    recorder.create_table()
    assert recorder.insert_events([event()], tracking=Tracking("up", 5)) == [1]
    assert recorder.max_tracking_id("up") == 5
    with pytest.raises(IntegrityError, match="tracking already recorded"):
        recorder.insert_events([event()], tracking=Tracking("up", 5))
    assert recorder.max_notification_id() == 1
    with recorder.datastore.transaction(commit=False) as c:
        c.execute("SELECT n FROM seen")
        assert [tuple(r) for r in c.fetchall()] == [(1,)]


def test_rows_are_indexed_by_position_and_column_name() -> None:
    datastore = SQLiteDatastore(":memory:")
    with datastore.transaction(commit=True) as c:
        c.execute("CREATE TABLE t (a INTEGER, b TEXT, c BLOB, d REAL, e)")
        c.executemany(
            "INSERT INTO t VALUES (:a, :b, :c, :d, :e)",
            [{"a": 1, "b": "x", "c": b"\x00", "d": 1.5, "e": None}],
        )
        assert c.rowcount == 1
        assert c.lastrowid == 1
    with datastore.transaction(commit=False) as c:
        c.execute("SELECT * FROM t WHERE a = ?", [1])
        row = c.fetchone()
        assert row is not None
        assert tuple(row) == (1, "x", b"\x00", 1.5, None)
        assert row["B"] == "x"
        assert row[-1] is None
        assert row.keys() == ["a", "b", "c", "d", "e"]
        assert len(row) == 5
        with pytest.raises(IndexError, match="No item with that key"):
            row["missing"]
        assert c.fetchone() is None


def test_registered_sqlite3_adapters_are_honoured() -> None:
    class Celsius:
        def __init__(self, degrees: float) -> None:
            self.degrees = degrees

    sqlite3.register_adapter(Celsius, lambda c: f"{c.degrees}C")
    # Python 3.12 deprecates sqlite3's default date adapter: register one.
    default_date = sqlite3.adapters.get((datetime.date, sqlite3.PrepareProtocol))
    sqlite3.register_adapter(datetime.date, datetime.date.isoformat)
    try:
        datastore = SQLiteDatastore(":memory:")
        when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
        with datastore.transaction(commit=True) as c:
            c.execute("CREATE TABLE t (x, y)")
            c.execute("INSERT INTO t VALUES (?, ?)", (Celsius(21.5), when.date()))
        with datastore.transaction(commit=False) as c:
            c.execute("SELECT x, y FROM t")
            # No converters run (as with eventsourcing's connections): text back.
            assert tuple(c.fetchall()[0]) == ("21.5C", "2024-01-02")
    finally:
        del sqlite3.adapters[(Celsius, sqlite3.PrepareProtocol)]
        if default_date is None:
            del sqlite3.adapters[(datetime.date, sqlite3.PrepareProtocol)]
        else:
            sqlite3.register_adapter(datetime.date, default_date)


def test_unsupported_parameters_are_refused_with_their_position() -> None:
    datastore = SQLiteDatastore(":memory:")
    with (
        pytest.raises(ProgrammingError, match="parameter 2: type 'object'"),
        datastore.transaction(commit=False) as c,
    ):
        c.execute("SELECT ?, ?", (1, object()))
    with (
        pytest.raises(ProgrammingError, match="uses 2, and there are 1"),
        datastore.transaction(commit=False) as c,
    ):
        c.execute("SELECT ?, ?", (1,))


def test_a_read_transaction_rolls_back_what_it_wrote() -> None:
    datastore = SQLiteDatastore(":memory:")
    with datastore.transaction(commit=True) as c:
        c.execute("CREATE TABLE t (x)")
    with datastore.transaction(commit=False) as c:
        c.execute("INSERT INTO t VALUES (1)")
    with datastore.transaction(commit=False) as c:
        c.execute("SELECT count(*) AS n FROM t")
        row = c.fetchone()
        assert row is not None
        assert row["n"] == 0


def test_a_cursor_cannot_be_used_after_its_transaction() -> None:
    datastore = SQLiteDatastore(":memory:")
    with datastore.transaction(commit=True) as c:
        pass
    with pytest.raises(ProgrammingError, match="has ended"):
        c.execute("SELECT 1")


def test_file_datastore_reports_wal_mode(tmp_path: Path) -> None:
    path = str(tmp_path / "wal.db")
    first = SQLiteDatastore(path)
    with first.transaction(commit=False):
        pass
    assert first.pool.is_journal_mode_wal
    assert first.pool.journal_mode_was_changed_to_wal
    first.close()
    again = SQLiteDatastore(path)
    with again.transaction(commit=False):
        pass
    assert again.pool.is_journal_mode_wal
    assert not again.pool.journal_mode_was_changed_to_wal
    again.close()


def test_sqlite3_errors_in_a_transaction_become_esox_errors() -> None:
    class Conn:
        committed = rolled_back = False

        db = sqlite3.connect(":memory:")

        def cursor(self) -> Any:
            return self.db.cursor()

        def commit(self) -> None:
            self.committed = True

        def rollback(self) -> None:
            self.rolled_back = True

    conn = Conn()
    with pytest.raises(IntegrityError), SQLiteTransaction(conn, commit=True):
        raise sqlite3.IntegrityError
    assert conn.rolled_back
    assert not conn.committed
    conn.db.close()


def test_a_missing_table_is_both_a_programming_and_an_operational_error() -> None:
    recorder = SQLiteApplicationRecorder(SQLiteDatastore(":memory:"))
    with pytest.raises(MissingTableError) as info:
        recorder.insert_events([])
    assert isinstance(info.value, ProgrammingError)
    assert isinstance(info.value, OperationalError)
    assert "stored_events" in str(info.value)


def test_threads_extending_inserts_do_not_interleave(tmp_path: Path) -> None:
    datastore = SQLiteDatastore(str(tmp_path / "threads.db"))
    recorder = NotedRecorder(datastore)
    recorder.create_table()
    failures: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for _ in range(20):
                recorder.insert_events([event(), event()], note=str(n))
        except BaseException as e:  # pragma: no cover - reported below
            failures.append(e)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert recorder.max_notification_id() == 160
    written = notes(datastore)
    assert len(written) == 160
    # Each insert's two notes are adjacent: no transaction saw another's rows.
    assert all(written[i][1] == written[i + 1][1] for i in range(0, 160, 2))


def test_esox_construction_creates_a_subclass_extra_tables_at_once(
    tmp_path: Path,
) -> None:
    # From a path (esox's API), the tables, the subclass's too, exist at once.
    path = str(tmp_path / "esox-way.db")
    recorder = NotedRecorder(path)
    assert recorder.insert_events([event()], note="now") == [1]
    with recorder.datastore.transaction(commit=False) as c:
        c.execute("SELECT note FROM notes")
        assert [row["note"] for row in c.fetchall()] == ["now"]
    recorder.close()
