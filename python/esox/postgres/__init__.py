"""PostgreSQL persistence (``PERSISTENCE_MODULE=esox.postgres``), with psycopg 3.

Tables, columns and environment variables are eventsourcing 9.5's, so a
database written by either library is read by the other. See docs/postgres.md.
"""

from __future__ import annotations

import math
from typing import TypeVar

from esox.persistence.errors import InfrastructureFactoryError, ProgrammingError
from esox.persistence.factory import InfrastructureFactory
from esox.persistence.recorders import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    TrackingRecorder,
)
from esox.postgres.datastore import PostgresDatastore, check_identifier
from esox.postgres.recorders import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresRecorder,
    PostgresSubscription,
)
from esox.postgres.tracking import PostgresProcessRecorder, PostgresTrackingRecorder
from esox.utils import Environment, EnvType, strtobool

__all__ = [
    "PostgresAggregateRecorder",
    "PostgresApplicationRecorder",
    "PostgresDatastore",
    "PostgresFactory",
    "PostgresProcessRecorder",
    "PostgresRecorder",
    "PostgresSubscription",
    "PostgresTrackingRecorder",
]

R = TypeVar("R", bound=PostgresRecorder)


class PostgresFactory(InfrastructureFactory):
    """Builds PostgreSQL recorders over one connection pool, configured by env.

    Tables are named after the application (lower-cased): ``<name>_events``,
    ``<name>_snapshots`` and ``<name>_tracking``, in ``POSTGRES_SCHEMA``.
    """

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
    ORIGINATOR_ID_TYPE = "ORIGINATOR_ID_TYPE"
    CREATE_TABLE = "CREATE_TABLE"

    def __init__(self, env: Environment | EnvType | None = None) -> None:
        super().__init__(env)
        schema = (self.env.get(self.POSTGRES_SCHEMA) or "").strip() or "public"
        try:
            check_identifier(schema, "schema")
        except ProgrammingError as e:
            raise InfrastructureFactoryError(
                self._invalid(self.POSTGRES_SCHEMA, e)
            ) from None
        id_type = (self.env.get(self.ORIGINATOR_ID_TYPE) or "uuid").strip().lower()
        if id_type not in ("uuid", "text"):
            raise InfrastructureFactoryError(
                self._invalid(self.ORIGINATOR_ID_TYPE, "expected 'uuid' or 'text'")
            )
        self.create_tables = self._bool(self.CREATE_TABLE, default=True)
        # Establishing a connection gives up after POSTGRES_CONNECT_TIMEOUT
        # (default 5s); waiting for a pooled one, after it too if it is set
        # (as in eventsourcing), else after 30s.
        connect_timeout_unset = not (self.env.get(self.POSTGRES_CONNECT_TIMEOUT) or "")
        connect_timeout = self._float(
            self.POSTGRES_CONNECT_TIMEOUT,
            PostgresDatastore.DEFAULT_CONNECT_TIMEOUT,
            positive=True,
        )
        self.datastore = PostgresDatastore(
            dbname=self._required(self.POSTGRES_DBNAME),
            host=self.env.get(self.POSTGRES_HOST) or None,
            port=self._int(self.POSTGRES_PORT, 0, minimum=1, maximum=65535) or None,
            user=self.env.get(self.POSTGRES_USER) or None,
            password=self.env.get(self.POSTGRES_PASSWORD),
            schema=schema,
            originator_id_type=id_type,
            pool_size=self._int(self.POSTGRES_POOL_SIZE, 5, minimum=1),
            max_overflow=self._int(self.POSTGRES_MAX_OVERFLOW, 10),
            max_waiting=self._int(self.POSTGRES_MAX_WAITING, 0),
            connect_timeout=connect_timeout,
            pool_timeout=30.0 if connect_timeout_unset else connect_timeout,
            conn_max_age=self._float(self.POSTGRES_CONN_MAX_AGE, 3600.0, positive=True),
            pre_ping=self._bool(self.POSTGRES_PRE_PING, default=False),
            lock_timeout=self._float(self.POSTGRES_LOCK_TIMEOUT, 0.0),
            idle_in_transaction_session_timeout=self._float(
                self.POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT, 5.0
            ),
            application_name=f"esox {self.env.name}".strip()[:63],
        )

    # Reading the environment.

    def _source(self, key: str) -> str:
        """The variable that set ``key`` (maybe prefixed with the application name)."""
        for name in self.env.create_keys(key):
            if dict.get(self.env, name) is not None:
                return name
        return key

    def _invalid(self, key: str, problem: object) -> str:
        value = self.env.get(key)
        return f"{self._source(key)}={value!r} is not valid: {problem}"

    def _required(self, key: str) -> str:
        value = self.env.get(key)
        if not value:
            names = " or ".join(self.env.create_keys(key))
            msg = f"PostgreSQL needs a database name: set {names}"
            raise InfrastructureFactoryError(msg)
        return str(value)

    def _int(
        self, key: str, default: int, minimum: int = 0, maximum: int | None = None
    ) -> int:
        value = (self.env.get(key) or "").strip()
        if not value:
            return default
        try:
            number = int(value)
        except ValueError:
            number = minimum - 1
        if number < minimum or (maximum is not None and number > maximum):
            bounds = f"from {minimum} to {maximum}" if maximum else f">= {minimum}"
            msg = self._invalid(key, f"expected an integer {bounds}")
            raise InfrastructureFactoryError(msg)
        return number

    def _float(self, key: str, default: float, positive: bool = False) -> float:
        value = (self.env.get(key) or "").strip()
        if not value:
            return default
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not number >= 0 or (positive and number == 0) or number == float("inf"):
            kind = "a positive" if positive else "a non-negative"
            msg = self._invalid(key, f"expected {kind} number of seconds")
            raise InfrastructureFactoryError(msg)
        return number

    def _bool(self, key: str, *, default: bool) -> bool:
        value = self.env.get(key)
        if value is None or not value.strip():
            return default
        try:
            return strtobool(value)
        except ValueError:
            msg = self._invalid(key, "expected yes/no, true/false, on/off or 1/0")
            raise InfrastructureFactoryError(msg) from None

    def _table_name(self, default_prefix: str, suffix: str) -> str:
        name = f"{self.env.name.lower() or default_prefix}_{suffix}"
        try:
            return check_identifier(name, "table name")
        except ProgrammingError as e:
            msg = f"application name {self.env.name!r} cannot name a table: {e}"
            raise InfrastructureFactoryError(msg) from None

    # Recorders.

    def _prepared(self, recorder: R) -> R:
        if self.create_tables:
            recorder.create_table()
        return recorder

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        """A recorder of ``<name>_<purpose>`` (``events`` or ``snapshots``)."""
        recorder = PostgresAggregateRecorder(
            self.datastore, events_table_name=self._table_name("stored", purpose)
        )
        return self._prepared(recorder)

    def application_recorder(self) -> ApplicationRecorder:
        """The recorder of ``<name>_events``, numbered as notifications."""
        recorder = PostgresApplicationRecorder(
            self.datastore, events_table_name=self._table_name("stored", "events")
        )
        return self._prepared(recorder)

    def tracking_recorder(
        self, tracking_recorder_class: type[TrackingRecorder] | None = None
    ) -> TrackingRecorder:
        """A recorder of ``<name>_tracking``."""
        cls = tracking_recorder_class or PostgresTrackingRecorder
        if not issubclass(cls, PostgresTrackingRecorder):
            msg = f"{cls.__qualname__} is not a PostgresTrackingRecorder"
            raise InfrastructureFactoryError(msg)
        recorder = cls(
            self.datastore,
            tracking_table_name=self._table_name("notification", "tracking"),
        )
        return self._prepared(recorder)

    def process_recorder(self) -> ProcessRecorder:
        """A recorder of ``<name>_events`` and ``<name>_tracking`` together."""
        recorder = PostgresProcessRecorder(
            self.datastore,
            events_table_name=self._table_name("stored", "events"),
            tracking_table_name=self._table_name("notification", "tracking"),
        )
        return self._prepared(recorder)

    def close(self) -> None:
        """Stop listening and close the pool's connections."""
        self.datastore.close()
