"""Domain events: immutable records of decisions, and the errors of the domain."""

import dataclasses
import os
import warnings
from copy import deepcopy
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    TypeVar,
    cast,
    dataclass_transform,
    get_args,
    get_origin,
)
from uuid import UUID

from esox.domain.protocols import TAggregateID
from esox.utils import TopicError, _topic_cache, get_topic, resolve_topic

if TYPE_CHECKING:
    from esox.domain.aggregate import BaseAggregate

__all__ = [
    "TZINFO",
    "AggregateCreated",
    "AggregateEvent",
    "CanCreateTimestamp",
    "CanInitAggregate",
    "CanMutateAggregate",
    "CanSnapshotAggregate",
    "DomainEvent",
    "EsoxType",
    "EventSourcingError",
    "HasOriginatorIDVersion",
    "LogEvent",
    "MetaDomainEvent",
    "OriginatorIDError",
    "OriginatorVersionError",
    "ProgrammingError",
    "Snapshot",
    "check_originator_id",
    "create_utc_datetime_now",
    "datetime_now_with_tzinfo",
    "forget_plans",
]

TZINFO: tzinfo = resolve_topic(os.getenv("TZINFO_TOPIC", "datetime:timezone.utc"))
"""The time zone of event timestamps: UTC unless ``TZINFO_TOPIC`` names another
(read once, at import, as in eventsourcing)."""

TAggregate = TypeVar("TAggregate", bound="BaseAggregate[Any]")


def datetime_now_with_tzinfo() -> datetime:
    """The current time, as an aware datetime in ``TZINFO``."""
    return datetime.now(tz=TZINFO)


def create_utc_datetime_now() -> datetime:
    """Deprecated (as in eventsourcing): use ``datetime_now_with_tzinfo()``."""
    msg = (
        "'create_utc_datetime_now()' is deprecated, "
        "use 'datetime_now_with_tzinfo()' instead"
    )
    warnings.warn(msg, DeprecationWarning, stacklevel=2)
    return datetime_now_with_tzinfo()


class EventSourcingError(Exception):
    """Base class of every esox error."""


class ProgrammingError(EventSourcingError):
    """A domain model is defined or used in a way esox cannot support."""


class OriginatorIDError(EventSourcingError):
    """An event was applied to an aggregate with a different id."""

    def __init__(self, event_id: object, aggregate_id: object) -> None:
        super().__init__(
            f"event originator_id {event_id!r} does not match aggregate id "
            f"{aggregate_id!r}"
        )


class OriginatorVersionError(EventSourcingError):
    """An event was applied out of order (its version is not the next one)."""

    def __init__(self, event_version: int, expected_version: int) -> None:
        super().__init__(
            f"event originator_version {event_version} is not the aggregate's next "
            f"version {expected_version}"
        )


_plan_caches: list[dict[type, Any]] = []
"""Per-class plans of the fast paths (creating, triggering, constructing):
forgotten whenever an attribute of an aggregate or event class is set, so a
patched method or a changed class attribute is never bypassed."""


def forget_plans() -> None:
    """Forget every per-class plan (they are worked out again when used)."""
    for cache in _plan_caches:
        cache.clear()


