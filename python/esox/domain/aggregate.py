"""Aggregates: consistency boundaries whose state is the sum of their events."""

import dataclasses
import os
from abc import ABCMeta
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar, cast
from uuid import UUID, SafeUUID

from esox.domain import events as _events
from esox.domain.decorators import (
    CommandMethodDecorator,
    DecoratedFuncCaller,
    MethodSpec,
)
from esox.domain.events import (
    AggregateCreated,
    AggregateEvent,
    CanCreateTimestamp,
    CanInitAggregate,
    CanMutateAggregate,
    DomainEvent,
    EsoxType,
    ProgrammingError,
    Snapshot,
    _plan_caches,
    check_originator_id,
)
from esox.domain.preparation import (
    check_explicit_topic_is_registered,
    prepare_aggregate_class,
    set_init,
)
from esox.domain.protocols import TAggregateID
from esox.utils import get_topic

__all__ = [
    "Aggregate",
    "BaseAggregate",
    "DecoratedFuncCaller",
    "MetaAggregate",
    "aggregate",
]

TBaseAggregate = TypeVar("TBaseAggregate", bound="BaseAggregate[Any]")

_fast_fields: dict[type, tuple[tuple[str, ...] | None, bool]] = {}
_direct_apply: dict[type, Callable[..., Any] | None] = {}
_trigger_plans: dict[type, Callable[..., Any] | None] = {}
_plan_caches.extend((_fast_fields, _direct_apply, _trigger_plans))

_new: Callable[[type[Any]], Any] = object.__new__
_set = object.__setattr__

# uuid4() without UUID.__init__'s checks (the value is made valid here): the
# random bits of os.urandom, with the version (4) and variant (RFC 4122) bits.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)
_UUID_HAS_SLOTS = {"int", "is_safe"} <= set(getattr(UUID, "__slots__", ()))


_random_values: list[int] = []
"""Random UUID values made ahead, many per os.urandom() call (a system call
per id costs more than the rest of making it). Forgotten in a forked child,
which must not make its parent's ids."""
_next_random_value = _random_values.pop  # atomic: safe between threads
os.register_at_fork(after_in_child=_random_values.clear)


def _make_random_values() -> None:
    randomness = os.urandom(16 * 64)
    _random_values.extend(
        int.from_bytes(randomness[i : i + 16]) & _UUID4_CLEAR | _UUID4_SET
        for i in range(0, len(randomness), 16)
    )


def random_uuid() -> UUID:
    """A random (version 4) UUID, as ``uuid.uuid4()`` makes, in half the time."""
    try:
        value = _next_random_value()
    except IndexError:
        _make_random_values()
        value = _next_random_value()
    if not _UUID_HAS_SLOTS:  # pragma: no cover (CPython's UUID has them)
        return UUID(int=value)
    new_id: UUID = _new(UUID)
    _set(new_id, "int", value)
    _set(new_id, "is_safe", SafeUUID.unknown)
    return new_id


def _direct_apply_func(event_class: type[Any]) -> Callable[..., Any] | None:
    """The decorated method to call for an event whose mutate and apply are the
    standard ones (so calling it is all that applying the event does)."""
    try:
        return _direct_apply[event_class]
    except KeyError:
        pass
    func = None
    own_applies = [
        base
        for base in event_class.__mro__
        if "apply" in base.__dict__
        and base not in (DecoratedFuncCaller, CanMutateAggregate)
    ]
    if (
        event_class.mutate is CanMutateAggregate.mutate
        and event_class.apply is DecoratedFuncCaller.apply
        and "_decorated_spec_" in event_class.__dict__
        and not own_applies
    ):
        func = event_class._decorated_spec_.func
    _direct_apply[event_class] = func
    return func


def _trigger_plan(event_class: type[Any]) -> Callable[..., Any] | None:
    """The decorated method, if triggering ``event_class`` is: make the event
    from the method's arguments (its fields, in order, after the standard
    three), call the method, advance the version (else None)."""
    func = _direct_apply_func(event_class)
    fields, _ = _plain_fields(event_class)
    if func is None or fields is None:
        return None
    names = event_class._decorated_spec_.names
    if fields != ("originator_id", "originator_version", "timestamp", *names):
        return None
    return func


