"""How an aggregate class's events are worked out from its body, once, when the
class is defined (the rules are eventsourcing's; see docs/domain.md)."""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast, get_args, get_origin
from uuid import UUID

from esox.domain import events
from esox.domain.decorators import (
    CommandMethodDecorator,
    DecoratedFuncCaller,
    MethodSpec,
)
from esox.domain.events import (
    CanInitAggregate,
    CanMutateAggregate,
    DomainEvent,
    ProgrammingError,
)
from esox.utils import TopicError, register_topic, resolve_topic

if TYPE_CHECKING:
    from esox.domain.aggregate import BaseAggregate

    AggregateClass = type[BaseAggregate[Any]]
else:
    AggregateClass = type

__all__ = ["check_explicit_topic_is_registered", "prepare_aggregate_class", "set_init"]


class _StrIds:
    """The events of a ``BaseAggregate[str]`` that defines none: eventsourcing's
    ready-made ones (``Aggregate.Event``) have UUID ids, so esox gives
    string-id aggregates their own (named as an ``Aggregate``'s are)."""

    class Event(CanMutateAggregate[str], DomainEvent):
        """The base event of a string-id aggregate that defines no ``Event``."""

        originator_id: str  # type: ignore[assignment]

    class Created(CanInitAggregate[str], Event):
        """The created event of a string-id aggregate that defines none."""

        originator_topic: str

    class Snapshot(events.Snapshot):
        """The snapshot class of a string-id aggregate that defines no events."""

        originator_id: str  # type: ignore[assignment]
        originator_id_type = str


def prepare_aggregate_class(
    cls: AggregateClass, created_name: str, root: AggregateClass
) -> None:
    """Define the event classes of an aggregate class from its body.

    ``root`` is ``BaseAggregate`` (whose ``create_id`` makes no ids).
    """
    _check_not_redefined(cls)
    _find_id_type(cls, root)
    _define_snapshot_class(cls)
    annotations_mention_id = _dataclass_if_annotated(cls)
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
    base_event = _define_base_event(cls)
    created_classes = _adopt_nested_events(cls, base_event)
    cls._annotations_mention_id_ = annotations_mention_id
    _check_create_id(cls)
    set_init(cls, init_func, root)
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
    _redefine_inherited_events(cls, base_event)
    _register_explicit_topics(cls)


def _base_event_not_defined(cls: type[Any]) -> TypeError:
    return TypeError(f"Base event class 'Event' not defined on {cls} or ancestors")


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


def _find_id_type(cls: AggregateClass, root: AggregateClass) -> None:
    for base in cls.__dict__.get("__orig_bases__", ()):
        if get_origin(base) is root:
            (id_type,) = get_args(base)
            if id_type in (UUID, str):
                cls.originator_id_type = id_type
            elif not isinstance(id_type, TypeVar) and id_type is not Any:
                msg = f"Aggregate ID type arg cannot be {id_type}"
                raise TypeError(msg)


def _define_snapshot_class(cls: AggregateClass) -> None:
    """Give aggregates with str ids a Snapshot class whose ids are read as str
    (an aggregate that brings its own events and no Snapshot gets none, as in
    eventsourcing: the application's ``snapshot_class`` is used)."""
    snapshot_cls = getattr(cls, "Snapshot", None)
    if snapshot_cls is None:
        if cls.originator_id_type is str and getattr(cls, "Event", None) is None:
            cls.Snapshot = _define_event_class(cls, "Snapshot", (_StrIds.Snapshot,))
        return
    if (
        "Snapshot" not in cls.__dict__
        and cls.originator_id_type is not None
        and snapshot_cls.originator_id_type is not cls.originator_id_type
    ):
        cls.Snapshot = _define_event_class(cls, "Snapshot", (snapshot_cls,))


