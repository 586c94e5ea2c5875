"""PostgreSQL persistence for eventsourcing applications (``esox.dropin.postgres``).

Instead of ``eventsourcing.postgres``: esox's psycopg 3 recorders (pipelined
inserts, group commit, LISTEN/NOTIFY wake-ups) on eventsourcing 9.x's tables
``<name>_events``, ``<name>_snapshots`` and ``<name>_tracking``, so a schema
written by either library is read by the other.

Configuration is eventsourcing's ``POSTGRES_*`` keys (each optionally
prefixed with the application's name), read by esox's own PostgreSQL module;
``SINGLE_ROW_TRACKING=no`` is refused (esox keeps one tracking row per
upstream application) and ``POSTGRES_ENABLE_DB_FUNCTIONS`` has no effect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from eventsourcing.utils import Environment, EnvType

import esox.postgres
from esox.dropin.factory import DropinFactory
from esox.dropin.recorders import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    TableRecorder,
    TrackingRecorder,
)
from esox.postgres import PostgresDatastore
from esox.postgres.settings import PostgresSettings

__all__ = [
    "Factory",
    "PostgresAggregateRecorder",
    "PostgresApplicationRecorder",
    "PostgresFactory",
    "PostgresProcessRecorder",
    "PostgresTrackingRecorder",
]


class _EventsTableRecorder(TableRecorder):
    """What the aggregate and application recorders share: eventsourcing's
    constructor, over the esox recorder class ``core_class``."""

    core_class: ClassVar[Callable[..., esox.postgres.PostgresAggregateRecorder]]

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(
            lambda: self.core_class(datastore, events_table_name=events_table_name)
        )
        self.datastore = datastore
        self.events_table_name = events_table_name


class PostgresAggregateRecorder(_EventsTableRecorder, AggregateRecorder):
    """Stored events of one kind of aggregate record (snapshots)."""

    core: esox.postgres.PostgresAggregateRecorder
    core_class = esox.postgres.PostgresAggregateRecorder


class PostgresApplicationRecorder(_EventsTableRecorder, ApplicationRecorder):
    """Stored events, numbered as notifications that followers never skip."""

    core: esox.postgres.PostgresApplicationRecorder
    core_class = esox.postgres.PostgresApplicationRecorder


class PostgresTrackingRecorder(TableRecorder, TrackingRecorder):
    """Tracking positions, one row per upstream application."""

    core: esox.postgres.PostgresTrackingRecorder

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        tracking_table_name: str = "notification_tracking",
    ) -> None:
        super().__init__(
            lambda: esox.postgres.PostgresTrackingRecorder(
                datastore, tracking_table_name=tracking_table_name
            )
        )
        self.datastore = datastore
        self.tracking_table_name = tracking_table_name


class PostgresProcessRecorder(TableRecorder, ProcessRecorder):
    """Stored events and the tracking position they came from, in one transaction."""

    core: esox.postgres.PostgresProcessRecorder

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
        tracking_table_name: str = "notification_tracking",
    ) -> None:
        super().__init__(
            lambda: esox.postgres.PostgresProcessRecorder(
                datastore,
                events_table_name=events_table_name,
                tracking_table_name=tracking_table_name,
            )
        )
        self.datastore = datastore
        self.events_table_name = events_table_name
        self.tracking_table_name = tracking_table_name


class PostgresFactory(PostgresSettings, DropinFactory[PostgresTrackingRecorder]):
    """Builds PostgreSQL recorders over one connection pool, configured by env.

    Tables are named after the application (lower-cased): ``<name>_events``,
    ``<name>_snapshots`` and ``<name>_tracking``, in ``POSTGRES_SCHEMA``;
    the settings are esox's factory's (``PostgresSettings``).
    """

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        self.esox_factory = self.esox_factory_of(esox.postgres.PostgresFactory)
        self.datastore = self.esox_factory.datastore

    def _table(self, default_prefix: str, suffix: str) -> str:
        return f"{self.env.name.lower() or default_prefix}_{suffix}"

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        """A recorder of ``<name>_<purpose>`` (``events`` or ``snapshots``)."""
        return self.created(
            PostgresAggregateRecorder(
                self.datastore, events_table_name=self._table("stored", purpose)
            )
        )

    def application_recorder(self) -> ApplicationRecorder:
        """The recorder of ``<name>_events``, numbered as notifications."""
        cls = self.recorder_class(
            self.APPLICATION_RECORDER_TOPIC, PostgresApplicationRecorder
        )
        return self.created(
            cls(self.datastore, events_table_name=self._table("stored", "events"))
        )

    def tracking_recorder(
        self, tracking_recorder_class: type[PostgresTrackingRecorder] | None = None
    ) -> PostgresTrackingRecorder:
        """A recorder of ``<name>_tracking``."""
        cls = self.tracking_class(tracking_recorder_class, PostgresTrackingRecorder)
        return self.created(
            cls(
                self.datastore,
                tracking_table_name=self._table("notification", "tracking"),
            )
        )

    def process_recorder(self) -> ProcessRecorder:
        """A recorder of ``<name>_events`` and ``<name>_tracking`` together."""
        cls = self.recorder_class(self.PROCESS_RECORDER_TOPIC, PostgresProcessRecorder)
        return self.created(
            cls(
                self.datastore,
                events_table_name=self._table("stored", "events"),
                tracking_table_name=self._table("notification", "tracking"),
            )
        )

    def close(self) -> None:
        """Stop listening and close the pool's connections."""
        self.esox_factory.close()


Factory = PostgresFactory
"""eventsourcing's name for a module's factory (``esox.dropin.postgres:Factory``)."""
