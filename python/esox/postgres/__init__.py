"""PostgreSQL persistence (``PERSISTENCE_MODULE=esox.postgres``), with psycopg 3.

Tables, columns and environment variables are eventsourcing 9.5's, so a
database written by either library is read by the other. See docs/postgres.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from esox.persistence.errors import (
    InfrastructureFactoryError,
    InvalidSettingError,
    ProgrammingError,
)
from esox.persistence.factory import InfrastructureFactory
from esox.persistence.recorders import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    TrackingRecorder,
)
from esox.postgres.datastore import PostgresDatastore
from esox.postgres.identifiers import check_identifier
from esox.postgres.recorders import (
    PgStoredEvent,
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
)
from esox.postgres.settings import PostgresSettings
from esox.postgres.settled import PostgresSubscription
from esox.postgres.tables import PostgresRecorder
from esox.postgres.tracking import PostgresProcessRecorder, PostgresTrackingRecorder
from esox.utils import Environment, EnvType, TopicError, resolve_topic

__all__ = [
    "PgStoredEvent",
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


class PostgresFactory(PostgresSettings, InfrastructureFactory[Any]):
    """Builds PostgreSQL recorders over one connection pool, configured by env.

    Tables are named after the application (lower-cased): ``<name>_events``,
    ``<name>_snapshots`` and ``<name>_tracking``, in ``POSTGRES_SCHEMA``.
    The names of its settings are ``PostgresSettings``'s attributes.
    """

    CREATE_TABLE = "CREATE_TABLE"
    APPLICATION_RECORDER_TOPIC = "APPLICATION_RECORDER_TOPIC"
    PROCESS_RECORDER_TOPIC = "PROCESS_RECORDER_TOPIC"

    # eventsourcing's extension points: a subclass (or the *_RECORDER_TOPIC
    # settings) names recorder classes of its own.
    aggregate_recorder_class: type[PostgresAggregateRecorder] = (
        PostgresAggregateRecorder
    )
    application_recorder_class: type[PostgresApplicationRecorder] = (
        PostgresApplicationRecorder
    )
    process_recorder_class: type[PostgresProcessRecorder] = PostgresProcessRecorder

    MAX_TIMEOUT = 2_147_483.647
    """PostgreSQL's timeouts are a C int of milliseconds."""

    def __init__(self, env: Environment | EnvType | None = None) -> None:
        super().__init__(env)
        env = self.env
        schema = env.read_str(self.POSTGRES_SCHEMA) or "public"
        try:
            check_identifier(schema, "schema")
        except ProgrammingError as e:
            raise env.invalid(self.POSTGRES_SCHEMA, f"a schema name ({e})") from None
        try:
            id_type = env.read_choice(self.ORIGINATOR_ID_TYPE, "uuid", ("uuid", "text"))
        except InvalidSettingError as e:
            msg = f"{e} (Invalid {self.ORIGINATOR_ID_TYPE})"
            raise InvalidSettingError(msg) from None
        self.create_tables = env.read_bool(self.CREATE_TABLE, default=True)
        # Establishing a connection gives up after POSTGRES_CONNECT_TIMEOUT
        # (default 5s); waiting for a pooled one, after it too if it is set
        # (as in eventsourcing), else after 30s.
        connect_timeout = env.read_duration(
            self.POSTGRES_CONNECT_TIMEOUT,
            PostgresDatastore.DEFAULT_CONNECT_TIMEOUT,
            positive=True,
            maximum=self.MAX_TIMEOUT,
        )
        # Poll-only mode, for connection poolers in transaction mode
        # (pgbouncer), where LISTEN does not work.
        listen_notify = env.read_bool(self.POSTGRES_LISTEN_NOTIFY, default=True)
        connect_timeout_unset = env.read_str(self.POSTGRES_CONNECT_TIMEOUT) is None
        self.datastore = PostgresDatastore(
            dbname=self._required(self.POSTGRES_DBNAME),
            host=env.read_str(self.POSTGRES_HOST),
            port=env.read_int(self.POSTGRES_PORT, 0, minimum=1, maximum=65535) or None,
            user=env.read_str(self.POSTGRES_USER),
            password=env.get(self.POSTGRES_PASSWORD),
            schema=schema,
            originator_id_type=id_type,
            pool_size=env.read_int(self.POSTGRES_POOL_SIZE, 5, minimum=1),
            max_overflow=env.read_int(self.POSTGRES_MAX_OVERFLOW, 10, minimum=0),
            max_waiting=env.read_int(self.POSTGRES_MAX_WAITING, 0, minimum=0),
            connect_timeout=connect_timeout,
            pool_timeout=30.0 if connect_timeout_unset else connect_timeout,
            # 0: a new connection for every use, as in eventsourcing.
            conn_max_age=env.read_duration(self.POSTGRES_CONN_MAX_AGE, 3600.0),
            pre_ping=env.read_bool(self.POSTGRES_PRE_PING, default=False),
            lock_timeout=env.read_duration(
                self.POSTGRES_LOCK_TIMEOUT, 0.0, maximum=self.MAX_TIMEOUT
            ),
            idle_in_transaction_session_timeout=env.read_duration(
                self.POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
                5.0,
                maximum=self.MAX_TIMEOUT,
            ),
            application_name=f"esox {env.name}".strip()[:63],
            get_password_func=self._get_password_func(),
            single_row_tracking=env.read_bool(
                self.POSTGRES_SINGLE_ROW_TRACKING, default=True
            ),
            enable_db_functions=env.read_bool(
                self.POSTGRES_ENABLE_DB_FUNCTIONS, default=False
            ),
            listen_notify=listen_notify,
            poll_interval=env.read_duration(
                self.POSTGRES_POLL_INTERVAL,
                1.0 if listen_notify else 0.1,
                positive=True,
                maximum=self.MAX_TIMEOUT,
            ),
        )

    # Reading the environment.

    def _required(self, key: str) -> str:
        value = self.env.read_str(key)
        if not value:
            names = " or ".join(self.env.create_keys(key))
            msg = f"PostgreSQL needs a database name: set {names}"
            raise InfrastructureFactoryError(msg)
        return value

    def _get_password_func(self) -> Callable[[], str] | None:
        """The function ``POSTGRES_GET_PASSWORD_TOPIC`` names, if set: called
        for the password of each new connection."""
        topic = self.env.read_str(self.POSTGRES_GET_PASSWORD_TOPIC)
        if topic is None:
            return None
        try:
            func = resolve_topic(topic)
        except TopicError as e:
            raise self.env.invalid(
                self.POSTGRES_GET_PASSWORD_TOPIC, f"the topic of a function ({e})"
            ) from None
        if not callable(func):
            raise self.env.invalid(
                self.POSTGRES_GET_PASSWORD_TOPIC,
                f"the topic of a function, not of a {type(func).__name__}",
            )
        return cast("Callable[[], str]", func)

    def _table_name(self, default_prefix: str, suffix: str) -> str:
        name = f"{self.env.name.lower() or default_prefix}_{suffix}"
        try:
            return check_identifier(name, "table name")
        except ProgrammingError as e:
            msg = f"application name {self.env.name!r} cannot name a table: {e}"
            raise InfrastructureFactoryError(msg) from None

    # Recorders.

    def env_create_table(self) -> bool:
        """Whether recorders create their tables (``CREATE_TABLE``, default yes)."""
        return self.create_tables

    def _recorder(self, cls: Callable[..., R], **table_names: str) -> R:
        """A recorder of class ``cls`` of the tables ``table_names``, which
        it creates unless ``CREATE_TABLE`` says no."""
        recorder = cls(self.datastore, **table_names)
        if self.create_tables:
            recorder.create_table()
        return recorder

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        """A recorder of ``<name>_<purpose>`` (``events`` or ``snapshots``)."""
        return self._recorder(
            self.aggregate_recorder_class,
            events_table_name=self._table_name("stored", purpose),
        )

    def application_recorder(self) -> ApplicationRecorder:
        """The recorder of ``<name>_events``, numbered as notifications
        (of the class ``APPLICATION_RECORDER_TOPIC`` names, if set)."""
        cls: type[PostgresApplicationRecorder] = self._recorder_class(
            self.APPLICATION_RECORDER_TOPIC, self.application_recorder_class
        )
        return self._recorder(
            cls, events_table_name=self._table_name("stored", "events")
        )

    def tracking_recorder(
        self, tracking_recorder_class: type[TrackingRecorder] | None = None
    ) -> TrackingRecorder:
        """A recorder of ``<name>_tracking``."""
        cls: type[PostgresTrackingRecorder] = self.tracking_recorder_class(
            tracking_recorder_class, PostgresTrackingRecorder
        )
        return self._recorder(
            cls, tracking_table_name=self._table_name("notification", "tracking")
        )

    def process_recorder(self) -> ProcessRecorder:
        """A recorder of ``<name>_events`` and ``<name>_tracking`` together
        (of the class ``PROCESS_RECORDER_TOPIC`` names, if set)."""
        cls: type[PostgresProcessRecorder] = self._recorder_class(
            self.PROCESS_RECORDER_TOPIC, self.process_recorder_class
        )
        return self._recorder(
            cls,
            events_table_name=self._table_name("stored", "events"),
            tracking_table_name=self._table_name("notification", "tracking"),
        )

    def close(self) -> None:
        """Stop listening and close the pool's connections."""
        self.datastore.close()
