"""Aggregates: consistency boundaries whose state is the sum of their events."""

import dataclasses
import inspect
import os
import sys
from abc import ABCMeta
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar, cast, get_args, get_origin
from uuid import UUID, uuid4

from esox.domain.decorators import CommandMethodDecorator, MethodSpec
from esox.domain.events import (
    AggregateCreated,
    AggregateEvent,
    CanInitAggregate,
    CanMutateAggregate,
    EsoxType,
    ProgrammingError,
    Snapshot,
)
from esox.utils import TopicError, get_topic, register_topic, resolve_topic

__all__ = [
    "Aggregate",
    "BaseAggregate",
    "DecoratedFuncCaller",
    "MetaAggregate",
    "aggregate",
]

TAggregateID = TypeVar("TAggregateID", UUID, str)
TBaseAggregate = TypeVar("TBaseAggregate", bound="BaseAggregate[Any]")


class DecoratedFuncCaller(CanMutateAggregate[Any]):
    """Applies an event by calling the method that was decorated with ``@event``."""

    _decorated_spec_: ClassVar[MethodSpec]

    def apply(self, aggregate: Any) -> None:
        spec = type(self)._decorated_spec_
        state = self._as_dict()
        spec.func(aggregate, **{name: state[name] for name in spec.names})
        super().apply(aggregate)


_fast_fields: dict[type, tuple[str, ...] | None] = {}
_direct_apply: dict[type, Callable[..., Any] | None] = {}


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


def construct_event(event_class: type[Any], values: dict[str, Any]) -> Any:
    """Construct an event from keyword values, skipping the dataclass ``__init__``
    where it would do nothing but assign fields (the common case)."""
    try:
        fields = _fast_fields[event_class]
    except KeyError:
        fields = _fast_fields[event_class] = _plain_fields(event_class)
    if fields is not None and len(values) == len(fields):
        try:
            state = {name: values[name] for name in fields}
        except KeyError:
            pass
        else:
            new_event = object.__new__(event_class)
            object.__setattr__(new_event, "__dict__", state)
            return new_event
    try:
        return event_class(**values)
    except TypeError as e:
        msg = f"Unable to construct {event_class.__qualname__!r} event: {e}"
        raise TypeError(msg) from None


def _plain_fields(event_class: type[Any]) -> tuple[str, ...] | None:
    """Field names if constructing is plain assignment (no post-init, no defaults)."""
    if not dataclasses.is_dataclass(event_class) or hasattr(
        event_class, "__post_init__"
    ):
        return None
    init = event_class.__dict__.get("__init__") or event_class.__init__
    if getattr(init, "__qualname__", "").split(".")[-1] != "__init__":
        return None
    fields = dataclasses.fields(event_class)
    for f in fields:
        if f.default is not dataclasses.MISSING or (
            f.default_factory is not dataclasses.MISSING
        ):
            return None
    return tuple(f.name for f in fields)


