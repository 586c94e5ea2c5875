"""eventsourcing's name for the in-memory DCB recorder: ``esox.dcb.popo`` is
``esox.dcb.memory``."""

from esox.dcb.memory import (
    InMemoryDCBRecorder,
    InMemoryDCBSubscription,
    SimpleDCBReadResponse,
)

__all__ = [
    "InMemoryDCBRecorder",
    "InMemoryDCBSubscription",
    "SimpleDCBReadResponse",
]
