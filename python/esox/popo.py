"""eventsourcing's name for in-memory persistence: ``esox.popo`` is
``esox.memory`` (``PERSISTENCE_MODULE=esox.popo`` selects it too)."""

from esox.memory import (
    MemoryAggregateRecorder as POPOAggregateRecorder,
)
from esox.memory import (
    MemoryApplicationRecorder as POPOApplicationRecorder,
)
from esox.memory import (
    MemoryFactory as POPOFactory,
)
from esox.memory import (
    MemoryProcessRecorder as POPOProcessRecorder,
)
from esox.memory import (
    MemoryTrackingRecorder as POPOTrackingRecorder,
)
from esox.persistence.recorders import Subscription as POPOSubscription

__all__ = [
    "POPOAggregateRecorder",
    "POPOApplicationRecorder",
    "POPOFactory",
    "POPOProcessRecorder",
    "POPOSubscription",
    "POPOTrackingRecorder",
]