def _dataclass_if_annotated(cls: AggregateClass) -> bool:
    """Make an annotated aggregate class a dataclass; return whether it
    annotated ``id`` (then its ids are given first, as ``id``, and the
    annotation is dropped: the id is the aggregate's, not a field)."""
    annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 (mutated)
    mentions_id = annotations.pop("id", None) is not None
    if "id" in cls.__dict__:
        msg = f"Setting attribute 'id' on class '{cls.__name__}' is not allowed"
        raise ProgrammingError(msg)
    has_fields = any(
        not (isinstance(a, str) and a.startswith(("ClassVar", "typing.ClassVar")))
        and get_origin(a) is not ClassVar
        for a in annotations.values()
    )
    if (
        has_fields
        or mentions_id
        or any(dataclasses.is_dataclass(b) for b in cls.__bases__)
    ):
        dataclasses.dataclass(eq=False, repr=False)(cls)
    return mentions_id


def _check_create_id(cls: AggregateClass) -> None:
    """A ``create_id`` is called on the class, before there is an aggregate."""
    own = cls.__dict__.get("create_id")
    if own is not None and not isinstance(own, (staticmethod, classmethod)):
        msg = f"{cls.create_id} is not a static or class method: {type(own)}"
        raise TypeError(msg)


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


def _define_base_event(cls: AggregateClass) -> type[Any] | None:
    """The aggregate's ``Event``: its own, or a subclass of the inherited one
    (a ``BaseAggregate[str]`` without one gets esox's string-id event)."""
    own = cls.__dict__.get("Event")
    if own is not None:
        if cls.originator_id_type is not None and "originator_id_type" not in vars(own):
            own.originator_id_type = cls.originator_id_type
        return cast(type[Any], own)
    inherited = getattr(cls, "Event", None)
    if inherited is None and cls.originator_id_type is str:
        inherited = _StrIds.Event
    if inherited is None:
        return None
    base_event = _define_event_class(cls, "Event", (inherited,))
    cls.Event = base_event
    return base_event