class MetaAggregate(EsoxType, ABCMeta, Generic[TBaseAggregate]):
    """Calling an aggregate class triggers its created event."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        agg_cls = cast(type[BaseAggregate[Any]], cls)
        created = agg_cls._created_event_class_
        if created is None:
            candidates = agg_cls._created_event_candidates_
            if not candidates:
                msg = f'No "created" event classes defined on class {cls.__name__!r}.'
            else:
                names = "', '".join(c.__name__ for c in candidates)
                msg = (
                    f"{cls.__qualname__} can't decide which of many "
                    f"\"created\" event classes to use: '{names}'. Please use class "
                    "arg 'created_event_name' or @event decorator on __init__ method."
                )
            raise TypeError(msg)
        spec = agg_cls._init_spec_
        if spec is not None:
            kwargs = spec.bind(args, kwargs)
        elif args:
            msg = f"{cls.__qualname__}() takes no positional arguments"
            raise TypeError(msg)
        return agg_cls._create(created, **kwargs)


class BaseAggregate(Generic[TAggregateID], metaclass=MetaAggregate):
    """An aggregate whose ids are of type ``TAggregateID`` (``UUID`` or ``str``)."""

    INITIAL_VERSION: ClassVar[int] = 1
    originator_id_type: ClassVar[type[UUID] | type[str] | None] = None

    # Worked out once per class by __init_subclass__.
    _created_event_class_: ClassVar[type[CanInitAggregate[Any]] | None] = None
    _created_event_candidates_: ClassVar[tuple[type[CanInitAggregate[Any]], ...]] = ()
    _init_func_: ClassVar[Callable[..., Any] | None] = None
    _init_spec_: ClassVar[MethodSpec | None] = None
    _init_params_: ClassVar[tuple[str, ...] | None] = None
    _init_mentions_id_: ClassVar[bool] = False
    _create_id_params_: ClassVar[tuple[str, ...]] = ()
    _explicit_topics_: ClassVar[bool] = False

    class Event(AggregateEvent):
        """Base class of this aggregate's events."""

        originator_id_type = None

    class Created(Event, AggregateCreated):
        """The event that creates this aggregate."""

    Snapshot: ClassVar[type[Snapshot]] = Snapshot

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
            _check_explicit_topic_is_registered(event_class)
        if id is None:
            id_kwargs = {k: kwargs[k] for k in cls._create_id_params_ if k in kwargs}
            try:
                id = cls.create_id(**id_kwargs)
            except NotImplementedError:
                msg = f"Please pass an 'id' arg or define a create_id() method on {cls}"
                raise NotImplementedError(msg) from None
            if not isinstance(id, (UUID, str)):
                msg = f"{cls.__qualname__}.create_id() returned {id!r}, not UUID or str"
                raise TypeError(msg)
        elif not isinstance(id, (UUID, str)):
            msg = f"Given id was not a UUID or str: {id!r}"
            raise TypeError(msg)
        values = {
            "originator_id": id,
            "originator_version": cls.INITIAL_VERSION,
            "timestamp": kwargs.pop("timestamp", None)
            or event_class.create_timestamp(),
            "originator_topic": get_topic(cls),
            **kwargs,
        }
        created_event = construct_event(event_class, values)
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
            _check_explicit_topic_is_registered(event_class)
        values = {
            "originator_id": self._id,
            "originator_version": self._version + 1,
            **kwargs,
        }
        if values.get("timestamp") is None:
            values["timestamp"] = event_class.create_timestamp()
        new_event = construct_event(event_class, values)
        new_event.mutate(self)
        self._pending_events.append(new_event)

    def _trigger_decorated(
        self, event_class: type[CanMutateAggregate[Any]], kwargs: dict[str, Any]
    ) -> None:
        """Trigger the event of a decorated method (``kwargs`` already checked)."""
        timestamp = event_class.create_timestamp()
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
        _prepare_aggregate_class(cls, created_event_name)


def _check_not_redefined(cls: type[Any]) -> None:
    """Refuse a second class of the same name in one module (as eventsourcing
    does): the two would share a topic, so stored events could resolve to either."""
    module = sys.modules.get(cls.__module__)
    if module is None or cls.__name__ not in module.__dict__:
        return
    # Either variable, set, turns the check off.
    if os.environ.get("ESOX_DISABLE_REDEFINITION_CHECK") is not None:
        return
    if os.environ.get("EVENTSOURCING_DISABLE_REDEFINITION_CHECK") is not None:
        return
    msg = (
        f"Name '{cls.__name__}' of {cls} already defined in '{cls.__module__}' "
        f"module: {module.__dict__[cls.__name__]}"
    )
    raise ProgrammingError(msg)


def _prepare_aggregate_class(cls: type[BaseAggregate[Any]], created_name: str) -> None:
    """Define the event classes of an aggregate class from its body."""
    _check_not_redefined(cls)
    _find_id_type(cls)
    _define_snapshot_class(cls)
    _dataclass_if_annotated(cls)
    base_event = _define_base_event(cls)
    created_classes = _adopt_nested_events(cls, base_event)
    init_attr = cls.__dict__.get("__init__")
    init_decorator = (
        init_attr if isinstance(init_attr, CommandMethodDecorator) else None
    )
    if init_decorator is not None:
        init_func: Callable[..., Any] | None = init_decorator.func
    elif init_attr is not None:
        init_func = init_attr
    else:
        init_func = cls._init_func_
    _set_init(cls, init_func)
    created = _choose_created_event(
        cls, created_name, init_decorator, created_classes, base_event
    )
    cls._created_event_class_ = created
    cls._created_event_candidates_ = tuple(created_classes.values())
    _define_decorated_events(cls, base_event)
    cls._create_id_params_ = tuple(
        name
        for name, p in inspect.signature(cls.create_id).parameters.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    )
    _register_explicit_topics(cls)