class EsoxType(type):
    """The metaclass of esox's domain classes (aggregates and events)."""

    def __setattr__(cls, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        forget_plans()

    def __delattr__(cls, name: str) -> None:
        super().__delattr__(name)
        forget_plans()


def _skip_reprocessing_esox_dataclasses() -> None:
    """Make ``@dataclass`` on an event class (already a frozen dataclass by its
    metaclass) a no-op, as in eventsourcing, whose users write
    ``@dataclass(frozen=True)`` on event classes. Processing a dataclass twice
    would fail (``__setattr__`` already set) or lose defaults of
    ``default_factory`` and ``init=False`` fields. Only classes of esox's
    metaclasses that are already dataclasses are skipped."""
    module = dataclasses.__dict__
    process = module["_process_class"]
    if getattr(process, "_esox_guard_", False):
        return

    def process_class(cls: type, *args: Any, **kwargs: Any) -> type:
        if isinstance(cls, EsoxType) and "__dataclass_fields__" in cls.__dict__:
            return cls
        return cast(type, process(cls, *args, **kwargs))

    process_class._esox_guard_ = True  # type: ignore[attr-defined]
    module["_process_class"] = process_class


_skip_reprocessing_esox_dataclasses()


class AbstractDecision:
    """Base of what an ``@event`` decorator may name besides aggregate events:
    the decisions of ``esox.dcb.domain`` (eventsourcing's name)."""


class CanCreateTimestamp:
    """Gives event classes ``create_timestamp()``."""

    @staticmethod
    def create_timestamp() -> datetime:
        """When an event happens: now, as an aware datetime in ``TZINFO``."""
        return datetime.now(tz=TZINFO)


class HasOriginatorIDVersion(Generic[TAggregateID]):
    """Declares ``originator_id`` and ``originator_version``; a subclass of
    ``HasOriginatorIDVersion[str]`` (or ``[UUID]``) records its id type."""

    if TYPE_CHECKING:
        # Declared for type checkers only: a runtime annotation here would be
        # the first that eventsourcing's mapper finds ("TAggregateID"), and
        # the dataclass fields are DomainEvent's.
        originator_id: TAggregateID
        originator_version: int

    originator_id_type: ClassVar[type[UUID] | type[str] | None] = None
    """``UUID`` or ``str``: how stored originator ids are read back."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "originator_id_type" in cls.__dict__:
            return
        for base in cls.__dict__.get("__orig_bases__", ()):
            # Only esox's own id-generic classes give the id type: a user's
            # generic event (``Something[ExtendedShared]``) has other type args.
            if get_origin(base) not in _ID_GENERIC_CLASSES:
                continue
            (id_type,) = get_args(base)[:1] or (Any,)
            if id_type in (UUID, str):
                cls.originator_id_type = id_type
                return
            if id_type is not Any and not isinstance(id_type, TypeVar):
                msg = f"Aggregate ID type arg cannot be {id_type}"
                raise TypeError(msg)


_ID_GENERIC_CLASSES: set[type] = {HasOriginatorIDVersion}
"""The classes whose type argument is an aggregate id type (each added as
soon as it is defined, before its subclasses)."""


class CanMutateAggregate(HasOriginatorIDVersion[TAggregateID], CanCreateTimestamp):
    """An event that evolves an existing aggregate."""

    timestamp: datetime

    def mutate(self, aggregate: TAggregate | None) -> TAggregate | None:
        """Check the event follows ``aggregate``, apply it, advance the version."""
        assert aggregate is not None
        originator_id, aggregate_id = self.originator_id, aggregate.id
        # Identity first: a triggered event holds its aggregate's own id
        # object, and UUID.__eq__ is a Python-level call.
        if originator_id is not aggregate_id and originator_id != aggregate_id:
            raise OriginatorIDError(originator_id, aggregate_id)
        next_version = aggregate.version + 1
        if self.originator_version != next_version:
            raise OriginatorVersionError(self.originator_version, next_version)
        self.apply(aggregate)
        aggregate.version = self.originator_version
        aggregate.modified_on = self.timestamp
        return aggregate

    def apply(self, aggregate: Any) -> None:
        """Evolve the aggregate's state; override in explicit event classes."""

    def _as_dict(self) -> dict[str, Any]:
        """The event's attributes (override for events without ``__dict__``,
        such as msgspec Structs)."""
        return vars(self)


class CanInitAggregate(CanMutateAggregate[TAggregateID]):
    """The first event of an aggregate: it names the aggregate's class."""

    originator_topic: str

    def mutate(self, aggregate: TAggregate | None) -> TAggregate | None:
        """Construct the aggregate: base attributes, then its ``__init__``."""
        cls: type[TAggregate] = resolve_aggregate_class(self.originator_topic)
        agg = cls.__new__(cls)
        agg.__base_init__(self.originator_id, self.originator_version, self.timestamp)
        as_dict = type(self)._as_dict
        state = self.__dict__ if as_dict is _vars_as_dict else as_dict(self)
        init_params, init_func = cls._init_params_, cls._init_func_
        if init_params is not None and init_func is not None:
            kwargs = {k: state[k] for k in init_params if k in state}
            if cls._init_mentions_id_:
                kwargs["id"] = self.originator_id
            spec = cls._init_spec_
            if spec is not None and spec.factories:
                # A default_factory value (e.g. a new list) must not be shared
                # by the aggregate and its event, or changes leak into history.
                for name in spec.factories:
                    if name in kwargs:
                        kwargs[name] = deepcopy(kwargs[name])
            try:
                init_func(agg, **kwargs)
            except TypeError as e:
                clearer = missing_arguments_error(self, init_func, state, e)
                if clearer is e:
                    raise
                raise clearer from e
        self.apply(agg)
        return agg


_vars_as_dict = CanMutateAggregate._as_dict
_ID_GENERIC_CLASSES.update((CanMutateAggregate, CanInitAggregate))


@dataclass_transform(frozen_default=True)
class MetaDomainEvent(EsoxType):
    """Makes every domain event class a frozen dataclass."""

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kw: Any
    ) -> "MetaDomainEvent":
        cls = super().__new__(mcs, name, bases, namespace, **kw)
        return cast(MetaDomainEvent, dataclass(frozen=True)(cast(Any, cls)))