def construct_event(event_class: type[Any], values: dict[str, Any]) -> Any:
    """Construct an event from keyword values, skipping the dataclass ``__init__``
    where it would do nothing but assign fields and check the id (the common
    case). A bad call raises the TypeError the class's ``__init__`` raises."""
    try:
        fields, check_id = _fast_fields[event_class]
    except KeyError:
        fields, check_id = _fast_fields[event_class] = _plain_fields(event_class)
    if fields is not None and len(values) == len(fields):
        try:
            state = {name: values[name] for name in fields}
        except KeyError:
            pass
        else:
            if check_id and type(state["originator_id"]) is not UUID:
                check_originator_id(event_class, state["originator_id"])
            new_event = object.__new__(event_class)
            object.__setattr__(new_event, "__dict__", state)
            return new_event
    return event_class(**values)


def _plain_fields(event_class: type[Any]) -> tuple[tuple[str, ...] | None, bool]:
    """Field names, if constructing is plain assignment (no defaults, and no
    post-init but DomainEvent's id check), and whether to check the id."""
    if not dataclasses.is_dataclass(event_class):
        return None, False
    post_init = getattr(event_class, "__post_init__", None)
    if post_init is not None and post_init is not DomainEvent.__post_init__:
        return None, False
    init = event_class.__dict__.get("__init__") or event_class.__init__
    if getattr(init, "__qualname__", "").split(".")[-1] != "__init__":
        return None, False
    fields = dataclasses.fields(event_class)
    for f in fields:
        if f.default is not dataclasses.MISSING or (
            f.default_factory is not dataclasses.MISSING
        ):
            return None, False
    check_id = post_init is not None and (
        getattr(event_class, "originator_id_type", None) is UUID
    )
    return tuple(f.name for f in fields), check_id


_STANDARD_CREATED_FIELDS = (
    "originator_id",
    "originator_version",
    "timestamp",
    "originator_topic",
)


class _CreationPlan(NamedTuple):
    """What ``cls(*args)`` does when every step is esox's own (the common
    case): the steps of ``_create``, ``mutate`` and ``__base_init__``."""

    arg_count: int
    names: tuple[str, ...]
    """The ``__init__``'s parameters: the created event's fields, in order."""
    event_class: type[Any]
    topic: str
    version: int
    init_func: Callable[..., Any] | None


_creation_plans: dict[type, _CreationPlan | None] = {}
_plan_caches.append(_creation_plans)


def _creation_plan(cls: type["BaseAggregate[Any]"]) -> _CreationPlan | None:
    """The plan of ``cls(...)``, or None if a step is not esox's own (then
    ``_create()`` does it step by step)."""
    event_class = cls._created_event_class_
    spec = cls._init_spec_
    if (
        event_class is None
        or not _UUID_HAS_SLOTS
        or cls._explicit_topics_
        or cls._create.__func__ is not BaseAggregate._create.__func__  # type: ignore[attr-defined]
        or cls.create_id is not Aggregate.create_id
        or cls.__base_init__ is not BaseAggregate.__base_init__
        or cls.__new__ is not object.__new__
        or cls._init_mentions_id_
        or event_class.mutate is not CanInitAggregate.mutate
        or event_class.apply is not CanMutateAggregate.apply
        or event_class._as_dict is not CanMutateAggregate._as_dict
        or event_class.create_timestamp is not CanCreateTimestamp.create_timestamp
    ):
        return None
    names = spec.names if spec is not None else ()
    # Arguments that bind by position alone, to parameters without defaults
    # made by factories, nor a timestamp (which is the event's own).
    if spec is not None and (
        spec.simple_count != len(names) or spec.factories or spec.mentions_timestamp
    ):
        return None
    fields, _ = _plain_fields(event_class)
    if fields != (*_STANDARD_CREATED_FIELDS, *names):
        return None
    return _CreationPlan(
        arg_count=len(names),
        names=names,
        event_class=event_class,
        topic=get_topic(cls),
        version=cls.INITIAL_VERSION,
        init_func=cls._init_func_,
    )


