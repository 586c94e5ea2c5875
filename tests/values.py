"""What the mapper and application tests share: a value object with its custom
transcoding, an event that carries any value, and a check that one mapper
round-trips events in several threads at once."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from esox.persistence.transcoding import Transcoding


@dataclass(frozen=True)
class Money:
    """A value object, stored through a custom transcoding."""

    amount: Decimal
    currency: str


class MoneyAsDict(Transcoding):
    type = Money
    name = "money"

    def encode(self, obj: Money) -> dict[str, Any]:
        return {"amount": obj.amount, "currency": obj.currency}

    def decode(self, data: dict[str, Any]) -> Money:
        return Money(**data)


@dataclass(frozen=True)
class Happened:
    """An event: anything with an originator id and version in its __dict__."""

    originator_id: UUID
    originator_version: int
    value: Any


def assert_round_trips_in_threads(
    mapper: Any, events: list[Any], *, threads: int, times: int, timeout: float
) -> None:
    """``threads`` threads each map ``events`` to stored events and back
    ``times`` times with the one ``mapper``, and get the events back each time."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(times):
                stored = mapper.to_stored_events(events)
                assert mapper.to_domain_events(stored) == events
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=timeout)
    assert not errors
    assert not any(worker.is_alive() for worker in workers)
