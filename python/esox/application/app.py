"""The application: the object a developer writes, wiring domain to persistence."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar, cast

from esox.application.notificationlog import LocalNotificationLog
from esox.application.repository import (
    ProjectorFunction,
    Repository,
    project_aggregate,
)
from esox.domain import BaseAggregate, DomainEvent, ProgrammingError
from esox.domain.protocols import TAggregateID
from esox.persistence import (
    ApplicationRecorder,
    EventStore,
    InfrastructureFactory,
    JSONTranscoder,
    Mapper,
    Recording,
    Tracking,
    Transcoder,
)
from esox.utils import Closing, Environment, EnvType

__all__ = ["Application", "ProcessingEvent"]


class ProcessingEvent(Generic[TAggregateID]):
    """New events to record together, with the tracking position that caused them."""

    def __init__(self, tracking: Tracking | None = None) -> None:
        self.tracking = tracking
        self.events: list[Any] = []
        self.saved_kwargs: dict[str, Any] = {}
        # The aggregates collected, in order, until someone asks for them by
        # id: then a dict, kept from there on. Saving does not ask unless it
        # caches or snapshots, so most saves hash no id.
        self._collected: list[BaseAggregate[Any]] = []
        self._by_id: dict[Any, BaseAggregate[Any]] | None = None

    @property
    def aggregates(self) -> dict[Any, BaseAggregate[Any]]:
        """The aggregates collected, by id (the last one collected of an id);
        a dict that later collections update, as eventsourcing's."""
        if self._by_id is None:
            self._by_id = {aggregate.id: aggregate for aggregate in self._collected}
            self._collected = []
        return self._by_id

    @aggregates.setter
    def aggregates(self, aggregates: dict[Any, BaseAggregate[Any]]) -> None:
        self._by_id, self._collected = aggregates, []

    def collect_events(
        self, *objs: BaseAggregate[Any] | DomainEvent | None, **kwargs: Any
    ) -> None:
        """Collect the pending events of aggregates (or take events as given)."""
        events, by_id = self.events, self._by_id
        for obj in objs:
            if obj is None:
                continue
            if isinstance(obj, DomainEvent):
                events.append(obj)
                continue
            collect = getattr(obj, "collect_events", None)
            if collect is None and hasattr(obj, "originator_version"):
                # An event of another kind (a pydantic model, say).
                events.append(obj)
                continue
            if collect is not None:
                events.extend(collect())
            if by_id is None:
                self._collected.append(obj)
            else:
                by_id[obj.id] = obj
        if kwargs:
            self.saved_kwargs.update(kwargs)

    def save(
        self, *objs: BaseAggregate[Any] | DomainEvent | None, **kwargs: Any
    ) -> None:
        """Deprecated (as in eventsourcing): use ``collect_events()``."""
        warnings.warn(
            "'save()' is deprecated, use 'collect_events()' instead",
            DeprecationWarning,
            stacklevel=2,
        )
        self.collect_events(*objs, **kwargs)