_now = datetime.now
_SAFE_UNKNOWN = SafeUUID.unknown


class MetaAggregate(EsoxType, ABCMeta, Generic[TBaseAggregate]):
    """Calling an aggregate class triggers its created event."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            plan = _creation_plans[cls]
        except KeyError:
            plan = _creation_plans[cls] = _creation_plan(cls)  # type: ignore[arg-type]
        if plan is None or kwargs or len(args) != plan[0]:
            return _call_step_by_step(cls, args, kwargs)  # type: ignore[arg-type]
        # The plan: what _create(), mutate() and __base_init__() would do, in
        # one frame, without the checks that can't fail here (a new random
        # UUID, a fresh timestamp, arguments that bind by position) or the
        # dicts they copy. This is every aggregate's creation: keep it lean.
        _, names, event_class, topic, version, init_func = plan
        new_id = _new(UUID)  # random_uuid(), inline
        try:
            _set(new_id, "int", _next_random_value())
        except IndexError:
            _make_random_values()
            _set(new_id, "int", _next_random_value())
        _set(new_id, "is_safe", _SAFE_UNKNOWN)
        timestamp = _now(_events.TZINFO)
        state = {
            "originator_id": new_id,
            "originator_version": version,
            "timestamp": timestamp,
            "originator_topic": topic,
        }
        if args:
            state.update(zip(names, args, strict=True))
        created_event = _new(event_class)
        _set(created_event, "__dict__", state)
        agg = _new(cls)
        pending: list[Any] = []
        _set(
            agg,
            "__dict__",
            {
                "_id": new_id,
                "_version": version,
                "_created_on": timestamp,
                "_modified_on": timestamp,
                "_pending_events": pending,
            },
        )
        if init_func is not None:
            init_func(agg, *args)
        pending.append(created_event)
        return agg

    def __setattr__(cls, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "__init__" and "_init_spec_" in cls.__dict__:
            # An __init__ given after the class was defined (by @dataclass
            # over the class statement) is what calling the class takes.
            func = value.func if isinstance(value, CommandMethodDecorator) else value
            set_init(cast(type[BaseAggregate[Any]], cls), func, BaseAggregate)


def _call_step_by_step(
    cls: type["BaseAggregate[Any]"], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``cls(*args, **kwargs)``: bind the arguments, then ``_create()``."""
    created = cls._created_event_class_
    if created is None:
        raise _no_created_event_class(cls)
    spec = cls._init_spec_
    if spec is not None:
        kwargs = spec.bind(args, kwargs)
    elif args:
        msg = f"{cls.__qualname__}() takes no positional arguments"
        raise TypeError(msg)
    return cls._create(created, **kwargs)


def _no_created_event_class(cls: type["BaseAggregate[Any]"]) -> TypeError:
    if cls is BaseAggregate:
        return TypeError("Please define or use subclasses of BaseAggregate.")
    candidates = cls._created_event_candidates_
    if not candidates:
        return TypeError(
            f"No \"created\" event classes defined on class '{cls.__name__}'."
        )
    names = "', '".join(c.__name__ for c in candidates)
    msg = (
        f'{cls.__qualname__} can\'t decide which of many "created" event classes '
        f"to use: '{names}'. Please use class arg 'created_event_name' or @event "
        "decorator on __init__ method."
    )
    return TypeError(msg)


