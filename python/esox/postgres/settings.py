"""The names of the settings of PostgreSQL persistence: eventsourcing's.

Both factories that read them, esox's (``esox.postgres.PostgresFactory``) and
the drop-in's (``esox.dropin.postgres.PostgresFactory``, which hands them to
esox's), name them by these attributes, as eventsourcing's factory does.
"""

from __future__ import annotations

__all__ = ["PostgresSettings"]


class PostgresSettings:
    """The environment variables that configure PostgreSQL persistence
    (each optionally prefixed with the application's name)."""

    POSTGRES_DBNAME = "POSTGRES_DBNAME"
    POSTGRES_HOST = "POSTGRES_HOST"
    POSTGRES_PORT = "POSTGRES_PORT"
    POSTGRES_USER = "POSTGRES_USER"
    POSTGRES_PASSWORD = "POSTGRES_PASSWORD"
    POSTGRES_SCHEMA = "POSTGRES_SCHEMA"
    POSTGRES_POOL_SIZE = "POSTGRES_POOL_SIZE"
    POSTGRES_MAX_OVERFLOW = "POSTGRES_MAX_OVERFLOW"
    POSTGRES_MAX_WAITING = "POSTGRES_MAX_WAITING"
    POSTGRES_CONNECT_TIMEOUT = "POSTGRES_CONNECT_TIMEOUT"
    POSTGRES_CONN_MAX_AGE = "POSTGRES_CONN_MAX_AGE"
    POSTGRES_PRE_PING = "POSTGRES_PRE_PING"
    POSTGRES_LOCK_TIMEOUT = "POSTGRES_LOCK_TIMEOUT"
    POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT = (
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT"
    )
    POSTGRES_LISTEN_NOTIFY = "POSTGRES_LISTEN_NOTIFY"
    POSTGRES_POLL_INTERVAL = "POSTGRES_POLL_INTERVAL"
    POSTGRES_GET_PASSWORD_TOPIC = "POSTGRES_GET_PASSWORD_TOPIC"
    POSTGRES_SINGLE_ROW_TRACKING = "SINGLE_ROW_TRACKING"
    POSTGRES_ENABLE_DB_FUNCTIONS = "POSTGRES_ENABLE_DB_FUNCTIONS"
    ORIGINATOR_ID_TYPE = "ORIGINATOR_ID_TYPE"
