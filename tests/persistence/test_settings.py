"""Bad settings: each error names the variable and the values it accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from esox import Application
from esox._core import StoredEvent
from esox.examples.dogschool import DogSchool
from esox.persistence import (
    InfrastructureFactoryError,
    InvalidSettingError,
)
from esox.postgres import PostgresApplicationRecorder, PostgresDatastore
from esox.postgres.identifiers import index_name
from esox.utils import Environment
from tests.persistence_envs import POSTGRES, POSTGRES_CONNECT, postgres_schema


def without(env: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in env.items() if k != name}


SQLITE = {"PERSISTENCE_MODULE": "esox.sqlite", "SQLITE_DBNAME": ":memory:"}
PG = {"PERSISTENCE_MODULE": "esox.postgres"} | POSTGRES

# env (the bad variable last), and a piece of the accepted values named.
BAD = {
    "truth value": ({"IS_SNAPSHOTTING_ENABLED": "maybe"}, "y/yes/t/true/on/1"),
    "truth value, prefixed": (
        {"APPLICATION_AGGREGATE_CACHE_FASTFORWARD": "perhaps"},
        "n/no/f/false/off/0",
    ),
    "cache size": ({"AGGREGATE_CACHE_MAXSIZE": "lots"}, "an integer"),
    "huge lock timeout": (SQLITE | {"SQLITE_LOCK_TIMEOUT": "1e30"}, "2147483.647"),
    "nan lock timeout": (SQLITE | {"SQLITE_LOCK_TIMEOUT": "nan"}, "seconds"),
    "synchronous": (SQLITE | {"SQLITE_SYNCHRONOUS": "OFF"}, "FULL, NORMAL"),
    "id type": (SQLITE | {"ORIGINATOR_ID_TYPE": "int"}, "uuid, text"),
    "compressor module": ({"COMPRESSOR_TOPIC": "abc"}, "'zlib', 'zstd'"),
    "compressor missing": ({"COMPRESSOR_TOPIC": "no.such:Thing"}, "'zlib', 'zstd'"),
    "cipher missing": ({"CIPHER_TOPIC": "no.such:Cipher"}, "topic of a cipher"),
    "not a cipher": ({"CIPHER_TOPIC": "esox.utils:Environment"}, "encrypt()"),
    "transcoder missing": ({"TRANSCODER_TOPIC": "no.such:T"}, "of a Transcoder"),
    "mapper missing": ({"MAPPER_TOPIC": "no.such:M"}, "topic of a Mapper"),
    "postgres lock timeout": (PG | {"POSTGRES_LOCK_TIMEOUT": "3000000"}, "2147483.647"),
    "postgres idle timeout": (
        PG | {"POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "1e12"},
        "2147483.647",
    ),
    "postgres port": (
        without(PG, "POSTGRES_PORT") | {"POSTGRES_PORT": "99999"},
        "from 1 to 65535",
    ),
    "bool for a path": (
        without(SQLITE, "SQLITE_DBNAME") | {"SQLITE_DBNAME": True},
        "os.PathLike, not a bool",
    ),
    "path for a truth value": (
        {"IS_SNAPSHOTTING_ENABLED": Path("y")},
        "y/yes/t/true/on/1",
    ),
    "bool for a number": (SQLITE | {"SQLITE_LOCK_TIMEOUT": True}, "seconds"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_bad_setting_names_the_variable_and_the_accepted_values(case: str) -> None:
    env, accepted = BAD[case]
    bad_name = list(env)[-1]
    with pytest.raises(InvalidSettingError) as caught:
        Application(env=env)
    message = str(caught.value)
    assert message.startswith(f"{bad_name}={env[bad_name]!r} is not valid"), message
    assert accepted in message
    assert isinstance(caught.value, InfrastructureFactoryError | ValueError)


GOOD: dict[str, tuple[dict[str, Any], Any]] = {
    "a bool for a truth value": ({"IS_SNAPSHOTTING_ENABLED": True}, True),
    "upper case": ({"IS_SNAPSHOTTING_ENABLED": "YES"}, True),
    "blank is the default": ({"IS_SNAPSHOTTING_ENABLED": " "}, False),
}


@pytest.mark.parametrize("case", GOOD, ids=list(GOOD))
def test_truth_values_are_read_as_python_and_eventsourcing_read_them(
    case: str,
) -> None:
    env, expected = GOOD[case]
    with Application(env=env) as app:
        assert app.factory.is_snapshotting_enabled() is expected


def test_a_path_is_accepted_as_a_database_name(tmp_path: Path) -> None:
    env = {"PERSISTENCE_MODULE": "esox.sqlite", "SQLITE_DBNAME": tmp_path / "dogs.db"}
    with DogSchool(env=env) as school:
        school.register_dog("Fido")
    assert (tmp_path / "dogs.db").exists()


def test_readers_without_a_factory_raise_value_errors() -> None:
    env = Environment("Kennel", {"KENNEL_RETRIES": "-1"})
    with pytest.raises(ValueError, match=r"KENNEL_RETRIES='-1' .* of at least 0"):
        env.read_int("RETRIES", 3, minimum=0)
    assert env.read_int("OTHER", 3) == 3


def test_tables_whose_index_names_would_be_cut_get_distinct_indexes() -> None:
    # 63 bytes each: "<table>_notification_id_idx" cut to 63 bytes would be
    # the table's own name (eventsourcing's CREATE INDEX IF NOT EXISTS then
    # creates no index at all); the two names also share their first 56.
    tables = ["a" * 56 + "_events", "a" * 56 + "_stored"]
    with postgres_schema() as schema:
        datastore = PostgresDatastore(
            **POSTGRES_CONNECT,
            schema=schema,
        )
        try:
            for table in tables:
                recorder = PostgresApplicationRecorder(
                    datastore, events_table_name=table
                )
                recorder.create_table()
                recorder.insert_events([StoredEvent(uuid4(), 1, "t", b"s")])
            with datastore.get_connection() as conn:
                rows = conn.execute(
                    "SELECT tablename, indexname, indexdef FROM pg_indexes "
                    "WHERE schemaname = %s AND indexdef LIKE %s ORDER BY tablename",
                    (schema, "%UNIQUE%(notification_id)%"),
                ).fetchall()
        finally:
            datastore.close()
    assert [row["tablename"] for row in rows] == sorted(tables)
    names = [row["indexname"] for row in rows]
    assert len(set(names)) == 2
    assert all(len(name) <= 63 and name.startswith("a" * 34) for name in names)
    assert all(name.endswith("_notification_id_idx") for name in names)
    # A name that fits is eventsourcing's, so each library finds the other's.
    assert index_name("stored_events", "_notification_id_idx") == (
        "stored_events_notification_id_idx"
    )
