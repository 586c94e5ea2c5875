"""eventsourcing's PostgresDatastore options and tracking-table layouts, as
esox's PostgreSQL module takes them, against a real server.

Each test gets a fresh schema, dropped afterwards (tests/persistence_envs.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import pytest

from esox._core import StoredEvent, Tracking
from esox.persistence.errors import (
    InfrastructureFactoryError,
    InternalError,
    NotSupportedError,
)
from esox.postgres import (
    PostgresDatastore,
    PostgresFactory,
    PostgresProcessRecorder,
    PostgresTrackingRecorder,
)
from esox.utils import Environment, get_topic
from tests.persistence_envs import (
    POSTGRES,
    admin,
    postgres_datastore,
)

PASSWORDS_GIVEN = itertools.count()


def password_from_a_vault() -> str:
    """A POSTGRES_GET_PASSWORD_TOPIC function: counts how often it is asked."""
    next(PASSWORDS_GIVEN)
    return POSTGRES["POSTGRES_PASSWORD"]


@pytest.fixture
def make_datastore(schema: str) -> Iterator[Callable[..., PostgresDatastore]]:
    datastores: list[PostgresDatastore] = []

    def make(**options: Any) -> PostgresDatastore:
        password = options.pop("password", POSTGRES["POSTGRES_PASSWORD"])
        datastore = postgres_datastore(schema, password=password, **options)
        datastores.append(datastore)
        return datastore

    yield make
    for datastore in datastores:
        datastore.close()


def factory_env(schema: str, **settings: str) -> Environment:
    return Environment("Test", {**POSTGRES, "POSTGRES_SCHEMA": schema, **settings})


# The datastore's connections for SQL of one's own


def test_get_connection_commits_a_transaction_the_block_began(
    make_datastore: Callable[..., PostgresDatastore], schema: str
) -> None:
    datastore = make_datastore(pool_size=1, max_overflow=0)
    with datastore.get_connection() as conn:
        conn.execute(f'CREATE TABLE "{schema}".notes (note text)')
        conn.execute("BEGIN")
        conn.execute(f"INSERT INTO \"{schema}\".notes VALUES ('kept')")
    with pytest.raises(KeyError), datastore.get_connection() as conn:
        conn.execute("BEGIN")
        conn.execute(f"INSERT INTO \"{schema}\".notes VALUES ('dropped')")
        raise KeyError("the block failed")
    assert admin(f'SELECT note FROM "{schema}".notes') == [("kept",)]


def test_get_connection_reports_a_transaction_ended_by_the_idle_timeout(
    make_datastore: Callable[..., PostgresDatastore],
) -> None:
    datastore = make_datastore(idle_in_transaction_session_timeout=0.05)
    with (
        pytest.raises(InternalError, match="idle-in-transaction timeout"),
        datastore.get_connection() as conn,
    ):
        conn.execute("BEGIN")
        # Idle in the transaction while another connection sleeps.
        admin("SELECT pg_sleep(0.2)")


# eventsourcing's datastore options


def test_datastore_has_eventsourcing_options_and_applies_its_timeouts(
    make_datastore: Callable[..., PostgresDatastore],
) -> None:
    datastore = make_datastore(
        lock_timeout=2,
        idle_in_transaction_session_timeout=3,
        single_row_tracking=True,
        enable_db_functions=True,
    )
    assert datastore.single_row_tracking is True
    assert datastore.enable_db_functions is True
    assert (datastore.lock_timeout, datastore.idle_in_transaction_session_timeout) == (
        2,
        3,
    )
    # Set later, it holds for connections opened afterwards.
    datastore.lock_timeout = 0.25
    with datastore.get_connection() as conn:
        rows = conn.execute(
            "SELECT current_setting('lock_timeout') AS lock,"
            " current_setting('idle_in_transaction_session_timeout') AS idle"
        ).fetchall()
    assert rows == [{"lock": "250ms", "idle": "3s"}]


def test_datastore_rejects_an_unknown_originator_id_type_with_value_error() -> None:
    with pytest.raises(ValueError, match="'uuid' or 'text', not 'integer'"):
        PostgresDatastore("test", originator_id_type="integer")


def test_get_password_func_gives_the_password_of_each_new_connection(
    make_datastore: Callable[..., PostgresDatastore],
) -> None:
    datastore = make_datastore(
        password="", get_password_func=password_from_a_vault, pool_size=1
    )
    before = next(PASSWORDS_GIVEN)
    for _ in range(2):
        with datastore.get_connection() as conn:
            conn.execute("SELECT 1")
            conn.close()  # the pool opens another one
    assert datastore.pool.get_password_func is password_from_a_vault
    # The first connection's check, then each pooled connection.
    assert next(PASSWORDS_GIVEN) - before - 1 >= 3


def test_factory_reads_eventsourcing_settings(schema: str) -> None:
    factory = PostgresFactory(
        factory_env(
            schema,
            POSTGRES_GET_PASSWORD_TOPIC=get_topic(password_from_a_vault),
            POSTGRES_ENABLE_DB_FUNCTIONS="yes",
            POSTGRES_CONN_MAX_AGE="0",
            POSTGRES_LOCK_TIMEOUT="1",
        )
    )
    try:
        datastore = factory.datastore
        assert datastore.pool.get_password_func is password_from_a_vault
        assert datastore.enable_db_functions is True
        assert datastore.single_row_tracking is True
        assert datastore.pool.max_lifetime == 0
        assert datastore.lock_timeout == 1
        recorder = factory.application_recorder()
        assert recorder.insert_events([StoredEvent(uuid4(), 1, "t:E", b"")]) == [1]
    finally:
        factory.close()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"POSTGRES_DBNAME": ""},
            "PostgreSQL needs a database name: set TEST_POSTGRES_DBNAME or "
            "POSTGRES_DBNAME",
        ),
        ({"ORIGINATOR_ID_TYPE": "integer"}, "Invalid ORIGINATOR_ID_TYPE"),
        (
            {"POSTGRES_GET_PASSWORD_TOPIC": "tests.persistence:no_such_function"},
            "POSTGRES_GET_PASSWORD_TOPIC='tests.persistence:no_such_function'",
        ),
    ],
)
def test_factory_names_a_setting_it_cannot_use(
    schema: str, settings: dict[str, str], message: str
) -> None:
    with pytest.raises(InfrastructureFactoryError) as info:
        PostgresFactory(factory_env(schema, **settings))
    assert isinstance(info.value, EnvironmentError)
    assert message in str(info.value)


def test_multi_row_tracking_is_refused(schema: str) -> None:
    factory = PostgresFactory(factory_env(schema, SINGLE_ROW_TRACKING="no"))
    try:
        assert factory.datastore.single_row_tracking is False
        with pytest.raises(NotSupportedError, match="single_row_tracking=False"):
            factory.tracking_recorder()
        with pytest.raises(NotSupportedError, match="single_row_tracking=False"):
            factory.process_recorder()
    finally:
        factory.close()


# The tracking table's layout


def test_tracking_recorder_reports_the_table_it_found(
    make_datastore: Callable[..., PostgresDatastore],
) -> None:
    datastore = make_datastore()
    recorder = PostgresTrackingRecorder(datastore, tracking_table_name="t_tracking")
    assert recorder.tracking_table_exists is False
    recorder.create_table()
    assert recorder.tracking_table_exists is False
    assert recorder.tracking_migration_previous is None
    assert recorder.tracking_migration_current == 1
    recorder.insert_tracking(Tracking("upstream", 3))
    recorder = PostgresTrackingRecorder(datastore, tracking_table_name="t_tracking")
    recorder.create_table()
    assert recorder.tracking_table_exists is True
    assert recorder.tracking_migration_previous == 1
    assert recorder.tracking_migration_current == 1
    assert recorder.max_tracking_id("upstream") == 3


def test_a_tracking_table_of_a_row_per_notification_is_migrated_and_kept(
    make_datastore: Callable[..., PostgresDatastore], schema: str
) -> None:
    # eventsourcing before 9.5: a row per processed notification.
    admin(
        f'CREATE TABLE "{schema}".test_tracking (application_name text, '
        "notification_id bigint, PRIMARY KEY (application_name, notification_id))"
    )
    admin(
        f'INSERT INTO "{schema}".test_tracking VALUES '
        "('up1', 1), ('up1', 3), ('up2', 1), ('up2', 2), ('up2', 4)"
    )
    datastore = make_datastore()
    recorder = PostgresProcessRecorder(
        datastore, events_table_name="test_events", tracking_table_name="test_tracking"
    )
    recorder.create_table()
    assert recorder.tracking_table_exists is True
    assert recorder.tracking_migration_previous is None
    assert recorder.tracking_migration_current == 1
    assert recorder.max_tracking_id("up1") == 3
    assert recorder.max_tracking_id("up2") == 4
    assert recorder.has_tracking_id("up1", 2)
    # One row per application now, and moving forward only.
    assert recorder.insert_events(
        [StoredEvent(uuid4(), 1, "t:E", b"")], tracking=Tracking("up1", 5)
    ) == [1]
    assert admin(f'SELECT * FROM "{schema}".test_tracking ORDER BY 1') == [
        ("__migration__", 1),
        ("up1", 5),
        ("up2", 4),
    ]
    # Nothing is deleted: the old rows are kept in a backup table.
    assert len(admin(f'SELECT * FROM "{schema}".bkup1_test_tracking')) == 5
    again = PostgresProcessRecorder(
        datastore, events_table_name="test_events", tracking_table_name="test_tracking"
    )
    again.create_table()
    assert again.tracking_migration_previous == 1
    assert again.max_tracking_id("up1") == 5


def test_sql_create_statements_list_the_recorders_own_tables_then_added_ones(
    schema: str,
) -> None:
    env = Environment("Listed", {**POSTGRES, "POSTGRES_SCHEMA": schema})
    with PostgresFactory(env) as factory:
        recorder = factory.application_recorder()
        own = [s.as_string() for s in recorder.sql_create_statements]
        assert own[0].startswith(f'CREATE TABLE "{schema}"."listed_events"')
        view = f'"{schema}"."listed_view"'
        recorder.sql_create_statements.append(
            f"CREATE TABLE IF NOT EXISTS {view} (id int)"
        )
        recorder.create_table()
        recorder.create_table()  # the own tables exist: only the added runs again
        tracking = factory.tracking_recorder()
        assert f'"{schema}".' in tracking.sql_create_statements[0].as_string()
    rows = admin(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,)
    )
    assert {"listed_events", "listed_view"} <= {name for (name,) in rows}