class BaseAggregate(Generic[TAggregateID], metaclass=MetaAggregate):
    """An aggregate whose ids are of type ``TAggregateID`` (``UUID`` or ``str``).

    It defines no events: subclasses define an ``Event`` class and the
    "created" events they need (``Aggregate`` has ``Event`` and ``Created``).
    A ``BaseAggregate[str]`` that defines none gets esox's string-id ones.
    """

    INITIAL_VERSION: ClassVar[int] = 1
    originator_id_type: ClassVar[type[UUID] | type[str] | None] = None

    # Worked out once per class by __init_subclass__.
    _created_event_class_: ClassVar[type[CanInitAggregate[Any]] | None] = None
    _created_event_candidates_: ClassVar[tuple[type[CanInitAggregate[Any]], ...]] = ()
    _init_func_: ClassVar[Callable[..., Any] | None] = None
    _init_spec_: ClassVar[MethodSpec | None] = None
    _init_params_: ClassVar[tuple[str, ...] | None] = None
    _init_mentions_id_: ClassVar[bool] = False
    _annotations_mention_id_: ClassVar[bool] = False
    _create_id_params_: ClassVar[tuple[str, ...]] = ()
    _explicit_topics_: ClassVar[bool] = False

    _id: TAggregateID
    _version: int
    _created_on: datetime
    _modified_on: datetime
    _pending_events: list[CanMutateAggregate[Any]]

    @staticmethod
    def create_id(*_: Any, **__: Any) -> TAggregateID:
        """Return a new aggregate id; override (e.g. to return a uuid5)."""
        raise NotImplementedError

    @classmethod
    def _create(
        cls: type[TBaseAggregate],
        event_class: type[CanInitAggregate[Any]],
        *,
        id: Any = None,
        **kwargs: Any,
    ) -> TBaseAggregate:
        """Create an aggregate by triggering ``event_class`` (a created event)."""
        if cls._explicit_topics_:
            check_explicit_topic_is_registered(event_class)
        if id is None:
            id = _new_id(cls, kwargs)
        elif not isinstance(id, (UUID, str)):
            msg = f"Given id was not a UUID or str: {id!r}"
            raise TypeError(msg)
        timestamp = kwargs.pop("timestamp", None) or event_class.create_timestamp()
        values = {
            **kwargs,
            "originator_topic": get_topic(cls),
            "originator_id": id,
            "originator_version": cls.INITIAL_VERSION,
            "timestamp": timestamp,
        }
        try:
            created_event = construct_event(event_class, values)
        except TypeError as e:
            msg = f"Unable to construct '{event_class.__qualname__}' event: {e}"
            raise TypeError(msg) from None
        agg = cast(TBaseAggregate, created_event.mutate(None))
        agg._pending_events.append(created_event)
        return agg

    def __base_init__(
        self, originator_id: TAggregateID, originator_version: int, timestamp: datetime
    ) -> None:
        """Set the attributes every aggregate has (before its own ``__init__``)."""
        self._id = originator_id
        self._version = originator_version
        self._created_on = timestamp
        self._modified_on = timestamp
        self._pending_events = []

    @property
    def id(self) -> TAggregateID:
        """The aggregate's id."""
        return self._id

    @property
    def version(self) -> int:
        """The version of the aggregate: the number of its last event."""
        return self._version

    @version.setter
    def version(self, version: int) -> None:
        self._version = version

    @property
    def created_on(self) -> datetime:
        """When the aggregate was created."""
        return self._created_on

    @property
    def modified_on(self) -> datetime:
        """When the aggregate was last changed."""
        return self._modified_on

    @modified_on.setter
    def modified_on(self, modified_on: datetime) -> None:
        self._modified_on = modified_on

    @property
    def pending_events(self) -> list[CanMutateAggregate[Any]]:
        """Events triggered but not yet collected (saved)."""
        return self._pending_events

    def trigger_event(
        self, event_class: type[CanMutateAggregate[Any]], **kwargs: Any
    ) -> None:
        """Trigger an event of ``event_class``: construct it, apply it, keep it."""
        if self._explicit_topics_:
            if event_class.__name__ == "Event":
                msg = "Triggering base 'Event' class is prohibited."
                raise ProgrammingError(msg)
            check_explicit_topic_is_registered(event_class)
        values = {
            **kwargs,
            "originator_id": self._id,
            "originator_version": self._version + 1,
        }
        if values.get("timestamp") is None:
            values["timestamp"] = event_class.create_timestamp()
        try:
            new_event = construct_event(event_class, values)
        except TypeError as e:
            msg = f"Can't construct event {event_class}: {e}"
            raise TypeError(msg) from None
        new_event.mutate(self)
        self._pending_events.append(new_event)

    def _trigger_decorated(
        self,
        event_class: type[CanMutateAggregate[Any]],
        kwargs: dict[str, Any],
        timestamp: datetime,
    ) -> None:
        """Trigger the event of a decorated method (``kwargs`` already checked,
        in the method's parameters' order)."""
        try:
            func = _trigger_plans[event_class]
        except KeyError:
            func = _trigger_plans[event_class] = _trigger_plan(event_class)
        if func is not None:
            # What construct_event(), mutate() and apply() would do, without
            # their frames: this is every command's path.
            version = self._version + 1
            state = {
                "originator_id": self._id,
                "originator_version": version,
                "timestamp": timestamp,
            }
            state.update(kwargs)
            new_event = _new(event_class)
            _set(new_event, "__dict__", state)
            func(self, **kwargs)
            self._version = version
            self._modified_on = timestamp
            self._pending_events.append(new_event)
            return
        values = {
            "originator_id": self._id,
            "originator_version": self._version + 1,
            "timestamp": timestamp,
            **kwargs,
        }
        new_event = construct_event(event_class, values)
        func = _direct_apply_func(event_class)
        if func is None:
            new_event.mutate(self)
        else:
            # What mutate() and apply() would do, without their frames: the
            # event was just made for this aggregate's next version.
            func(self, **kwargs)
            self._version = values["originator_version"]
            self._modified_on = timestamp
        self._pending_events.append(new_event)

    def collect_events(self) -> Sequence[CanMutateAggregate[Any]]:
        """Return and forget the pending events."""
        collected, self._pending_events = self._pending_events, []
        return collected

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        attrs = [
            f"{k.lstrip('_')}={v!r}"
            for k, v in self.__dict__.items()
            if k != "_pending_events"
        ]
        return f"{type(self).__name__}({', '.join(attrs)})"

    def __init_subclass__(cls, *, created_event_name: str = "", **kw: Any) -> None:
        super().__init_subclass__(**kw)
        prepare_aggregate_class(cls, created_event_name, BaseAggregate)


