"""SQL extension points on PostgreSQL, as eventsourcing users write them:
``PostgresDatastore.transaction()`` / ``get_connection()``, ``sql_create_statements``
and an ``_insert_events(curs, ...)`` hook in recorder subclasses, run in the
inserting transaction; ``*_RECORDER_TOPIC`` and factory recorder classes.

Each test gets a fresh schema, dropped afterwards (tests/persistence_envs.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from esox._core import StoredEvent, Tracking
from esox.persistence import InfrastructureFactory
from esox.persistence.errors import (
    InfrastructureFactoryError,
    IntegrityError,
    ProgrammingError,
)
from esox.postgres import (
    PgStoredEvent,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
    PostgresProcessRecorder,
)
from esox.utils import Environment, get_topic
from tests.insert_hook_cases import InsertHookCases, event
from tests.persistence_envs import POSTGRES, postgres_datastore, postgres_schema


class NotedMixin:
    """Keeps a note per event in a table of its own, in the same transaction
    (``n`` numbers the notes in the order they were written)."""

    datastore: PostgresDatastore
    sql_create_statements: list[Any]

    def add_notes_table(self) -> None:
        self.notes = SQL("{0}.notes").format(Identifier(self.datastore.schema))
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {0} "
                "(originator_id text, note text, n serial)"
            ).format(self.notes)
        )

    def _insert_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> Sequence[int] | None:
        for stored in stored_events:
            curs.execute(
                SQL("INSERT INTO {0} VALUES (%s, %s)").format(self.notes),
                (str(stored.originator_id), kwargs.get("note", "")),
            )
        if kwargs.get("fail"):
            curs.execute("INSERT INTO nowhere VALUES (1)")
        if "pause" in kwargs:
            entered, release = kwargs["pause"]
            entered.set()
            release.wait(10)
        ids: Sequence[int] | None = super()._insert_events(  # type: ignore[misc]
            curs, stored_events, **kwargs
        )
        return ids


class NotedRecorder(NotedMixin, PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.add_notes_table()


class NotedProcessRecorder(NotedMixin, PostgresProcessRecorder):
    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.add_notes_table()


@pytest.fixture
def datastore() -> Iterator[PostgresDatastore]:
    with postgres_schema() as schema, postgres_datastore(schema, pool_size=2) as store:
        yield store


def notes(datastore: PostgresDatastore) -> list[tuple[str, str]]:
    with datastore.transaction(commit=False) as curs:
        curs.execute(
            SQL("SELECT originator_id, note FROM {0}.notes ORDER BY n").format(
                Identifier(datastore.schema)
            )
        )
        return [(row["originator_id"], row["note"]) for row in curs.fetchall()]


class TestInsertHook(InsertHookCases):
    missing_table_error = ProgrammingError
    missing_table_message = "nowhere"

    def noted_recorder(self, datastore: PostgresDatastore) -> NotedRecorder:
        recorder = NotedRecorder(datastore, events_table_name="noted_events")
        recorder.create_table()
        return recorder

    def notes(self, datastore: PostgresDatastore) -> list[tuple[str, str]]:
        return notes(datastore)

    def check_writers_go_on_after_a_failed_hook(
        self, datastore: PostgresDatastore, recorder: Any, stored: StoredEvent
    ) -> None:
        # The insert lock was released: another session takes it at once.
        with datastore.transaction() as curs:
            curs.execute(
                "SELECT pg_try_advisory_xact_lock(%s) AS free", (recorder.lock_key,)
            )
            row = curs.fetchone()
            assert row is not None
            assert row["free"] is True
        # The native insert (another recorder of the table) is not held up.
        plain = PostgresApplicationRecorder(
            datastore, events_table_name=recorder.events_table_name
        )
        assert plain.insert_events([stored]) == [1]


def test_recorders_without_a_hook_keep_the_native_insert() -> None:
    native = PostgresApplicationRecorder.insert_events
    assert native.__qualname__ == "PostgresApplicationRecorder.insert_events"
    hooked = PostgresApplicationRecorder._insert_events_in_transaction
    assert NotedRecorder.insert_events is hooked
    assert NotedProcessRecorder.insert_events is hooked

    class Plain(PostgresApplicationRecorder):
        pass

    class PlainProcess(PostgresProcessRecorder):
        pass

    assert Plain.insert_events is native
    assert PlainProcess.insert_events is PostgresProcessRecorder.insert_events
    assert PostgresProcessRecorder.insert_events is not hooked

    class Again(NotedRecorder):
        pass

    assert Again.insert_events is hooked


def test_a_process_hook_records_tracking_in_the_same_transaction(
    datastore: PostgresDatastore,
) -> None:
    recorder = NotedProcessRecorder(datastore)
    recorder.create_table()
    e1, e2 = event(), event()
    assert recorder.insert_events([e1], tracking=Tracking("up", 5), note="a") == [1]
    assert recorder.max_tracking_id("up") == 5
    with pytest.raises(IntegrityError, match="tracking already recorded"):
        recorder.insert_events([e2], tracking=Tracking("up", 5), note="b")
    # Nothing of the failed transaction: no event, no note.
    assert recorder.select_events(e2.originator_id) == []
    assert notes(datastore) == [(str(e1.originator_id), "a")]
    # Tracking alone (a policy that wrote rows of its own, no new events).
    assert recorder.insert_events([], tracking=Tracking("up", 6)) == []
    assert recorder.max_tracking_id("up") == 6
    assert recorder.wait_for_tracking("up", 6, timeout=1.0)
    with pytest.raises(TypeError, match="tracking must be a Tracking"):
        recorder.insert_events([e2], tracking=("up", 7))  # type: ignore[arg-type]
    hooked_app = NotedRecorder(datastore)
    with pytest.raises(ProgrammingError, match="does not record tracking"):
        hooked_app.insert_events([e2], tracking=Tracking("up", 7))


def test_a_hook_holds_the_insert_lock_so_ids_follow_transaction_ids(
    datastore: PostgresDatastore,
) -> None:
    """The hook's own writes give its transaction an id; so the insert lock
    is taken before the hook runs, and a native writer that comes meanwhile
    draws its ids (and transaction id) after it: readers never skip one."""
    recorder = NotedRecorder(datastore)
    recorder.create_table()
    plain = PostgresApplicationRecorder(datastore)
    entered, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def hooked() -> None:
        results["hooked"] = recorder.insert_events(
            [event()], note="slow", pause=(entered, release)
        )

    def native() -> None:
        results["native"] = plain.insert_events([event()])

    first = threading.Thread(target=hooked)
    first.start()
    assert entered.wait(10)
    second = threading.Thread(target=native)
    second.start()
    second.join(0.3)
    # The native writer waits for the lock the hook's transaction holds.
    assert second.is_alive()
    assert plain.max_notification_id() is None
    release.set()
    first.join(10)
    second.join(10)
    assert results == {"hooked": [1], "native": [2]}
    with datastore.transaction() as curs:
        curs.execute(
            SQL(
                "SELECT notification_id, transaction_id::text::bigint AS x "
                "FROM {0}.stored_events ORDER BY notification_id"
            ).format(Identifier(datastore.schema))
        )
        rows = curs.fetchall()
    assert [r["notification_id"] for r in rows] == [1, 2]
    assert rows[0]["x"] < rows[1]["x"]


def test_a_hook_on_a_table_without_transaction_ids_holds_the_lock_to_commit(
    datastore: PostgresDatastore,
) -> None:
    """An older table (CREATE_TABLE=no over eventsourcing's layout): the
    serialised form, a transaction-level lock held through the COMMIT."""
    NotedRecorder(datastore).create_table()
    with datastore.transaction(commit=True) as curs:
        curs.execute(
            SQL("ALTER TABLE {0}.stored_events DROP COLUMN transaction_id").format(
                Identifier(datastore.schema)
            )
        )
    recorder = NotedRecorder(datastore)
    assert not recorder.horizon
    assert recorder.insert_events([event(), event()], note="old") == [1, 2]
    with pytest.raises(ProgrammingError, match="nowhere"):
        recorder.insert_events([event()], fail=True)
    # Released with the rollback: the native insert goes on.
    assert PostgresApplicationRecorder(datastore).insert_events([event()]) == [3]
    assert len(notes(datastore)) == 2


def test_get_connection_and_transaction_give_dict_rows_and_esox_errors(
    datastore: PostgresDatastore,
) -> None:
    recorder = PostgresApplicationRecorder(datastore)
    recorder.create_table()
    with datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute("SELECT 1 AS one")
        assert curs.fetchall() == [{"one": 1}]
    # esox's own statements still read tuples on the same pool connections.
    assert recorder.insert_events([event()]) == [1]
    assert recorder.max_notification_id() == 1
    with datastore.transaction(commit=True) as curs:
        curs.execute(
            SQL("CREATE TABLE {0}.t (x int PRIMARY KEY)").format(
                Identifier(datastore.schema)
            )
        )
    table = SQL("{0}.t").format(Identifier(datastore.schema))
    with datastore.transaction(commit=False) as curs:
        curs.execute(SQL("INSERT INTO {0} VALUES (1)").format(table))
    with (
        pytest.raises(IntegrityError, match="duplicate key"),
        datastore.transaction(commit=True) as curs,
    ):
        curs.execute(SQL("INSERT INTO {0} VALUES (2), (2)").format(table))
    with (
        pytest.raises(ProgrammingError, match="syntax error"),
        datastore.get_connection() as conn,
    ):
        conn.execute("SEL___ECT 1")
    with datastore.transaction() as curs:
        curs.execute(SQL("SELECT count(*) AS n FROM {0}").format(table))
        row = curs.fetchone()
        assert row is not None
        assert row["n"] == 0  # the rolled back and the failed wrote nothing


def test_recorder_topics_and_factory_classes_choose_the_recorders() -> None:
    with postgres_schema() as schema:
        env = {
            **POSTGRES,
            "POSTGRES_SCHEMA": schema,
            "PERSISTENCE_MODULE": "esox.postgres",
        }
        env["APPLICATION_RECORDER_TOPIC"] = get_topic(NotedRecorder)
        env["PROCESS_RECORDER_TOPIC"] = get_topic(NotedProcessRecorder)
        with InfrastructureFactory.construct(Environment("Noted", env)) as factory:
            app = factory.application_recorder()
            assert type(app) is NotedRecorder
            assert app.insert_events([event()], note="x") == [1]  # tables created
            process = factory.process_recorder()
            assert type(process) is NotedProcessRecorder

        env["APPLICATION_RECORDER_TOPIC"] = get_topic(PostgresProcessRecorder)
        with InfrastructureFactory.construct(Environment("Noted", env)) as factory:
            assert type(factory.application_recorder()) is PostgresProcessRecorder
        env["APPLICATION_RECORDER_TOPIC"] = get_topic(PgStoredEvent)
        with (
            InfrastructureFactory.construct(Environment("Noted", env)) as factory,
            pytest.raises(InfrastructureFactoryError, match="not a subclass"),
        ):
            factory.application_recorder()
        env["APPLICATION_RECORDER_TOPIC"] = "nowhere.at.all:Recorder"
        with (
            InfrastructureFactory.construct(Environment("Noted", env)) as factory,
            pytest.raises(InfrastructureFactoryError, match="does not resolve"),
        ):
            factory.application_recorder()

        class NotedFactory(PostgresFactory):
            application_recorder_class = NotedRecorder

        del env["APPLICATION_RECORDER_TOPIC"]
        with NotedFactory(Environment("Other", env)) as factory:
            assert type(factory.application_recorder()) is NotedRecorder
            assert factory.env_create_table()
