"""Persistence behaviour that code written for eventsourcing relies on."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from psycopg.sql import SQL, Identifier

from esox.domain import HasOriginatorIDVersion
from esox.memory import (
    MemoryAggregateRecorder,
    MemoryApplicationRecorder,
    MemoryTrackingRecorder,
)
from esox.persistence import (
    AESCipher,
    CipherKeyError,
    InfrastructureFactory,
    InfrastructureFactoryError,
    IntegrityError,
    ProgrammingError,
    StoredEvent,
    Tracking,
    find_id_convertor,
    pass_through_convertor,
    str_to_uuid_convertor,
)
from esox.postgres import PostgresTrackingRecorder
from esox.sqlite import SQLiteTrackingRecorder
from esox.utils import Environment, get_topic
from tests.persistence_envs import persistence_env


class MyTrackingRecorder(SQLiteTrackingRecorder):
    pass


def stored(version: int = 1) -> StoredEvent:
    return StoredEvent(uuid4(), version, "topic", b"state")


def test_an_aggregate_recorder_numbers_no_notifications() -> None:
    assert MemoryAggregateRecorder().insert_events([stored()]) is None
    assert MemoryApplicationRecorder().insert_events([stored()]) == [1]


def test_a_missing_cipher_key_is_an_environment_error() -> None:
    with pytest.raises(EnvironmentError, match="CIPHER_KEY is not set"):
        AESCipher(Environment())
    assert issubclass(CipherKeyError, ValueError)


def test_tracking_recorder_topic_names_the_tracking_recorder_class() -> None:
    env = {"PERSISTENCE_MODULE": "esox.sqlite", "SQLITE_DBNAME": ":memory:"}
    env["TRACKING_RECORDER_TOPIC"] = get_topic(MyTrackingRecorder)
    with InfrastructureFactory.construct(env) as factory:
        assert type(factory.tracking_recorder()) is MyTrackingRecorder
    env["TRACKING_RECORDER_TOPIC"] = get_topic(MemoryAggregateRecorder)
    with (
        InfrastructureFactory.construct(env) as factory,
        pytest.raises(InfrastructureFactoryError, match="not a subclass"),
    ):
        factory.tracking_recorder()


class CountingView(MemoryTrackingRecorder):
    """An eventsourcing-style view: its own state and tracking, together."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def incr(self, tracking: Tracking) -> None:
        with self._database_lock:
            self._assert_tracking_uniqueness(tracking)
            self._insert_tracking(tracking)
            self.count += 1


def test_a_memory_view_updates_its_state_and_tracking_together() -> None:
    view = CountingView()
    view.incr(Tracking("upstream", 1))
    view.incr(Tracking("upstream", 2))
    with pytest.raises(IntegrityError, match="not greater than 2"):
        view.incr(Tracking("upstream", 2))
    assert (view.count, view.max_tracking_id("upstream")) == (2, 2)


def test_a_postgres_view_adds_tables_and_tracks_in_its_own_transaction(
    tmp_path: Path,
) -> None:
    with persistence_env("postgres", tmp_path, "counting") as env:
        env["PERSISTENCE_MODULE"] = "esox.postgres"
        with InfrastructureFactory.construct(Environment("counting", env)) as factory:
            view = factory.tracking_recorder(CountingPostgresView)
            assert isinstance(view, CountingPostgresView)
            view.incr(Tracking("upstream", 1))
            with pytest.raises(IntegrityError):
                view.incr(Tracking("upstream", 1))
            # The failed transaction left the counter as it was.
            assert view.counter() == 1
            assert view.max_tracking_id("upstream") == 1
            with pytest.raises(ProgrammingError, match="63 bytes"):
                view.check_identifier_length("x" * 64)


class CountingPostgresView(PostgresTrackingRecorder):
    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.counter_table = self.tracking_table_name.replace("_tracking", "_count")
        self.check_identifier_length(self.counter_table)
        table = SQL("{0}.{1}").format(
            Identifier(self.datastore.schema), Identifier(self.counter_table)
        )
        self.sql_create_statements.append(
            SQL("CREATE TABLE IF NOT EXISTS {0} (n bigint)").format(table)
        )
        self.sql_create_statements.append(SQL("TRUNCATE {0}").format(table))
        self.select = SQL("SELECT count(*) AS n FROM {0}").format(table)
        self.insert = SQL("INSERT INTO {0} VALUES (1)").format(table)

    def incr(self, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self.insert)
            self._insert_tracking(cursor, tracking)

    def counter(self) -> int:
        with self.datastore.transaction() as cursor:
            cursor.execute(self.select)
            row = cursor.fetchone()
            return int(row["n"]) if row else 0


def test_find_id_convertor_reads_the_id_type_of_an_event_class() -> None:
    class UUIDEvent(HasOriginatorIDVersion[UUID]):
        pass

    class Annotated:
        originator_id: str

    assert find_id_convertor(UUIDEvent, str) is str_to_uuid_convertor
    assert find_id_convertor(UUIDEvent, UUID) is pass_through_convertor
    assert find_id_convertor(Annotated, str) is pass_through_convertor
    uuid = uuid4()
    assert str_to_uuid_convertor(str(uuid)) == uuid
    with pytest.raises(TypeError, match="originator_id_type cannot be None"):
        find_id_convertor(HasOriginatorIDVersion, str)
    with pytest.raises(TypeError, match="have an originator_id annotation"):
        find_id_convertor(object, str)
