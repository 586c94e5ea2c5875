"""The workloads' domain model and system for eventsourcing 9.x (twins of
``esox.bench.models``), and its SQLite persistence with ``synchronous=NORMAL``.

Imported only when eventsourcing is installed.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.domain import Aggregate, event
from eventsourcing.sqlite import SQLiteFactory
from eventsourcing.system import ProcessApplication, System
from eventsourcing.utils import Environment, EnvType

from esox.bench.workloads.partition_apps import burn

__all__ = [
    "Copier",
    "Dog",
    "EsHandling",
    "EsOrders",
    "Items",
    "Parcel",
    "SQLiteNormalFactory",
    "system",
]


class Dog(Aggregate):
    @event("Registered")
    def __init__(self, name: str) -> None:
        self.name = name
        self.tricks: list[str] = []

    @event("TrickAdded")
    def add_trick(self, trick: str) -> None:
        self.tricks.append(trick)


class Parcel(Aggregate):
    @event("Packed")
    def __init__(self) -> None:
        self.shipments = 0

    @event("Shipped")
    def ship(
        self,
        parcel_id: UUID,
        carrier: str,
        weight_kg: float,
        items: int,
        price: Decimal,
        express: bool,
        note: str | None,
        shipped_at: datetime,
        tags: list[str],
        address: dict[str, str],
    ) -> None:
        self.shipments += 1


class Item(Aggregate):
    @event("Created")
    def __init__(self, label: str) -> None:
        self.label = label


class Items(Application[UUID]):
    def create(self, labels: list[str]) -> None:
        self.save(*[Item(label) for label in labels])


class Copy(Aggregate):
    @event("Made")
    def __init__(self, label: str) -> None:
        self.label = label


class Copier(ProcessApplication[UUID]):
    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: Any) -> None:
        processing_event.collect_events(Copy(domain_event.label))


system = System(pipes=[[Items, Copier]])


class EsOrder(Aggregate):
    @event("Placed")
    def __init__(self, label: str) -> None:
        self.label = label


class EsOrders(Application[UUID]):
    """The twin of ``esox.bench.workloads.partition_apps.Orders``."""

    name = "Orders"

    def place(self, count: int) -> None:
        self.save(*[EsOrder(f"order {i}") for i in range(count)])


class EsHandled(Aggregate):
    @event("Done")
    def __init__(self, source_id: UUID, notification_id: int) -> None:
        self.source_id = source_id
        self.notification_id = notification_id


class EsHandling(ProcessApplication[UUID]):
    """The twin of ``esox.bench.workloads.partition_apps.Handling``: burns
    ``HANDLING_BURN_MS`` of CPU per event, records one event."""

    name = "Handling"

    def __init__(self, env: EnvType | None = None) -> None:
        super().__init__(env)
        self.burn_seconds = float(self.env.get("BURN_MS") or 0) / 1000

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: Any) -> None:
        if self.burn_seconds:
            burn(self.burn_seconds)
        processing_event.collect_events(
            EsHandled(
                domain_event.originator_id, processing_event.tracking.notification_id
            )
        )


class SQLiteNormalFactory(SQLiteFactory):
    """eventsourcing's SQLite persistence with ``PRAGMA synchronous=NORMAL``.

    eventsourcing has no setting for it; the benchmark sets it on each new
    connection so that both libraries run at the same durability.
    """

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        pool: Any = self.datastore.pool
        create = pool._create_connection

        def create_normal() -> Any:
            connection = create()
            raw: sqlite3.Connection = connection._sqlite_conn
            raw.execute("PRAGMA synchronous=NORMAL")
            return connection

        pool._create_connection = create_normal
