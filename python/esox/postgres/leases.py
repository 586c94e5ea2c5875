"""Partition leases in PostgreSQL: which process of a partitioned follower works where.

A follower run as several processes splits its upstream into a fixed number
of partitions. Two tables, named after the follower, hold who works on what:

- ``<name>_workers (worker text PRIMARY KEY, expires_at timestamptz)``: each
  process renews its row at every heartbeat;
- ``<name>_leases (partition integer PRIMARY KEY, owner text, expires_at
  timestamptz)``: one row per partition, seeded when the table is created
  (their number is the follower's partition count, checked at start).

At each heartbeat a process, in one transaction serialised with the others'
by an advisory lock: renews its worker row; reads the live workers (rows not
expired, by the server's clock, so hosts' clocks need not agree); works out
the partitions it should hold (partition ``p`` goes to the ``p % n``-th live
worker, by name); gives up the leases it holds but should not; and takes or
renews the leases it should hold that are free, expired or its own. A
process that dies stops renewing: after ``ttl`` seconds its worker row and
leases have expired and the others' next heartbeats share its partitions.
A process that joins is counted at once; the others release its share at
their next heartbeat, and it takes them at its own.

Leases share the work; they do not make processing exactly-once. That is the
tracking table's job (each partition's position recorded in the transaction
of what its events caused): two processes that both believe they hold a
partition, for a moment, cannot both record the same event.
"""

from __future__ import annotations

import math
import os
import socket
import uuid

from esox.persistence.errors import ProgrammingError
from esox.postgres.datastore import Connection, PostgresDatastore
from esox.postgres.identifiers import check_identifier, quote

__all__ = ["PartitionLeases", "assign_partitions", "new_worker_id"]

MAX_PARTITIONS = 4096


