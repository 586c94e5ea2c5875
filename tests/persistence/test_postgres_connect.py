"""PostgreSQL that cannot be reached or logged into fails at once, saying why."""

from __future__ import annotations

import socket

import pytest

from esox import Application
from esox.persistence import OperationalError
from esox.postgres import PostgresDatastore
from tests.persistence_envs import POSTGRES, require_postgres


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CASES = {
    "unknown database": (
        {"POSTGRES_DBNAME": "esox_no_such_database"},
        'database "esox_no_such_database" does not exist',
    ),
    "unknown role": (
        {"POSTGRES_USER": "esox_no_such_role"},
        'role "esox_no_such_role" does not exist',
    ),
    "unreachable server": ({"POSTGRES_PORT": "closed"}, "Connection refused"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_failed_connection_says_where_and_why_not_pool_size(case: str) -> None:
    require_postgres()
    changes, server_message = CASES[case]
    env = {"PERSISTENCE_MODULE": "esox.postgres"} | POSTGRES | changes
    if env["POSTGRES_PORT"] == "closed":
        env["POSTGRES_PORT"] = str(closed_port())
    env["POSTGRES_PASSWORD"] = "never-shown-pw"
    with pytest.raises(OperationalError) as caught:
        Application(env=env)
    message = str(caught.value)
    assert server_message in message
    assert f"database {env['POSTGRES_DBNAME']!r}" in message
    assert f"{env['POSTGRES_HOST']}:{env['POSTGRES_PORT']}" in message
    assert f"user {env['POSTGRES_USER']!r}" in message
    assert "never-shown-pw" not in message
    assert "POSTGRES_POOL_SIZE" not in message


@pytest.mark.parametrize(("setting", "seconds"), [(None, 5), ("7", 7)])
def test_connecting_gives_up_after_a_few_seconds_or_the_setting(
    setting: str | None, seconds: int
) -> None:
    require_postgres()
    env = {"PERSISTENCE_MODULE": "esox.postgres"} | POSTGRES
    if setting is not None:
        env["POSTGRES_CONNECT_TIMEOUT"] = setting
    with Application(env=env) as app:
        datastore = app.factory.datastore  # type: ignore[attr-defined]
        assert datastore.connect_kwargs["connect_timeout"] == seconds


def test_a_thread_gets_back_the_connection_it_returned_last() -> None:
    require_postgres()
    with PostgresDatastore(
        POSTGRES["POSTGRES_DBNAME"],
        POSTGRES["POSTGRES_HOST"],
        POSTGRES["POSTGRES_PORT"],
        POSTGRES["POSTGRES_USER"],
        POSTGRES["POSTGRES_PASSWORD"],
        pool_size=3,
    ) as datastore:
        with datastore.connection():
            datastore.pool.wait()  # all open, the others idle
        backends = []
        for _ in range(4):
            with datastore.connection() as conn:
                backends.append(conn.info.backend_pid)
        assert datastore.pool.get_stats()["pool_available"] >= 2
        assert len(set(backends)) == 1
        # Two at once: the second is another connection, and it comes back
        # first when it was returned last.
        with datastore.connection() as first, datastore.connection() as second:
            pids = first.info.backend_pid, second.info.backend_pid
        assert pids[0] != pids[1]
        with datastore.connection() as conn:
            assert conn.info.backend_pid == pids[0]