def _register_explicit_topics(cls: type[BaseAggregate[Any]]) -> None:
    """An aggregate class with a ``TOPIC`` (its own or inherited) must give
    its own, and so must each of its event classes: all are registered, so
    stored topics never depend on where the classes live."""
    cls._explicit_topics_ = bool(getattr(cls, "TOPIC", None))
    if not cls._explicit_topics_:
        return
    own = cls.__dict__.get("TOPIC")
    if not own:
        msg = f"Explicit topic not defined on {cls}"
        raise ProgrammingError(msg)
    _register_explicit_topic(own, cls)
    for name, obj in tuple(cls.__dict__.items()):
        if (
            name != "Event"
            and isinstance(obj, type)
            and issubclass(obj, CanMutateAggregate)
        ):
            topic = getattr(obj, "TOPIC", None)
            if not topic:
                msg = f"Explicit topic not defined on {obj}"
                raise ProgrammingError(msg)
            _register_explicit_topic(topic, obj)


def _register_explicit_topic(topic: str, obj: type[Any]) -> None:
    try:
        register_topic(topic, obj)
    except TopicError:
        msg = (
            f"Explicit topic '{topic}' of {obj} already registered for "
            f"{resolve_topic(topic)}"
        )
        raise ProgrammingError(msg) from None


def _check_explicit_topic_is_registered(event_class: type[Any]) -> None:
    """An event triggered on an aggregate with explicit topics must have a
    ``TOPIC`` that resolves to it."""
    topic = getattr(event_class, "TOPIC", None)
    if not topic:
        msg = f"Explicit topic not defined on {event_class}"
        raise ProgrammingError(msg)
    try:
        resolved = resolve_topic(topic)
    except TopicError:
        msg = f"Explicit topic '{topic}' on {event_class} is not registered"
        raise ProgrammingError(msg) from None
    if resolved is not event_class:
        msg = (
            f"Explicit topic '{topic}' on {event_class} already registered "
            f"for {resolved}"
        )
        raise ProgrammingError(msg)


def _find_id_type(cls: type[BaseAggregate[Any]]) -> None:
    for base in getattr(cls, "__orig_bases__", ()):
        if get_origin(base) is BaseAggregate:
            (id_type,) = get_args(base)
            if id_type in (UUID, str):
                cls.originator_id_type = id_type
            elif not isinstance(id_type, TypeVar) and id_type is not Any:
                msg = f"Aggregate ID type arg cannot be {id_type}"
                raise TypeError(msg)


def _define_snapshot_class(cls: type[BaseAggregate[Any]]) -> None:
    """Give aggregates with str ids a Snapshot class whose ids are read as str."""
    snapshot_cls = cls.Snapshot
    if (
        "Snapshot" not in cls.__dict__
        and cls.originator_id_type is not None
        and snapshot_cls.originator_id_type is not cls.originator_id_type
    ):
        cls.Snapshot = _define_event_class(cls, "Snapshot", (snapshot_cls,))


def _dataclass_if_annotated(cls: type[BaseAggregate[Any]]) -> None:
    """Make an annotated aggregate class a dataclass (an ``id`` annotation is
    dropped: ids are given as ``id=`` or made by ``create_id``)."""
    annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 (mutated)
    annotations.pop("id", None)
    if "id" in cls.__dict__:
        msg = f"Setting attribute 'id' on class {cls.__name__!r} is not allowed"
        raise ProgrammingError(msg)
    has_fields = any(
        not (isinstance(a, str) and a.startswith(("ClassVar", "typing.ClassVar")))
        and get_origin(a) is not ClassVar
        for a in annotations.values()
    )
    if has_fields or any(dataclasses.is_dataclass(b) for b in cls.__bases__):
        dataclasses.dataclass(eq=False, repr=False)(cls)