def new_worker_id() -> str:
    """A name for this process among the workers: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def assign_partitions(workers: list[str], partitions: int, worker: str) -> set[int]:
    """The partitions ``worker`` should hold when ``workers`` are live."""
    live = sorted(set(workers))
    if worker not in live:
        return set()
    index, count = live.index(worker), len(live)
    return {p for p in range(partitions) if p % count == index}


def check_partitions(partitions: object) -> int:
    """``partitions`` as a partition count, or a ValueError naming what is wrong."""
    if type(partitions) is not int or not 1 <= partitions <= MAX_PARTITIONS:
        msg = (
            f"partitions must be an int from 1 to {MAX_PARTITIONS}, not {partitions!r}"
        )
        raise ValueError(msg)
    return partitions


class PartitionLeases:
    """One process's view of a partitioned follower's leases in PostgreSQL."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        name: str,
        partitions: int,
        ttl: float = 6.0,
        worker_id: str | None = None,
    ) -> None:
        self.datastore = datastore
        self.partitions = check_partitions(partitions)
        if not (isinstance(ttl, int | float) and math.isfinite(ttl) and ttl > 0):
            msg = f"ttl must be a positive number of seconds, not {ttl!r}"
            raise ValueError(msg)
        self.ttl = float(ttl)
        self.worker_id = worker_id or new_worker_id()
        self.name = name
        prefix = name.lower()
        schema = datastore.schema
        self.leases_table = check_identifier(f"{prefix}_leases", "leases table name")
        self.workers_table = check_identifier(f"{prefix}_workers", "workers table name")
        self._leases = quote(schema, self.leases_table)
        self._workers = quote(schema, self.workers_table)
        self._lock_key = f"esox:leases:{schema}.{self.leases_table}"
        self.wanted: frozenset[int] = frozenset()
        """The partitions this worker should hold, as of its last heartbeat."""

    def create_tables(self) -> None:
        """Create the two tables if missing; refuse a different partition count."""
        partitions = self.partitions

        def create(conn: Connection) -> None:
            with conn.transaction():
                self._lock(conn)
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._workers} "
                    "(worker text PRIMARY KEY, expires_at timestamptz NOT NULL)"
                )
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._leases} "
                    "(partition integer PRIMARY KEY, owner text, "
                    "expires_at timestamptz NOT NULL DEFAULT '-infinity')"
                )
                row = conn.execute(
                    f"SELECT count(*), max(partition) FROM {self._leases}"
                ).fetchone()
                count = row[0] if row else 0
                if count == 0:
                    conn.execute(
                        f"INSERT INTO {self._leases} (partition) "
                        "SELECT generate_series(0, %s - 1)",
                        (partitions,),
                    )
                elif count != partitions or (row and row[1] != partitions - 1):
                    msg = (
                        f"{self.name} is partitioned {count} ways in "
                        f"{self._leases}, not {partitions}: run every process "
                        f"with --partitions {count} (changing the count needs "
                        "every process stopped, and the tracking moved)"
                    )
                    raise ProgrammingError(msg)

        self.datastore.write(f"create_table {self._leases}", create)

    def _lock(self, conn: Connection) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._lock_key,))

    def heartbeat(self) -> frozenset[int]:
        """Renew this worker, rebalance, and return the partitions it now holds."""
        ttl = self.ttl

        def beat(conn: Connection) -> frozenset[int]:
            with conn.transaction():
                # One heartbeat at a time: lease rows are then never locked
                # in two orders at once (no deadlocks), and each heartbeat
                # sees the leases the previous one left.
                self._lock(conn)
                conn.execute(
                    f"INSERT INTO {self._workers} (worker, expires_at) "
                    "VALUES (%s, now() + make_interval(secs => %s)) "
                    "ON CONFLICT (worker) DO UPDATE SET expires_at = "
                    "EXCLUDED.expires_at",
                    (self.worker_id, ttl),
                )
                # Long-dead workers' rows are only clutter.
                conn.execute(
                    f"DELETE FROM {self._workers} "
                    "WHERE expires_at < now() - make_interval(secs => %s)",
                    (max(ttl * 10, 60.0),),
                )
                live = [
                    row[0]
                    for row in conn.execute(
                        f"SELECT worker FROM {self._workers} WHERE expires_at > now()"
                    ).fetchall()
                ]
                wanted = sorted(
                    assign_partitions(live, self.partitions, self.worker_id)
                )
                self.wanted = frozenset(wanted)
                conn.execute(
                    f"UPDATE {self._leases} SET owner = NULL, expires_at = now() "
                    "WHERE owner = %s AND NOT (partition = ANY(%s))",
                    (self.worker_id, wanted),
                )
                rows = conn.execute(
                    f"UPDATE {self._leases} SET owner = %s, "
                    "expires_at = now() + make_interval(secs => %s) "
                    "WHERE partition = ANY(%s) AND "
                    "(owner = %s OR owner IS NULL OR expires_at <= now()) "
                    "RETURNING partition",
                    (self.worker_id, ttl, wanted, self.worker_id),
                ).fetchall()
                return frozenset(row[0] for row in rows)

        return self.datastore.write(f"heartbeat of {self._leases}", beat)

    def release(self) -> None:
        """Give up this worker's leases and leave (a clean stop): the others
        take its partitions at their next heartbeat, without waiting for ``ttl``."""

        def leave(conn: Connection) -> None:
            with conn.transaction():
                self._lock(conn)
                conn.execute(
                    f"UPDATE {self._leases} SET owner = NULL, expires_at = now() "
                    "WHERE owner = %s",
                    (self.worker_id,),
                )
                conn.execute(
                    f"DELETE FROM {self._workers} WHERE worker = %s",
                    (self.worker_id,),
                )

        self.datastore.write(f"release of {self._leases}", leave)

    def owners(self) -> dict[int, str | None]:
        """Each partition's current lease holder (None: free or expired)."""

        def select(conn: Connection) -> dict[int, str | None]:
            rows = conn.execute(
                f"SELECT partition, CASE WHEN expires_at > now() THEN owner END "
                f"FROM {self._leases} ORDER BY partition"
            ).fetchall()
            return {row[0]: row[1] for row in rows}

        return self.datastore.read(f"owners of {self._leases}", select)
