"""A system for the partitioned-processing tests and benchmarks (importable by
``esox run`` processes): ``Orders`` leads, ``Handling`` follows it
(tests/system/test_partitions.py, the "partitions" family of ``esox bench``
and benches/bench_partitions.py).

``Handling`` records one ``Handled`` event per upstream event, with a fresh
id (so a duplicate would be recorded, not refused) naming the upstream
aggregate, its version and notification id, and the process that did it.
Its policy burns ``HANDLING_BURN_MS`` milliseconds of CPU per event.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from esox import Aggregate, Application, event
from esox.application import ProcessingEvent
from esox.system import ProcessApplication, System, singledispatchmethod


class Order(Aggregate):
    @event("Placed")
    def __init__(self, label: str) -> None:
        self.label = label
        self.steps = 0

    @event("Stepped")
    def step(self) -> None:
        self.steps += 1


class Orders(Application[UUID]):
    def place(self, count: int) -> list[UUID]:
        orders = [Order(f"order {i}") for i in range(count)]
        self.save(*orders)
        return [o.id for o in orders]

    def step(self, order_ids: list[UUID]) -> None:
        orders: list[Order] = [self.repository.get(i) for i in order_ids]
        for order in orders:
            order.step()
        self.save(*orders)


@dataclass
class Handled(Aggregate):
    source_id: UUID
    source_version: int
    notification_id: int
    pid: int


def burn(seconds: float) -> None:
    """Spend ``seconds`` of this thread's CPU time (not waiting)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


class Handling(ProcessApplication[UUID]):
    def __init__(self, env: Any = None) -> None:
        super().__init__(env)
        self.burn_seconds = float(self.env.get("BURN_MS") or 0) / 1000

    @singledispatchmethod
    def policy(
        self, domain_event: Any, processing_event: ProcessingEvent[UUID]
    ) -> None:
        if self.burn_seconds:
            burn(self.burn_seconds)
        assert processing_event.tracking is not None
        position = processing_event.tracking.notification_id
        source = (domain_event.originator_id, domain_event.originator_version)
        processing_event.collect_events(Handled(*source, position, os.getpid()))


system = System(pipes=[[Orders, Handling]])


def esox_run_command(*options: str) -> list[str]:
    """The command that runs ``Handling`` as one ``esox run`` process."""
    return [
        sys.executable,
        "-m",
        "esox",
        "run",
        "esox.bench.workloads.partition_apps:system",
        "--app",
        "Handling",
        *options,
    ]