def _new_id(cls: type[BaseAggregate[Any]], kwargs: dict[str, Any]) -> Any:
    """An id made by the class's ``create_id`` from the arguments it names."""
    id_kwargs = {k: kwargs[k] for k in cls._create_id_params_ if k in kwargs}
    try:
        new_id = cls.create_id(**id_kwargs)
    except NotImplementedError:
        msg = f"Please pass an 'id' arg or define a create_id() method on {cls}"
        raise NotImplementedError(msg) from None
    if not isinstance(new_id, (UUID, str)):
        create_id = cls.create_id
        msg = (
            f"{create_id.__module__}.{create_id.__qualname__} did not return "
            f"UUID or str, it returned: {new_id!r}"
        )
        raise TypeError(msg)
    return new_id


class Aggregate(BaseAggregate[UUID]):
    """An aggregate with UUID ids (random by default)."""

    @staticmethod
    def create_id(*_: Any, **__: Any) -> UUID:
        """Return a new random UUID."""
        return random_uuid()

    class Event(AggregateEvent):
        """Base class of this aggregate's events."""

    class Created(Event, AggregateCreated):
        """The event that creates this aggregate."""

    Snapshot: ClassVar[type[Snapshot]] = Snapshot


def aggregate(cls: type[Any] | None = None, *, created_event_name: str = "") -> Any:
    """Turn a plain class into an ``Aggregate`` subclass (``@aggregate``)."""

    def decorator(cls_: type[Any]) -> type[Aggregate]:
        if issubclass(cls_, Aggregate):
            msg = f"{cls_.__qualname__} is already an Aggregate"
            raise TypeError(msg)
        bases = cls_.__bases__
        bases = (Aggregate,) if bases == (object,) else (*bases, Aggregate)
        namespace = dict(cls_.__dict__)
        namespace["__qualname__"] = cls_.__qualname__
        namespace.pop("__dict__", None)
        namespace.pop("__weakref__", None)
        new_cls: type[Any] = MetaAggregate(
            cls_.__name__, bases, namespace, created_event_name=created_event_name
        )
        return cast(type[Aggregate], new_cls)

    return decorator(cls) if cls is not None else decorator