def _define_event_class(
    cls: type[Any],
    name: str,
    bases: tuple[type, ...],
    method: Callable[..., Any] | None = None,
    attrs: dict[str, Any] | None = None,
) -> type[Any]:
    """Define ``cls.<name>``, with fields from ``method``'s parameters."""
    annotations: dict[str, Any] = {}
    if method is not None:
        existing = {f for b in bases for f in getattr(b, "__dataclass_fields__", {})}
        params = list(inspect.signature(method).parameters.values())[1:]
        for p in params:
            if p.name == "id" and method.__name__ == "__init__":
                continue
            if p.name not in existing or p.default is p.empty:
                annotations[p.name] = (
                    p.annotation if p.annotation is not p.empty else "typing.Any"
                )
    namespace: dict[str, Any] = {
        "__annotations__": annotations,
        "__module__": cls.__module__,
        "__qualname__": f"{cls.__qualname__}.{name}",
        **(attrs or {}),
    }
    if cls.originator_id_type is not None:
        namespace.setdefault("originator_id_type", cls.originator_id_type)
        if cls.originator_id_type is str:
            annotations.setdefault("originator_id", "str")
    return type(name, bases, namespace)


def _define_base_event(cls: type[BaseAggregate[Any]]) -> type[Any]:
    own = cls.__dict__.get("Event")
    if own is not None:
        if cls.originator_id_type is not None and "originator_id_type" not in vars(own):
            own.originator_id_type = cls.originator_id_type
        return cast(type[Any], own)
    base_event = _define_event_class(
        cls, "Event", (cls.Event,), attrs={"_esox_defined_": True}
    )
    cls.Event = base_event  # type: ignore[misc]
    return base_event


def _adopt_nested_events(
    cls: type[BaseAggregate[Any]], base_event: type[Any]
) -> dict[str, type[CanInitAggregate[Any]]]:
    """Redefine nested event classes to inherit ``cls.Event``; return created ones."""
    redefined: dict[type, type] = {}
    created: dict[str, type[CanInitAggregate[Any]]] = {}
    for name, value in tuple(cls.__dict__.items()):
        if (
            name == "Event"
            or name.lower() == name
            or not isinstance(value, type)
            or not issubclass(value, CanMutateAggregate)
        ):
            continue
        event_class = value
        if not issubclass(value, base_event):
            extra = tuple(redefined[b] for b in value.__bases__ if b in redefined)
            event_class = _define_event_class(cls, name, (value, *extra, base_event))
            setattr(cls, name, event_class)
            redefined[value] = event_class
        if issubclass(event_class, CanInitAggregate):
            created[name] = event_class
    return created


def _set_init(
    cls: type[BaseAggregate[Any]], init_func: Callable[..., Any] | None
) -> None:
    if init_func is None or init_func is object.__init__:
        cls._init_func_ = None
        cls._init_spec_ = None
        cls._init_params_ = None
        cls._init_mentions_id_ = False
        return
    spec = MethodSpec(init_func, skip_id=True)
    for name, f in getattr(cls, "__dataclass_fields__", {}).items():
        if name in spec.defaults and f.default_factory is not dataclasses.MISSING:
            spec.factories[name] = f.default_factory
    cls._init_func_ = init_func
    cls._init_spec_ = spec
    cls._init_params_ = spec.names
    cls._init_mentions_id_ = "id" in inspect.signature(init_func).parameters


