"""The base of the drop-in factories, and the event store they construct."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import eventsourcing.persistence as es
from eventsourcing.domain import DomainEventProtocol, TAggregateID
from eventsourcing.utils import resolve_topic, strtobool

from esox.dropin.boundary import (
    core_stored_events,
    es_notification,
    es_recording,
    es_stored_events,
)
from esox.dropin.mapper import Mapper
from esox.dropin.recorders import AggregateRecorder, TableRecorder, TrackingRecorder
from esox.persistence.errors import InfrastructureFactoryError
from esox.persistence.factory import InfrastructureFactory
from esox.utils import Environment

__all__ = ["DropinFactory", "EventStore"]

T = TypeVar("T", bound=TrackingRecorder)
R = TypeVar("R")
TR = TypeVar("TR", bound=TableRecorder)
F = TypeVar("F", bound=InfrastructureFactory[Any])


class EventStore(es.EventStore[TAggregateID]):
    """eventsourcing's EventStore that crosses into Rust once per batch.

    With a drop-in recorder, domain events become esox's stored events and
    back without ever being eventsourcing's StoredEvent objects in between.
    """

    def put(
        self, domain_events: Sequence[DomainEventProtocol[TAggregateID]], **kwargs: Any
    ) -> list[es.Recording[TAggregateID]]:
        """Store events (one atomic batch); return their recordings."""
        recorder = self.recorder
        if not isinstance(recorder, AggregateRecorder):
            return super().put(domain_events, **kwargs)
        mapper = self.mapper
        if isinstance(mapper, Mapper):
            records = mapper.to_stored_records(domain_events)
        else:
            records = core_stored_events(
                [mapper.to_stored_event(event) for event in domain_events]
            )
        notification_ids = recorder.insert_records(records, **kwargs)
        if not notification_ids:
            return []
        return [
            es_recording(event, es_notification(record, notification_id))
            for event, record, notification_id in zip(
                domain_events, records, notification_ids, strict=True
            )
        ]

    def get(
        self,
        originator_id: TAggregateID,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Iterator[DomainEventProtocol[TAggregateID]]:
        """Retrieve one aggregate's domain events, by version."""
        recorder = self.recorder
        if not isinstance(recorder, AggregateRecorder):
            return super().get(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)
        records = recorder.select_records(
            originator_id, gt=gt, lte=lte, desc=desc, limit=limit
        )
        mapper = self.mapper
        if isinstance(mapper, Mapper):
            return iter(mapper.to_domain_events(records))
        return map(mapper.to_domain_event, es_stored_events(records))


class DropinFactory(es.InfrastructureFactory[T]):
    """Base class of the drop-in factories: esox's mapper and event store.

    Generic, so that eventsourcing, looking for the one factory class in a
    persistence module, never counts it.
    """

    CREATE_TABLE = "CREATE_TABLE"
    SINGLE_ROW_TRACKING = "SINGLE_ROW_TRACKING"

    def esox_factory_of(self, factory_class: type[F]) -> F:
        """esox's own factory over the same settings (it reads and checks them
        all, in its one style): its errors are the OSError eventsourcing raises.
        ``SINGLE_ROW_TRACKING=no`` is refused: esox keeps one tracking row per
        upstream application."""
        if not strtobool(self.env.get(self.SINGLE_ROW_TRACKING) or "t"):
            msg = (
                f"{self.SINGLE_ROW_TRACKING}=no is not supported: esox keeps one "
                "tracking row per upstream application"
            )
            raise OSError(msg)
        try:
            return factory_class(Environment(self.env.name, dict(self.env)))
        except InfrastructureFactoryError as e:
            raise OSError(str(e)) from e

    def mapper(
        self,
        transcoder: es.Transcoder | None = None,
        mapper_class: type[es.Mapper[TAggregateID]] | None = None,
    ) -> es.Mapper[TAggregateID]:
        """The mapper: esox's (Rust), unless ``MAPPER_TOPIC`` names another."""
        if mapper_class is None and not self.env.get(self.MAPPER_TOPIC):
            mapper_class = Mapper
        return super().mapper(transcoder=transcoder, mapper_class=mapper_class)

    def event_store(
        self,
        mapper: es.Mapper[TAggregateID] | None = None,
        recorder: es.AggregateRecorder | None = None,
    ) -> es.EventStore[TAggregateID]:
        """An event store over the given (or new) mapper and recorder."""
        return EventStore(
            mapper=mapper or self.mapper(),
            recorder=recorder or self.application_recorder(),
        )

    def env_create_table(self) -> bool:
        """Whether to create missing tables (``CREATE_TABLE``, default yes)."""
        default = "yes"
        return bool(strtobool(self.env.get(self.CREATE_TABLE, default) or default))

    def created(self, recorder: TR) -> TR:
        """``recorder``, with its tables created unless ``CREATE_TABLE`` says no."""
        if self.env_create_table():
            recorder.create_table()
        return recorder

    def recorder_class(self, key: str, default: type[R]) -> type[R]:
        """The recorder class named by the topic in ``key``, else ``default``."""
        topic = self.env.get(key)
        if not topic:
            return default
        cls = resolve_topic(topic)
        self.check_recorder_class(cls, default)
        return cls  # type: ignore[no-any-return]

    def tracking_class(self, given: type[R] | None, default: type[R]) -> type[R]:
        """The tracking recorder class: ``given`` (a subclass of ``default``),
        else the one ``TRACKING_RECORDER_TOPIC`` names, else ``default``."""
        if given is None:
            return self.recorder_class(self.TRACKING_RECORDER_TOPIC, default)
        self.check_recorder_class(given, default)
        return given

    @staticmethod
    def check_recorder_class(cls: object, base: type[Any]) -> None:
        """InfrastructureFactoryError unless ``cls`` is a subclass of ``base``."""
        if not (isinstance(cls, type) and issubclass(cls, base)):
            msg = f"{cls!r} is not a subclass of {base.__module__}.{base.__qualname__}"
            raise es.InfrastructureFactoryError(msg)