class DomainEvent(CanCreateTimestamp, metaclass=MetaDomainEvent):
    """An immutable record of something that happened to an originator."""

    # UUID by default; aggregates with str ids annotate their events with str
    # (eventsourcing reads the annotation to decide how to read stored ids).
    originator_id: UUID
    originator_version: int
    timestamp: datetime

    originator_id_type: ClassVar[type[UUID] | type[str] | None] = UUID
    """``UUID`` or ``str``: how stored originator ids are read back."""

    def __post_init__(self) -> None:
        # A str id given to an event whose ids are UUIDs would be stored as
        # text and read back as a UUID (or not at all): refuse it here, as
        # eventsourcing does. Events of str-id aggregates say str.
        check_originator_id(type(self), self.originator_id)


def check_originator_id(event_class: type[Any], originator_id: object) -> None:
    """Refuse a non-UUID originator id for an event class whose ids are UUIDs."""
    if event_class.originator_id_type is UUID and not isinstance(originator_id, UUID):
        msg = (
            f"{event_class} was initialized with a non-UUID originator_id: "
            f"{originator_id!r}"
        )
        raise TypeError(msg)


class AggregateEvent(CanMutateAggregate[UUID], DomainEvent):
    """An event of an aggregate (the base of ``Aggregate.Event``)."""


class AggregateCreated(CanInitAggregate[UUID], AggregateEvent):
    """The first event of an aggregate: it names the aggregate's class."""

    originator_topic: str


class LogEvent(DomainEvent):
    """An event of an event-sourced log (``EventSourcedLog``)."""


