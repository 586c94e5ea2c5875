"""In-memory persistence for eventsourcing applications (``esox.dropin.memory``).

Instead of ``eventsourcing.popo``: esox's Rust in-memory recorder, which is
thread-safe, inserts batches atomically and wakes waiters and subscribers
on commit.
"""

from __future__ import annotations

import esox.memory
from esox.dropin.factory import DropinFactory
from esox.dropin.recorders import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    TrackingRecorder,
)

__all__ = [
    "Factory",
    "MemoryAggregateRecorder",
    "MemoryApplicationRecorder",
    "MemoryFactory",
    "MemoryProcessRecorder",
    "MemoryTrackingRecorder",
]


class MemoryAggregateRecorder(AggregateRecorder):
    """Stored events of aggregates, kept in memory."""

    def __init__(self) -> None:
        super().__init__(esox.memory.MemoryAggregateRecorder())


class MemoryApplicationRecorder(ApplicationRecorder):
    """Stored events and notifications, kept in memory."""

    def __init__(self) -> None:
        super().__init__(esox.memory.MemoryApplicationRecorder())


class MemoryTrackingRecorder(TrackingRecorder):
    """Tracking positions, kept in memory."""

    def __init__(self) -> None:
        super().__init__(esox.memory.MemoryTrackingRecorder())


class MemoryProcessRecorder(ProcessRecorder):
    """Stored events, notifications and tracking positions, kept in memory."""

    def __init__(self) -> None:
        super().__init__(esox.memory.MemoryProcessRecorder())


class MemoryFactory(DropinFactory[MemoryTrackingRecorder]):
    """Builds in-memory recorders: nothing survives the process."""

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        """A recorder of one kind of aggregate record."""
        return MemoryAggregateRecorder()

    def application_recorder(self) -> ApplicationRecorder:
        """The application's recorder of events and notifications."""
        cls = self.recorder_class(
            self.APPLICATION_RECORDER_TOPIC, MemoryApplicationRecorder
        )
        return cls()

    def tracking_recorder(
        self, tracking_recorder_class: type[MemoryTrackingRecorder] | None = None
    ) -> MemoryTrackingRecorder:
        """A recorder of tracking positions (``TRACKING_RECORDER_TOPIC``)."""
        cls = self.tracking_class(tracking_recorder_class, MemoryTrackingRecorder)
        return cls()

    def process_recorder(self) -> ProcessRecorder:
        """A recorder of events and tracking in one step."""
        cls = self.recorder_class(self.PROCESS_RECORDER_TOPIC, MemoryProcessRecorder)
        return cls()


Factory = MemoryFactory
"""eventsourcing's name for a module's factory (``esox.dropin.memory:Factory``)."""
