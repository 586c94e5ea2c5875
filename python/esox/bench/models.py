"""The domain model and system the workloads run, for esox.

``esox.bench.es_models`` holds the same classes for eventsourcing 9.x.
``Dog`` is the README's aggregate; ``Parcel``'s ``Shipped`` events have ten
attributes of mixed types; ``Items -> Copier`` is a two-application system
whose follower records one event per event it processes.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from esox import Aggregate, Application, event
from esox.application import ProcessingEvent
from esox.system import ProcessApplication, System, singledispatchmethod

__all__ = ["Copier", "Copy", "Dog", "Item", "Items", "Parcel", "system"]


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
    def policy(
        self, domain_event: Any, processing_event: ProcessingEvent[UUID]
    ) -> None:
        processing_event.collect_events(Copy(domain_event.label))


system = System(pipes=[[Items, Copier]])