def _adopt_nested_events(
    cls: AggregateClass, base_event: type[Any] | None
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
        if base_event is None:
            raise _base_event_not_defined(cls)
        event_class = value
        if not issubclass(value, base_event):
            extra = tuple(_redefined_bases(value, redefined))
            event_class = _define_event_class(cls, name, (value, *extra, base_event))
            setattr(cls, name, event_class)
            redefined[value] = event_class
        if issubclass(event_class, CanInitAggregate):
            created[name] = event_class
    return created


def _redefined_bases(value: type, redefined: dict[type, type]) -> list[type]:
    """The redefinitions of ``value``'s bases, so that redefined classes keep
    the original hierarchy (a pydantic ``Something[X]`` counts as its origin)."""
    found = []
    for base in value.__bases__:
        metadata = base.__dict__.get("__pydantic_generic_metadata__")
        original = (metadata or {}).get("origin") or base
        if base in redefined:
            found.append(redefined[base])
        elif original in redefined:
            found.append(redefined[original])
    return found


def set_init(
    cls: AggregateClass,
    init_func: Callable[..., Any] | None,
    root: AggregateClass,
) -> None:
    """Work out what calling the class takes, from ``init_func``: eventsourcing's
    rules, plus one of esox's (see MethodSpec.accept_optional_id)."""
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
    mentions_id = "id" in spec.accepted
    if not mentions_id and cls._annotations_mention_id_:
        spec.expect_leading_id()
    elif not mentions_id and cls.create_id is root.create_id:
        # A class that can't make ids takes them as id= (eventsourcing would
        # only take them in _create()).
        spec.accept_optional_id()
    cls._init_func_ = init_func
    cls._init_spec_ = spec
    cls._init_params_ = spec.names
    cls._init_mentions_id_ = mentions_id


def _choose_created_event(
    cls: AggregateClass,
    created_name: str,
    init_decorator: CommandMethodDecorator | None,
    created_classes: dict[str, type[CanInitAggregate[Any]]],
    base_event: type[Any] | None,
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
        if init_decorator.event_name is None:
            msg = "@event decorator on __init__ has neither event name nor class"
            raise TypeError(msg)
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
        inherited = _inherited_created_event(cls, base_event)
    if inherited is None and not created_name:
        return None  # calling the class says there is none
    if inherited is None:
        msg = f'Can\'t define "created" event class for name {created_name!r}'
        raise TypeError(msg)
    if base_event is None:
        raise _base_event_not_defined(cls)
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


def _inherited_created_event(
    cls: type[Any], base_event: type[Any] | None
) -> type[CanInitAggregate[Any]] | None:
    """The created event of the nearest base class that has exactly one."""
    for base in cls.__mro__[1:]:
        created = base.__dict__.get("_created_event_class_")
        if isinstance(created, type):
            return created
    if base_event is not None and issubclass(base_event, _StrIds.Event):
        return _StrIds.Created
    return None


def _define_decorated_events(cls: AggregateClass, base_event: type | None) -> None:
    given_classes: set[type] = set()
    for attr_name, value in tuple(cls.__dict__.items()):
        decorator = _command_decorator(cls, attr_name, value)
        if decorator is None or decorator.event_class is not None:
            continue
        attrs: dict[str, Any] = {"_decorated_spec_": decorator.spec}
        if decorator.event_topic:
            attrs["TOPIC"] = decorator.event_topic
        given = decorator.given_event_class
        if given is not None:
            if not issubclass(given, CanMutateAggregate):
                msg = (
                    f"{given.__name__} is a decision (esox.dcb.domain): @event "
                    f"with it decorates enduring objects and slices, not "
                    f"{cls.__name__}.{attr_name}"
                )
                raise TypeError(msg)
            if issubclass(given, CanInitAggregate):
                msg = f"{given} is subclass of {CanInitAggregate.__name__}"
                raise TypeError(msg)
            if given in given_classes:
                # Two methods would both be applied as the one event class.
                msg = f"{given.__name__} event class used in more than one decorator"
                raise TypeError(msg)
            given_classes.add(given)
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
            if base_event is None:
                raise _base_event_not_defined(cls)
            event_class = _define_event_class(
                cls, name, (DecoratedFuncCaller, base_event), decorator.func, attrs
            )
        decorator.event_class = event_class
        setattr(cls, event_class.__name__, event_class)


def _command_decorator(
    cls: AggregateClass, attr_name: str, value: object
) -> CommandMethodDecorator | None:
    """The @event decorator of a class attribute that defines an event."""
    if isinstance(value, CommandMethodDecorator):
        return None if value.func.__name__ == "__init__" else value
    if not (
        isinstance(value, property) and isinstance(value.fset, CommandMethodDecorator)
    ):
        return None
    decorator = value.fset
    decorator.setter_arg_name = list(inspect.signature(decorator.func).parameters)[1]
    if decorator.func.__name__ != attr_name:
        if cls.__dict__.get(decorator.func.__name__) is decorator:
            # "x = property(get_x, set_x)" with set_x decorated: the event
            # is defined for set_x itself, under its own name.
            return None
        return decorator  # "x = property(get_x, event(set_x))"
    if decorator.name_inferred:
        # "@x.setter" over a bare "@event": the event would be named "X".
        msg = (
            f"@event decorator under @{decorator.func.__name__}.setter "
            "requires event name or class"
        )
        raise TypeError(msg)
    return decorator


def _redefine_inherited_events(cls: AggregateClass, base_event: type | None) -> None:
    """Give the class its own subclass of each event class of its bases, as
    eventsourcing does (``Sub.Started`` is a ``Sub.Event``)."""
    for aggregate_base in cls.__bases__:
        for name, value in tuple(aggregate_base.__dict__.items()):
            if (
                name in cls.__dict__
                or name.lower() == name
                or not isinstance(value, type)
                or not issubclass(value, CanMutateAggregate)
            ):
                continue
            assert base_event is not None
            attrs = {}
            if "_decorated_spec_" in value.__dict__:
                # Applied by the same method (found without walking the MRO).
                attrs["_decorated_spec_"] = value.__dict__["_decorated_spec_"]
            setattr(
                cls,
                name,
                _define_event_class(cls, name, (base_event, value), None, attrs),
            )


def _register_explicit_topics(cls: AggregateClass) -> None:
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


def check_explicit_topic_is_registered(event_class: type[Any]) -> None:
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
