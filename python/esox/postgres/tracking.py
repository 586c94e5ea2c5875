"""PostgreSQL recorders of tracking positions, alone or with new events.

The tracking table is eventsourcing 9.5's: one row per upstream application.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import DictRow

from esox._core import StoredEvent, Tracking
from esox.persistence.errors import IntegrityError, NotSupportedError
from esox.persistence.recorders import ProcessRecorder, TrackingRecorder
from esox.postgres.datastore import Connection, PostgresDatastore
from esox.postgres.errors import translate_error
from esox.postgres.identifiers import check_identifier, quote, truncated_identifier
from esox.postgres.recorders import PostgresApplicationRecorder, check_timeout
from esox.postgres.settled import locked_insert
from esox.postgres.tables import PostgresRecorder, Table

__all__ = ["PostgresProcessRecorder", "PostgresTrackingRecorder"]

# eventsourcing marks a tracking table as single-row with this row; without it,
# eventsourcing would "migrate" (rename) a tracking table that esox created.
MIGRATION_ROW = ("__migration__", 1)

# The number of columns of a table's primary key: 2 for a tracking table of a
# row per notification (application_name, notification_id), 1 for a row per
# application. No row: no primary key.
_PRIMARY_KEY_SIZE = (
    "SELECT indnkeyatts FROM pg_catalog.pg_index"
    " WHERE indrelid = to_regclass(%s) AND indisprimary"
)


def _check_tracking(tracking: object) -> Tracking:
    if not isinstance(tracking, Tracking):
        msg = f"tracking must be a Tracking, not {type(tracking).__qualname__}"
        raise TypeError(msg)
    return tracking


class PostgresTrackingRecorder(PostgresRecorder, TrackingRecorder):
    """Tracking positions, one row per upstream application (as eventsourcing 9.5)."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        tracking_table_name: str = "notification_tracking",
        **kwargs: Any,
    ) -> None:
        # Set before the base classes' __init__, which composes statements
        # that use them (a process recorder's INSERT with tracking).
        self.tracking_table_name = check_identifier(
            tracking_table_name, "tracking table name"
        )
        self.tracking_channel = self.tracking_table_name
        self._tracking = quote(datastore.schema, tracking_table_name)
        table = quote(datastore.schema, tracking_table_name, params=True)
        # Moves the row forward only; returns a row only if it did.
        self._sql_upsert_into = (
            f"INSERT INTO {table} AS t (application_name, notification_id) "
            "SELECT %b::text, %b::bigint"
        )
        self._sql_upsert_conflict = (
            " ON CONFLICT (application_name) "
            "DO UPDATE SET notification_id = EXCLUDED.notification_id "
            "WHERE t.notification_id < EXCLUDED.notification_id RETURNING 1"
        )
        # Notified after the COMMIT (see Notifier); within a caller's own
        # transaction (a view's), NOTIFY is part of it.
        self._sql_insert_tracking = (
            f"{self._sql_upsert_into}{self._sql_upsert_conflict}"
        )
        self._sql_insert_tracking_notify = (
            f"WITH recorded AS ({self._sql_upsert_into}{self._sql_upsert_conflict}) "
            "SELECT pg_notify(%b::text, '') FROM recorded"
        )
        self._sql_max_tracking_id = (
            f"SELECT max(notification_id) FROM {table} WHERE application_name = %b"
        )
        self._what_tracking = f"insert_tracking into {self._tracking}"
        self._what_max_tracking = f"max_tracking_id of {self._tracking}"
        if not datastore.single_row_tracking:
            msg = (
                "esox records tracking one row per application "
                "(SINGLE_ROW_TRACKING); single_row_tracking=False is not supported"
            )
            raise NotSupportedError(msg)
        self.tracking_table_exists = False
        """Whether the tracking table existed when ``create_table`` ran."""
        self.tracking_migration_previous: int | None = None
        """The table's layout version before ``create_table`` (eventsourcing's
        ``__migration__`` row): None for a table of a row per notification."""
        self.tracking_migration_current: int | None = None
        """The layout version after ``create_table``: 1, a row per application."""
        super().__init__(datastore, **kwargs)

    def _tables(self) -> list[Table]:
        table = self._tracking
        escaped = quote(self.schema, self.tracking_table_name, params=True)
        spec = Table(
            self.tracking_table_name,
            (
                f"CREATE TABLE {table} (application_name text, notification_id bigint, "
                "PRIMARY KEY (application_name))",
            ),
            seed=((f"INSERT INTO {escaped} VALUES (%s, %s)", MIGRATION_ROW),),
            existing=self._migrate,
        )
        return [*super()._tables(), spec]

    def create_table(self) -> None:
        """Create the tables that are missing; a tracking table of a row per
        notification (eventsourcing before 9.5) becomes one of a row per
        application, its rows kept in a backup table (see ``_migrate``)."""
        self.tracking_table_exists = False
        self.tracking_migration_previous = None
        super().create_table()
        self.tracking_migration_current = MIGRATION_ROW[1]

    def _migrate(self, conn: Connection) -> None:
        """Bring an existing tracking table to a row per application.

        A table keyed by application and notification id is renamed
        ``bkup1_<name>`` (as eventsourcing 9.5 does; nothing is deleted) and
        a new one holds each application's last id, in the transaction that
        creates the tables, under an exclusive lock on the old one.
        """
        self.tracking_table_exists = True
        table = self._tracking
        row = conn.execute(_PRIMARY_KEY_SIZE, (table,)).fetchone()
        if row is None or row[0] != 2:
            found = conn.execute(
                f"SELECT max(notification_id) FROM {table} WHERE application_name = %s",
                (MIGRATION_ROW[0],),
            ).fetchone()
            self.tracking_migration_previous = found[0] if found else None
            return
        backup = truncated_identifier(f"bkup1_{self.tracking_table_name}")
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        conn.execute(f"ALTER TABLE {table} RENAME TO {quote(backup)}")
        self._tables()[-1].create_in(conn)
        conn.execute(
            f"INSERT INTO {table} SELECT application_name, max(notification_id) "
            f"FROM {quote(self.schema, backup)} GROUP BY application_name"
        )

    def insert_tracking(self, tracking: Tracking) -> None:
        """Record a tracking position; IntegrityError unless it is past the last one."""
        _check_tracking(tracking)
        params = (tracking.application_name, tracking.notification_id)
        rows = self.datastore.write(
            self._what_tracking,
            lambda conn: conn.execute(
                self._sql_insert_tracking, params, prepare=True, binary=True
            ).fetchall(),
        )
        if not rows:
            raise self._tracking_conflict(tracking)
        self.datastore.notify(self.tracking_channel)

    def _insert_tracking(self, cursor: Any, tracking: Tracking) -> None:
        """Record a tracking position with ``cursor``, in its transaction
        (eventsourcing's extension point: a view updates its tables and its
        position atomically); IntegrityError unless past the last one."""
        self._record_tracking(cursor, tracking, notify=True)

    def _record_tracking(
        self, cursor: Any, tracking: Tracking, *, notify: bool
    ) -> None:
        """``_insert_tracking``; with ``notify``, the NOTIFY is part of the
        transaction, else the caller notifies after its COMMIT."""
        _check_tracking(tracking)
        params: tuple[Any, ...] = (tracking.application_name, tracking.notification_id)
        statement = self._sql_insert_tracking
        if notify:
            params = (*params, self.tracking_channel)
            statement = self._sql_insert_tracking_notify
        try:
            cursor.execute(statement, params, prepare=True, binary=True)
        except psycopg.Error as e:
            raise translate_error(e, self._what_tracking, writing=True) from e
        if not cursor.fetchall():
            raise self._tracking_conflict(tracking)

    def _tracking_conflict(self, tracking: Tracking) -> IntegrityError:
        recorded = self.max_tracking_id(tracking.application_name)
        msg = (
            f"{self._what_tracking}: tracking already recorded: application "
            f"{tracking.application_name!r} notification_id "
            f"{tracking.notification_id} is not greater than {recorded}"
        )
        return IntegrityError(msg)

    def max_tracking_id(self, application_name: str) -> int | None:
        """The last processed notification id of that upstream application."""

        def select(conn: Connection) -> int | None:
            row = conn.execute(
                self._sql_max_tracking_id, (application_name,), prepare=True
            ).fetchone()
            return row[0] if row else None

        return self.datastore.read(self._what_max_tracking, select)

    def wait_for_tracking(
        self, application_name: str, notification_id: int, timeout: float
    ) -> bool:
        """Block until the tracking id is recorded or ``timeout`` passes (LISTEN)."""
        check_timeout(timeout)
        return self.datastore.listener.wait_until(
            self.tracking_channel,
            timeout,
            lambda: self.has_tracking_id(application_name, notification_id),
        )


