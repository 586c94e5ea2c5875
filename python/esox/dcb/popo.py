"""eventsourcing's name for the in-memory DCB recorder: ``esox.dcb.popo`` is
``esox.dcb.memory``."""

from esox.dcb.memory import (
    InMemoryDCBFactory,
    InMemoryDCBRecorder,
    InMemoryDCBSubscription,
    SimpleDCBReadResponse,
)

__all__ = [
    "InMemoryDCBFactory",
    "InMemoryDCBRecorder",
    "InMemoryDCBSubscription",
    "SimpleDCBReadResponse",
]
