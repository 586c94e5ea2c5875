"""The errors of the system layer."""

from __future__ import annotations

from esox.domain import EventSourcingError, ProgrammingError

__all__ = [
    "EventProcessingError",
    "NotificationConvertingError",
    "NotificationPullingError",
    "RunnerAlreadyStartedError",
    "SystemDefinitionError",
]


class SystemDefinitionError(ProgrammingError, ValueError):
    """A system's pipes are malformed, or name an application twice or not at all
    (a ProgrammingError, as eventsourcing raises for a system without a topic)."""


class RunnerAlreadyStartedError(EventSourcingError):
    """A runner was started twice."""


class EventProcessingError(EventSourcingError):
    """A follower failed to process an event; the cause is chained (``__cause__``).

    The message names the follower, the upstream application and the
    notification id, so the event can be found and the policy fixed.
    """


class NotificationPullingError(EventProcessingError):
    """A follower failed to read its upstream notification log."""


class NotificationConvertingError(EventProcessingError):
    """A follower failed to turn notifications into domain events."""