class PostgresProcessRecorder(
    PostgresTrackingRecorder, PostgresApplicationRecorder, ProcessRecorder
):
    """New events and the tracking position they came from, in one transaction."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
        tracking_table_name: str = "notification_tracking",
    ) -> None:
        super().__init__(
            datastore,
            events_table_name=events_table_name,
            tracking_table_name=tracking_table_name,
        )

    def _compose(self) -> None:
        """Also the INSERT with tracking: lock, move tracking, insert, unlock.

        The events are inserted only if the tracking row moved forward: on a
        conflict nothing is written, and the caller learns it from the ids.
        The tracking row is locked after the table's lock, never before it,
        so two writers cannot each hold what the other waits for.
        """
        super()._compose()
        upsert = f"{self._sql_upsert_into} FROM locked{self._sql_upsert_conflict}"
        insert = (
            f"new AS ({self._sql_insert_into}SELECT u.* FROM {self._sql_unnest} "
            "WHERE EXISTS (SELECT FROM recorded) RETURNING notification_id)"
        )
        self._sql_insert_tracked_events = (
            f"WITH {self._sql_locked}, recorded AS ({upsert}), {insert}, "
            # The unlock must come whether or not anything was inserted.
            f"unlocked AS MATERIALIZED (SELECT pg_advisory_unlock({self.lock_key}) "
            "FROM (SELECT count(*) FROM new) AS n, "
            "(SELECT count(*) FROM recorded) AS r) "
            "SELECT notification_id FROM unlocked LEFT JOIN new ON true "
            "ORDER BY notification_id"
        )
        self._sql_insert_tracked_serialised = (
            f"WITH {self._sql_serialised}, recorded AS ({upsert}), {insert} "
            "SELECT notification_id FROM new ORDER BY notification_id"
        )

    def _insert_events(
        self,
        curs: psycopg.Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> Sequence[int] | None:
        """The hook of a subclass's transaction (see PostgresApplicationRecorder):
        records ``tracking``, if given, then calls the next hook."""
        tracking = kwargs.get("tracking")
        if tracking is not None:
            if type(self)._insert_tracking is PostgresTrackingRecorder._insert_tracking:
                # NOTIFY after the COMMIT (see Notifier), not inside it.
                self._record_tracking(curs, tracking, notify=False)
            else:
                self._insert_tracking(curs, tracking)
        return super()._insert_events(curs, stored_events, **kwargs)

    def _check_hook_kwargs(self, kwargs: dict[str, Any]) -> None:
        tracking = kwargs.get("tracking")
        if tracking is not None:
            _check_tracking(tracking)

    def _channels_written(self, ids: list[int], kwargs: dict[str, Any]) -> list[str]:
        channels = super()._channels_written(ids, kwargs)
        if kwargs.get("tracking") is not None:
            channels.append(self.tracking_channel)
        return channels

    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        tracking: Tracking | None = None,
        **kwargs: Any,
    ) -> list[int]:
        """Insert a batch and record ``tracking`` atomically."""
        if tracking is None:
            return super().insert_events(stored_events, **kwargs)
        _check_tracking(tracking)
        columns = self._columns(stored_events)
        if not columns[0]:
            self.insert_tracking(tracking)
            return []
        params = (tracking.application_name, tracking.notification_id, *columns)
        statement = (
            self._sql_insert_tracked_events
            if self.horizon
            else self._sql_insert_tracked_serialised
        )
        committed = self._committed(columns)

        def stored(conn: Connection) -> tuple[list[Any]] | None:
            # The events are stored as given only with their tracking row.
            found = committed(conn)
            return None if found is None else ([(i,) for i in found[0]],)

        rows = self.datastore.write(
            self._what_insert,
            lambda conn: locked_insert(
                conn,
                self.lock_key,
                lambda: conn.execute(
                    statement, params, prepare=True, binary=True
                ).fetchall(),
            ),
            stored,
        )
        ids = [row[0] for row in rows if row[0] is not None]
        if not ids:
            raise self._tracking_conflict(tracking)
        self.datastore.notify(self.channel, self.tracking_channel)
        return ids