class CanSnapshotAggregate(HasOriginatorIDVersion[TAggregateID], CanCreateTimestamp):
    """The state of an aggregate at a version, to start replay from."""

    topic: str
    state: Any

    @classmethod
    def take(cls, aggregate: Any) -> Any:
        """Take a snapshot of ``aggregate`` (its attributes, not pending events)."""
        state = dict(aggregate.__dict__)
        state.pop("_id", None)
        state.pop("_version", None)
        state.pop("_pending_events", None)
        class_version = getattr(type(aggregate), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        return cls(  # type: ignore[call-arg]
            originator_id=aggregate.id,
            originator_version=aggregate.version,
            timestamp=cls.create_timestamp(),
            topic=get_topic(type(aggregate)),
            state=state,
        )

    def mutate(self, _: None = None) -> Any:
        """Reconstruct the aggregate without calling its ``__init__``."""
        cls = resolve_aggregate_class(self.topic, any_library=True)
        state = dict(self.state)
        from_version = state.pop("class_version", 1)
        class_version = getattr(cls, "class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        state["_id"] = self.originator_id
        state["_version"] = self.originator_version
        state["_pending_events"] = []
        aggregate = object.__new__(cls)
        object.__setattr__(aggregate, "__dict__", state)
        return aggregate


_ID_GENERIC_CLASSES.add(CanSnapshotAggregate)


class Snapshot(CanSnapshotAggregate[UUID], DomainEvent):
    """The state of an aggregate at a version, to start replay from."""

    topic: str
    state: dict[str, Any]


def not_an_aggregate_class(topic: str, obj: Any) -> TopicError:
    """The error of a stored topic that names something other than an aggregate."""
    msg = (
        f"stored topic {topic!r} names {obj!r}, not an aggregate class: only "
        "aggregates are built from stored events and snapshots (the row is "
        "corrupt or forged)"
    )
    return TopicError(msg)


def resolve_aggregate_class(topic: str, *, any_library: bool = False) -> Any:
    """The aggregate class that a stored topic names; TopicError for anything else.

    Stored topics come from stored bytes: building whatever class they name
    (one whose finaliser closes a file descriptor, say) is refused. With
    ``any_library``, eventsourcing's aggregates (and classes with ``id`` and
    ``version``, its aggregate protocol) are accepted too, as snapshots of
    them are.
    """
    try:
        return _aggregate_classes[topic]
    except KeyError:
        pass
    from esox.domain.aggregate import BaseAggregate

    cls = resolve_topic(topic)
    if isinstance(cls, type) and issubclass(cls, BaseAggregate):
        _aggregate_classes[topic] = cls
        return cls
    is_class = isinstance(cls, type)
    if is_class and any_library and hasattr(cls, "id") and hasattr(cls, "version"):
        return cls
    raise not_an_aggregate_class(topic, cls)


# Topics checked to name aggregate classes (creating an aggregate resolves
# its topic each time); forgotten when registered topics change.
_aggregate_classes: dict[str, type[Any]] = {}
_topic_cache.listeners.append(_aggregate_classes.clear)


def missing_arguments_error(
    event: Any, func: Any, state: dict[str, Any], error: TypeError
) -> Exception:
    """A clearer error when a stored event lacks an argument ``func`` now needs.

    The usual cause: a parameter was added to ``__init__`` (or a decorated
    method) after events were stored, with no upcaster for the old ones.
    ``error`` itself if no required parameter is missing from ``state``.
    """
    import inspect

    try:
        parameters = list(inspect.signature(func).parameters.values())[1:]
    except (TypeError, ValueError):
        return error
    missing = [
        p.name
        for p in parameters
        if p.default is inspect.Parameter.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and p.name not in state
        and p.name != "id"
    ]
    if not missing:
        return error
    cls = type(event)
    version = getattr(cls, "class_version", 1)
    names = ", ".join(repr(name) for name in missing)
    msg = (
        f"stored event {get_topic(cls)} (originator_id "
        f"'{getattr(event, 'originator_id', '?')}', originator_version "
        f"{getattr(event, 'originator_version', '?')}) has no {names}, which "
        f"{func.__qualname__}() now requires ({error}). The class changed after "
        f"the event was stored: set class_version = {version + 1} on "
        f"{cls.__qualname__} and add a static method "
        f"upcast_v{version}_v{version + 1}(state) that sets {missing[0]!r} in "
        "old states, or give the parameter a default"
    )
    return ProgrammingError(msg)


def event_field_names(event_class: type) -> tuple[str, ...]:
    """The dataclass field names of an event class, in order."""
    return tuple(f.name for f in dataclasses.fields(event_class))
