"""Where esox meets eventsourcing: records and exceptions, converted cheaply.

eventsourcing's records are frozen dataclasses, compared by class and fields,
so the drop-in hands out exactly those classes. They are built the way
eventsourcing's own mapper builds events (``object.__new__`` and one
``__dict__`` assignment), which costs half of calling the dataclass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

import eventsourcing.persistence as es

from esox import _core
from esox.domain import EventSourcingError
from esox.persistence import errors

__all__ = [
    "EsoxError",
    "core_stored_events",
    "core_tracking",
    "es_notification",
    "es_notifications",
    "es_recording",
    "es_stored_event",
    "es_stored_events",
    "reraise",
    "translated",
]

EsoxError = EventSourcingError
"""The base class of every exception esox raises."""

_new = object.__new__
_set = object.__setattr__
_CoreStoredEvent = _core.StoredEvent
_EsStoredEvent = es.StoredEvent
_EsNotification = es.Notification
_EsRecording = es.Recording


def _check_dict_construction() -> None:
    """Fail at import, not later, if eventsourcing's records change shape."""
    values: dict[str, Any] = {
        "originator_id": "id",
        "originator_version": 1,
        "topic": "t",
        "state": b"",
        "id": 1,
        "domain_event": None,
        "notification": None,
    }
    for cls in (_EsStoredEvent, _EsNotification, _EsRecording):
        fields = {name: values[name] for name in cls.__dataclass_fields__}
        record = _new(cls)
        _set(record, "__dict__", fields)
        if record != cls(**fields):  # pragma: no cover
            msg = f"unsupported eventsourcing version: {cls.__qualname__}"
            raise ImportError(msg)


_check_dict_construction()


def es_stored_event(record: Any) -> es.StoredEvent:
    """eventsourcing's StoredEvent with the fields of ``record``."""
    event = _new(_EsStoredEvent)
    _set(
        event,
        "__dict__",
        {
            "originator_id": record.originator_id,
            "originator_version": record.originator_version,
            "topic": record.topic,
            "state": record.state,
        },
    )
    return event


def es_stored_events(records: Iterable[Any]) -> list[es.StoredEvent]:
    """eventsourcing's StoredEvents with the fields of ``records``."""
    out: list[es.StoredEvent] = []
    append = out.append
    for record in records:
        event = _new(_EsStoredEvent)
        _set(
            event,
            "__dict__",
            {
                "originator_id": record.originator_id,
                "originator_version": record.originator_version,
                "topic": record.topic,
                "state": record.state,
            },
        )
        append(event)
    return out


def es_notification(record: Any, notification_id: int | None = None) -> es.Notification:
    """eventsourcing's Notification of ``record`` (its ``id``, or the one given)."""
    notification = _new(_EsNotification)
    _set(
        notification,
        "__dict__",
        {
            "originator_id": record.originator_id,
            "originator_version": record.originator_version,
            "topic": record.topic,
            "state": record.state,
            "id": record.id if notification_id is None else notification_id,
        },
    )
    return notification


def es_notifications(records: Iterable[_core.Notification]) -> list[es.Notification]:
    """eventsourcing's Notifications with the fields of esox's."""
    out: list[es.Notification] = []
    append = out.append
    for record in records:
        notification = _new(_EsNotification)
        _set(
            notification,
            "__dict__",
            {
                "originator_id": record.originator_id,
                "originator_version": record.originator_version,
                "topic": record.topic,
                "state": record.state,
                "id": record.id,
            },
        )
        append(notification)
    return out


def es_recording(domain_event: Any, notification: es.Notification) -> es.Recording[Any]:
    """eventsourcing's Recording of a domain event."""
    recording: es.Recording[Any] = _new(_EsRecording)
    _set(
        recording,
        "__dict__",
        {"domain_event": domain_event, "notification": notification},
    )
    return recording


def core_stored_events(stored_events: Sequence[Any]) -> list[_core.StoredEvent]:
    """esox's StoredEvents with the fields of eventsourcing's (or esox's)."""
    core = _CoreStoredEvent
    return [
        s
        if type(s) is core
        else core(s.originator_id, s.originator_version, s.topic, s.state)
        for s in stored_events
    ]


def core_tracking(tracking: Any) -> _core.Tracking | None:
    """esox's Tracking with the fields of eventsourcing's (None stays None)."""
    if tracking is None or type(tracking) is _core.Tracking:
        return tracking
    return _core.Tracking(tracking.application_name, tracking.notification_id)


# esox's exceptions and the eventsourcing classes they become (same names).
_ERRORS: dict[type[BaseException], type[Exception]] = {
    errors.PersistenceError: es.PersistenceError,
    errors.InterfaceError: es.InterfaceError,
    errors.DatabaseError: es.DatabaseError,
    errors.DataError: es.DataError,
    errors.OperationalError: es.OperationalError,
    errors.RecordConflictError: es.RecordConflictError,
    errors.IntegrityError: es.IntegrityError,
    errors.InternalError: es.InternalError,
    errors.ProgrammingError: es.ProgrammingError,
    errors.NotSupportedError: es.NotSupportedError,
    errors.WaitInterruptedError: es.WaitInterruptedError,
    errors.MapperDeserialisationError: es.MapperDeserialisationError,
    errors.TranscodingNotRegisteredError: es.TranscodingNotRegisteredError,
}


def translated(error: BaseException) -> BaseException:
    """eventsourcing's exception for an esox one (same message), else ``error``."""
    for cls in type(error).__mro__:
        target = _ERRORS.get(cls)
        if target is not None:
            return target(*error.args)
    return error


def reraise(error: BaseException) -> NoReturn:
    """Raise eventsourcing's exception for ``error``, caused by it."""
    translation = translated(error)
    if translation is error:
        raise error
    raise translation from error