def _choose_created_event(
    cls: type[BaseAggregate[Any]],
    created_name: str,
    init_decorator: CommandMethodDecorator | None,
    created_classes: dict[str, type[CanInitAggregate[Any]]],
    base_event: type[Any],
) -> type[CanInitAggregate[Any]] | None:
    """Pick, or define, the event class that ``cls(...)`` triggers."""
    if init_decorator is not None:
        given = init_decorator.given_event_class
        if given is not None:
            if created_name and created_name != given.__name__:
                msg = "Given 'created_event_name' conflicts with decorator on __init__"
                raise TypeError(msg)
            if not issubclass(given, CanInitAggregate):
                msg = f'class {given.__name__!r} not a "created" event class'
                raise TypeError(msg)
            for candidate in created_classes.values():
                if issubclass(candidate, given):
                    return candidate
            return given
        assert init_decorator.event_name is not None
        if created_name and created_name != init_decorator.event_name:
            msg = "Given 'created_event_name' conflicts with decorator on __init__"
            raise TypeError(msg)
        created_name = init_decorator.event_name
    if created_name in created_classes:
        return created_classes[created_name]
    if not created_name and len(created_classes) == 1:
        return next(iter(created_classes.values()))
    if created_classes and not created_name:
        return None  # several: the caller must choose with _create()
    inherited = getattr(cls, created_name, None) if created_name else None
    if not (isinstance(inherited, type) and issubclass(inherited, CanInitAggregate)):
        inherited = _inherited_created_event(cls)
    if inherited is None and not created_name and init_decorator is None:
        return None
    if inherited is None:
        msg = f'Can\'t define "created" event class for name {created_name!r}'
        raise TypeError(msg)
    name = created_name or inherited.__name__
    own_init = cls.__dict__.get("__init__")
    method = init_decorator.func if init_decorator else own_init
    if isinstance(method, CommandMethodDecorator):
        method = method.func
    topic = init_decorator.event_topic if init_decorator else None
    created = _define_event_class(
        cls, name, (inherited, base_event), method, {"TOPIC": topic} if topic else None
    )
    setattr(cls, name, created)
    return cast(type[CanInitAggregate[Any]], created)


def _inherited_created_event(cls: type[Any]) -> type[CanInitAggregate[Any]] | None:
    for base in cls.__mro__[1:]:
        created = base.__dict__.get("_created_event_class_")
        if isinstance(created, type):
            return created
    # BaseAggregate's own Created serves aggregates that define no events of
    # their own (an esox convenience for BaseAggregate[str]); one that brings
    # its own Event hierarchy gets no created event it did not ask for, as in
    # eventsourcing (calling the class then says there is none).
    for base in cls.__mro__[:-1]:
        if base is BaseAggregate:
            break
        own_event = base.__dict__.get("Event")
        if own_event is not None and not own_event.__dict__.get("_esox_defined_"):
            return None
    return cast(type[CanInitAggregate[Any]], cls.Created)


def _define_decorated_events(cls: type[BaseAggregate[Any]], base_event: type) -> None:
    for attr_name, value in tuple(cls.__dict__.items()):
        decorator: CommandMethodDecorator | None = None
        if isinstance(value, CommandMethodDecorator):
            if value.func.__name__ == "__init__":
                continue
            decorator = value
        elif isinstance(value, property) and isinstance(
            value.fset, CommandMethodDecorator
        ):
            decorator = value.fset
            decorator.setter_arg_name = list(
                inspect.signature(decorator.func).parameters
            )[1]
            if (
                decorator.func.__name__ != attr_name
                and cls.__dict__.get(decorator.func.__name__) is decorator
            ):
                # "x = property(get_x, set_x)" with set_x decorated: the event
                # is defined for set_x itself, under its own name.
                continue
            if decorator.name_inferred:
                msg = (
                    f"@event decorator under @{decorator.func.__name__}.setter "
                    "requires event name or class"
                )
                raise TypeError(msg)
        if decorator is None or decorator.event_class is not None:
            continue
        attrs: dict[str, Any] = {"_decorated_spec_": decorator.spec}
        if decorator.event_topic:
            attrs["TOPIC"] = decorator.event_topic
        given = decorator.given_event_class
        if given is not None:
            if issubclass(given, CanInitAggregate):
                msg = f"{given} is subclass of AggregateCreated"
                raise TypeError(msg)
            target = getattr(cls, given.__name__)
            event_class = _define_event_class(
                cls, given.__name__, (DecoratedFuncCaller, target), attrs=attrs
            )
        else:
            name = decorator.event_name
            assert name is not None
            if name in cls.__dict__:
                msg = f"{name} event already defined on {cls.__name__}"
                raise TypeError(msg)
            event_class = _define_event_class(
                cls, name, (DecoratedFuncCaller, base_event), decorator.func, attrs
            )
        decorator.event_class = event_class
        setattr(cls, event_class.__name__, event_class)


class Aggregate(BaseAggregate[UUID]):
    """An aggregate with UUID ids (random by default)."""

    @staticmethod
    def create_id(*_: Any, **__: Any) -> UUID:
        """Return a new random UUID."""
        return uuid4()


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