class Application(Closing, Generic[TAggregateID]):
    """Base class of event-sourced applications.

    Configured by ``env`` (class attribute, then ``os.environ``, then the
    constructor's ``env``; each name may be prefixed with the upper-cased
    application name).
    """

    name: ClassVar[str] = "Application"
    env: ClassVar[dict[str, str]] = {}
    is_snapshotting_enabled: ClassVar[bool] = False
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {}
    snapshotting_projectors: ClassVar[dict[type[Any], ProjectorFunction[Any, Any]]] = {}
    snapshot_class: ClassVar[type[Any] | None] = None
    """The snapshot class for aggregates that have no ``Snapshot`` of their own."""
    log_section_size: ClassVar[int] = 10

    AGGREGATE_CACHE_MAXSIZE = "AGGREGATE_CACHE_MAXSIZE"
    AGGREGATE_CACHE_FASTFORWARD = "AGGREGATE_CACHE_FASTFORWARD"
    AGGREGATE_CACHE_FASTFORWARD_SKIPPING = "AGGREGATE_CACHE_FASTFORWARD_SKIPPING"
    DEEPCOPY_FROM_AGGREGATE_CACHE = "DEEPCOPY_FROM_AGGREGATE_CACHE"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    def __init__(self, env: EnvType | None = None) -> None:
        self.env = self.construct_env(self.name, env)  # type: ignore[misc]
        self.factory = self.construct_factory(self.env)
        self.mapper = self.construct_mapper()
        self.recorder = self.construct_recorder()
        self.events: EventStore[TAggregateID] = self.construct_event_store()
        self.snapshots: EventStore[TAggregateID] | None = None
        if self.factory.is_snapshotting_enabled():
            self.snapshots = self.construct_snapshot_store()
        self._repository: Repository[TAggregateID] = self.construct_repository()
        self._notification_log = self.construct_notification_log()

    @property
    def repository(self) -> Repository[TAggregateID]:
        """Gets aggregates from their stored events."""
        return self._repository

    @property
    def notification_log(self) -> LocalNotificationLog:
        """All the application's events, in the order they were recorded."""
        return self._notification_log

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        """Merge class ``env``, ``os.environ`` and the given ``env`` (later wins)."""
        return type(self).settings(env, name=name)

    @classmethod
    def settings(cls, env: EnvType | None = None, *, name: str = "") -> Environment:
        """What an application of this class reads (``construct_env``), without
        constructing one: how a follower in another process reads its upstream
        application's database. ``name`` defaults to the class's name."""
        merged = dict(cls.env)
        if cls.is_snapshotting_enabled or cls.snapshotting_intervals:
            merged["IS_SNAPSHOTTING_ENABLED"] = "y"
        merged.update(os.environ)
        if env is not None:
            merged.update(env)
        return Environment(name or cls.name, merged)

    def construct_factory(self, env: Environment) -> InfrastructureFactory[Any]:
        """The infrastructure factory that ``PERSISTENCE_MODULE`` names."""
        return InfrastructureFactory.construct(env)

    def construct_mapper(self) -> Mapper[Any]:
        """The mapper, with this application's transcodings registered."""
        return self.factory.mapper(transcoder=self.construct_transcoder())

    def construct_transcoder(self) -> Transcoder:
        """The transcoder; a JSONTranscoder gets ``register_transcodings``."""
        transcoder = self.factory.transcoder()
        if isinstance(transcoder, JSONTranscoder):
            self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        """Register custom transcodings: ``transcoder.register(MyTranscoding())``."""

    def construct_recorder(self) -> ApplicationRecorder:
        """The application recorder."""
        return self.factory.application_recorder()

    def construct_event_store(self) -> EventStore[TAggregateID]:
        """The event store of aggregate events."""
        return self.factory.event_store(mapper=self.mapper, recorder=self.recorder)

    def construct_snapshot_store(self) -> EventStore[TAggregateID]:
        """The event store of snapshots (a separate recorder)."""
        recorder = self.factory.aggregate_recorder(purpose="snapshots")
        return self.factory.event_store(mapper=self.mapper, recorder=recorder)

    def construct_repository(self) -> Repository[TAggregateID]:
        """The repository, with the cache that ``AGGREGATE_CACHE_*`` describe."""
        env = cast(Environment, self.env)
        cache_maxsize = None  # no cache, unless set (0 or less: unbounded)
        if env.is_set(self.AGGREGATE_CACHE_MAXSIZE):
            cache_maxsize = env.read_int(self.AGGREGATE_CACHE_MAXSIZE, 0)
        return Repository(
            self.events,
            snapshot_store=self.snapshots,
            cache_maxsize=cache_maxsize,
            fastforward=env.read_bool(self.AGGREGATE_CACHE_FASTFORWARD, default=True),
            fastforward_skipping=env.read_bool(
                self.AGGREGATE_CACHE_FASTFORWARD_SKIPPING, default=False
            ),
            deepcopy_from_cache=env.read_bool(
                self.DEEPCOPY_FROM_AGGREGATE_CACHE, default=True
            ),
        )

    def construct_notification_log(self) -> LocalNotificationLog:
        """The notification log."""
        return LocalNotificationLog(self.recorder, section_size=self.log_section_size)

    def save(
        self, *objs: BaseAggregate[Any] | DomainEvent | None, **kwargs: Any
    ) -> list[Recording[TAggregateID]]:
        """Record the pending events of the given aggregates in one atomic batch."""
        processing_event: ProcessingEvent[TAggregateID] = ProcessingEvent()
        processing_event.collect_events(*objs, **kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    def _record(
        self, processing_event: ProcessingEvent[TAggregateID]
    ) -> list[Recording[TAggregateID]]:
        """Put the processing event's events (and tracking) in the event store."""
        recordings = self.events.put(
            processing_event.events,
            tracking=processing_event.tracking,
            **processing_event.saved_kwargs,
        )
        if self.repository.caches_saved:
            self.repository.cache_saved(processing_event.aggregates.values())
        return recordings

    def _take_snapshots(self, processing_event: ProcessingEvent[TAggregateID]) -> None:
        if self.snapshots is None or not self.snapshotting_intervals:
            return
        aggregates = processing_event.aggregates
        for event in processing_event.events:
            aggregate = aggregates.get(event.originator_id)
            if aggregate is None:
                continue
            interval = self.snapshotting_intervals.get(type(aggregate))
            if not interval or event.originator_version % interval:
                continue
            projector = self.snapshotting_projectors.get(type(aggregate))
            if projector is None:
                if not callable(getattr(event, "mutate", None)):
                    msg = (
                        f"Cannot take snapshot for {type(aggregate)} with default "
                        f"project_aggregate() function, because its domain event "
                        f"{type(event)} does not implement the 'can mutate' "
                        "protocol (see CanMutateProtocol). Please define "
                        f"application class {type(self)} with class variable "
                        f"'snapshotting_projectors', to be a dict that has "
                        f"{type(aggregate)} as a key with the aggregate projector "
                        f"function for {type(aggregate)} as the value for that key."
                    )
                    raise ProgrammingError(msg)
                projector = project_aggregate
            self.take_snapshot(
                aggregate.id, version=event.originator_version, projector_func=projector
            )

    def take_snapshot(
        self,
        aggregate_id: TAggregateID,
        version: int | None = None,
        projector_func: ProjectorFunction[Any, Any] = project_aggregate,
    ) -> None:
        """Snapshot the recorded state of an aggregate (at ``version``)."""
        if self.snapshots is None:
            msg = (
                "Can't take snapshot without snapshots store. Please set "
                "environment variable IS_SNAPSHOTTING_ENABLED to a true value "
                "(e.g. 'y'), or set 'is_snapshotting_enabled' on application "
                "class, or set 'snapshotting_intervals' on application class."
            )
            raise AssertionError(msg)
        aggregate = self.repository.get(
            aggregate_id, version=version, projector_func=projector_func
        )
        snapshot_class = getattr(type(aggregate), "Snapshot", type(self).snapshot_class)
        if snapshot_class is None:
            msg = (
                "Neither application nor aggregate have a snapshot class. Please "
                f"either define a nested 'Snapshot' class on {type(aggregate)} or "
                f"set class attribute 'snapshot_class' on {type(self)}."
            )
            raise AssertionError(msg)
        self.snapshots.put([snapshot_class.take(aggregate)])

    @property
    def log(self) -> LocalNotificationLog:
        """Deprecated (as in eventsourcing): use ``notification_log``."""
        warnings.warn(
            "'log' is deprecated, use 'notification_log' instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return self._notification_log

    def _notify(self, recordings: Sequence[Recording[TAggregateID]]) -> None:
        """Called after events are recorded; leaders prompt followers here."""

    def close(self) -> None:
        """Close the application's infrastructure (database connections)."""
        self.factory.close()


TApplication = TypeVar("TApplication", bound=Application[Any])
