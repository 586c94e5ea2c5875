"""The DCB domain model, with the names of ``eventsourcing.dcb.domain`` (9.5).

A ``Decision`` is a domain event without an originator: it is recorded with
tags, and a perspective reads the decisions its consistency boundary (a list
of ``Selector``) selects. An ``EnduringObject`` is like an aggregate whose
boundary is its own id tag; a ``Group`` is a perspective over several
enduring objects, whose decisions are tagged with all their ids; a ``Slice``
is a perspective with its own boundary that projects decisions with
``@event`` methods named ``_`` and then ``execute()``s.

``@event(DecisionClass)`` (``esox.domain.event``) on a method of an enduring
object or slice makes the method apply that decision; on a method with
another name than ``_``, calling it also triggers the decision.
"""

from __future__ import annotations

import inspect
from abc import ABC, ABCMeta, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, update_wrapper
from typing import TYPE_CHECKING, Any, ClassVar, Generic, ParamSpec, Self, cast
from uuid import uuid4

from esox.domain.decorators import CommandMethodDecorator, decision_decorators
from esox.domain.events import AbstractDecision, ProgrammingError
from esox.utils import get_topic, resolve_topic

__all__ = [
    "Decision",
    "EnduringObject",
    "Group",
    "InitialDecision",
    "MetaEnduringObject",
    "MetaPerspective",
    "MetaSlice",
    "MetaSupportsEventDecorator",
    "Perspective",
    "Selector",
    "Slice",
    "TDecision",
    "TGroup",
    "TPerspective",
    "TSlice",
    "Tagged",
]

if TYPE_CHECKING:
    from typing_extensions import TypeVar
else:
    try:  # TypeVar's default= (EnduringObject[StudentID]) before Python 3.13
        from typing_extensions import TypeVar
    except ImportError:  # pragma: no cover (eventsourcing installs it)
        from typing import TypeVar

T = TypeVar("T")
P = ParamSpec("P")

# (perspective class, decision class) -> the function decorated with
# @event(decision class) on that perspective class.
decorated_funcs: dict[tuple[type, type], Callable[..., Any]] = {}
# Enduring object class -> the initial decision that creates it.
_initial_decisions: dict[type, type[InitialDecision]] = {}


@cache
def _parameter_names(func: Callable[..., Any]) -> tuple[str, ...]:
    return tuple(inspect.signature(func).parameters)


def _kwargs_for(func: Callable[..., Any], values: dict[str, Any]) -> dict[str, Any]:
    """The items of ``values`` that ``func`` (a function or a class) takes by name."""
    return {k: values[k] for k in _parameter_names(func) if k in values}


Applier = Callable[["Decision", Any], None]
# (perspective class, decision class) -> how the decision is applied by the
# perspective's @event method (None: it has none), worked out once.
_appliers: dict[tuple[type, type], Applier | None] = {}


def _applier(key: tuple[type, type]) -> Applier | None:
    """Apply a decision by calling the ``@event`` method that ``key`` names,
    with the decision's attributes that the method takes."""
    func = decorated_funcs.get(key)
    if func is None:
        _appliers[key] = None
        return None
    names = _parameter_names(func)

    def apply(decision: Decision, obj: Any) -> None:
        state = decision.as_dict()
        kwargs = {k: state[k] for k in names if k in state}
        try:
            func(obj, **kwargs)
        except TypeError as e:
            msg = (
                f"Failed to apply {type(decision).__qualname__} to "
                f"{type(obj).__qualname__} with kwargs {kwargs}: {e}"
            )
            raise TypeError(msg) from e

    _appliers[key] = apply
    return apply


class Decision(AbstractDecision):
    """A decision: what happened, recorded with tags rather than an originator."""

    def as_dict(self) -> dict[str, Any]:
        """The decision's attributes (what its ``@event`` methods are called with)."""
        return self.__dict__.copy()

    def mutate(self, obj: TPerspective | None) -> TPerspective | None:
        """Apply this decision to ``obj``: its ``@event`` method, then ``apply``."""
        assert obj is not None
        key = (type(obj), type(self))
        try:
            applier = _appliers[key]
        except KeyError:
            applier = _applier(key)
        if applier is not None:
            applier(self, obj)
        self.apply(obj)
        return obj

    def apply(self, obj: Any) -> None:
        """Override to change ``obj`` without an ``@event`` method."""


class InitialDecision(Decision):
    """The decision that creates an enduring object: it names the object's
    class (``originator_topic``) and holds its id as ``<class name>_id``."""

    originator_topic: str

    def mutate(self, obj: TPerspective | None) -> TPerspective | None:
        """Create the enduring object (or apply to ``obj`` by its ``@event``
        method, when another perspective projects this decision)."""
        if obj is not None:
            key = (type(obj), type(self))
            applier = _appliers[key] if key in _appliers else _applier(key)
            if applier is not None:
                applier(self, obj)
                return obj
        kwargs = self.as_dict()
        originator_type = resolve_topic(kwargs.pop("originator_topic"))
        if not (
            isinstance(originator_type, type)
            and issubclass(originator_type, EnduringObject)
        ):
            msg = f"Originator type not subclass of EnduringObject: {originator_type}"
            raise TypeError(msg)
        object_id = kwargs.pop(self.id_attr_name(originator_type))
        try:
            # Not the metaclass's __call__, which would trigger a new decision.
            enduring_object = type.__call__(originator_type, **kwargs)
        except TypeError as e:
            msg = (
                f"{type(self).__qualname__} cannot __init__ "
                f"{originator_type.__qualname__} with kwargs {kwargs}: {e}"
            )
            raise TypeError(msg) from e
        enduring_object.id = object_id
        return cast(TPerspective, enduring_object)

    @classmethod
    def id_attr_name(cls, enduring_object_class: type[EnduringObject[Any, TID]]) -> TID:
        """The name of the attribute that holds the object's id: ``student_id``."""
        return cast(TID, f"{enduring_object_class.__name__.lower()}_id")


TDecision = TypeVar("TDecision", bound=Decision)


class Tagged(Generic[TDecision]):
    """A decision and the tags it is recorded (and found) with."""

    __slots__ = ("decision", "tags")

    def __init__(self, tags: list[str], decision: TDecision) -> None:
        self.tags = tags
        self.decision = decision

    def __repr__(self) -> str:
        return f"Tagged(tags={self.tags!r}, decision={self.decision!r})"


@dataclass
class Selector:
    """Selects decisions of one of ``types`` (any if none) with all of ``tags``."""

    types: Sequence[type[Decision]] = ()
    tags: Sequence[str] = ()


class MetaPerspective(ABCMeta):
    """The metaclass of perspectives."""


class Perspective(ABC, Generic[TDecision], metaclass=MetaPerspective):
    """What a decision is made from: the decisions its consistency boundary
    selects, read up to ``last_known_position``, and the new ones it triggers."""

    last_known_position: int | None
    new_decisions: list[Tagged[TDecision]]

    def __new__(cls, *_: Any, **__: Any) -> Self:
        self = super().__new__(cls)
        self.last_known_position = None
        self.new_decisions = []
        return self

    @abstractmethod
    def consistency_boundary(self) -> Selector | Sequence[Selector]:
        """The selectors of the decisions this perspective depends on."""

    def trigger_event(
        self,
        decision_cls: Callable[P, TDecision],
        tags: Sequence[str] = (),
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> None:
        """Construct a decision, apply it to this perspective and keep it to save."""
        tagged = Tagged[TDecision](
            tags=list(tags), decision=decision_cls(*args, **kwargs)
        )
        tagged.decision.mutate(self)
        self.new_decisions.append(tagged)

    def collect_events(self) -> Sequence[Tagged[TDecision]]:
        """The new decisions (and forget them)."""
        collected, self.new_decisions = self.new_decisions, []
        return collected


TPerspective = TypeVar("TPerspective", bound=Perspective[Any])


def _decision_command(
    decorator: CommandMethodDecorator, decision_cls: type[Decision]
) -> Callable[..., None]:
    """The method that triggers ``decision_cls`` with the call's arguments."""
    spec = decorator.spec

    def command(perspective: Any, /, *args: Any, **kwargs: Any) -> None:
        values = spec.bind(args, kwargs)
        perspective.trigger_event(decision_cls, **_kwargs_for(decision_cls, values))

    return update_wrapper(command, decorator.func)


class MetaSupportsEventDecorator(MetaPerspective):
    """Finds the ``@event(DecisionClass)`` methods defined in the class body."""

    projected_types: list[type[Decision]]

    def __init__(
        cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]
    ) -> None:
        super().__init__(name, bases, namespace)
        cls.projected_types = []
        prefix = f"{cls.__qualname__}."
        mine = [
            d
            for d in decision_decorators
            if d.func.__module__ == cls.__module__
            and d.func.__qualname__.startswith(prefix)
        ]
        for decorator in mine:
            decision_decorators.remove(decorator)
            given = decorator.given_event_class
            if not (isinstance(given, type) and issubclass(given, Decision)):
                msg = f"@event on {decorator.func.__qualname__} needs a Decision class"
                raise TypeError(msg)
            func_name = decorator.func.__name__
            if func_name == "__init__":
                if issubclass(given, InitialDecision):
                    _initial_decisions[cls] = given
                setattr(cls, func_name, decorator.func)
            elif func_name != "_" and cls.__dict__.get(func_name) is decorator:
                setattr(cls, func_name, _decision_command(decorator, given))
            decorated_funcs[(cls, given)] = decorator.func
            _appliers.clear()
            cls.projected_types.append(given)


class MetaEnduringObject(MetaSupportsEventDecorator):
    """Enduring object classes: ``Cls(**kwargs)`` triggers the initial decision."""

    def __init__(
        cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]
    ) -> None:
        super().__init__(name, bases, namespace)
        for item in cls.__dict__.values():
            if isinstance(item, type) and issubclass(item, InitialDecision):
                _initial_decisions[cls] = item
                break

    def __call__(cls: type[T], *args: Any, **kwargs: Any) -> T:
        assert issubclass(cls, EnduringObject)
        try:
            initial_decision = _initial_decisions[cls]
        except KeyError:
            msg = (
                f"Enduring object class {cls.__name__} has no "
                f"InitialDecision class. Please define a subclass of "
                f"InitialDecision as a nested class on {cls.__name__}."
            )
            raise ProgrammingError(msg) from None
        if args:
            # Positional arguments by the names of __init__'s parameters.
            bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
            kwargs = dict(list(bound.arguments.items())[1:])
        return cast(T, cls._create(decision_cls=initial_decision, **kwargs))


if TYPE_CHECKING:
    TID = TypeVar("TID", bound=str, default=str)
else:
    try:
        TID = TypeVar("TID", bound=str, default=str)
    except TypeError:  # pragma: no cover (typing.TypeVar before 3.13)
        TID = TypeVar("TID", bound=str)


class EnduringObject(
    Perspective[TDecision], Generic[TDecision, TID], metaclass=MetaEnduringObject
):
    """An object whose decisions are tagged with its id (``<class>-<uuid4>``)."""

    id: TID

    @classmethod
    def _create(cls, decision_cls: type[InitialDecision], **kwargs: Any) -> Self:
        object_id = cls._create_id()
        id_attr_name = decision_cls.id_attr_name(cls)
        for reserved in (id_attr_name, "originator_topic", "tags"):
            if reserved in kwargs:
                msg = f"{cls.__name__}() takes no {reserved!r}: it is set for you"
                raise TypeError(msg)
        initial_kwargs: dict[str, Any] = {
            id_attr_name: object_id,
            "originator_topic": get_topic(cls),
            **kwargs,
        }
        try:
            decision = decision_cls(**initial_kwargs)
        except TypeError as e:
            msg = (
                f"Unable to construct {decision_cls.__qualname__} event "
                f"with kwargs {initial_kwargs}: {e}"
            )
            raise TypeError(msg) from e
        tagged = Tagged[TDecision](tags=[object_id], decision=cast(TDecision, decision))
        self = cast(Self, decision.mutate(None))
        assert self is not None
        self.new_decisions.append(tagged)
        return self

    @classmethod
    def _create_id(cls) -> TID:
        return cast(TID, f"{cls.__name__.lower()}-{uuid4()}")

    def consistency_boundary(self) -> list[Selector]:
        """The decisions tagged with this object's id."""
        return [Selector(tags=[self.id])]

    def trigger_event(
        self,
        decision_cls: Callable[P, TDecision],
        tags: Sequence[str] = (),
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> None:
        """Trigger a decision tagged with this object's id (and ``tags``)."""
        super().trigger_event(decision_cls, [self.id, *tags], *args, **kwargs)


class Group(Perspective[TDecision]):
    """Enduring objects decided on together: a decision is tagged with all
    their ids and applied to each; the boundary is all of theirs."""

    _enduring_objects: list[EnduringObject[TDecision]]

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        self = super().__new__(cls, *args, **kwargs)
        self._enduring_objects = [a for a in args if isinstance(a, EnduringObject)]
        return self

    def consistency_boundary(self) -> list[Selector]:
        """The selectors of the group's objects, by tags."""
        return [
            Selector(tags=selector.tags)
            for obj in self._enduring_objects
            for selector in obj.consistency_boundary()
        ]

    def trigger_event(
        self,
        decision_cls: Callable[P, TDecision],
        tags: Sequence[str] = (),
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> None:
        """Trigger a decision tagged with every object's id, applied to each."""
        objs = self._enduring_objects
        tagged = Tagged[TDecision](
            tags=[o.id for o in objs] + list(tags),
            decision=decision_cls(*args, **kwargs),
        )
        for obj in objs:
            tagged.decision.mutate(obj)
        self.new_decisions.append(tagged)


class MetaSlice(MetaSupportsEventDecorator):
    """Slice classes: ``do_projection`` if they project any decision type."""

    do_projection: bool

    def __init__(
        cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]
    ) -> None:
        super().__init__(name, bases, namespace)
        cls.do_projection = len(cls.projected_types) != 0


class Slice(Perspective[TDecision], metaclass=MetaSlice):
    """One use case's perspective: project, then ``execute()`` the decision."""

    do_projection: ClassVar[bool]

    def execute(self) -> None:
        """Decide: check the projected state and trigger decisions."""


TSlice = TypeVar("TSlice", bound=Slice[Any])
TGroup = TypeVar("TGroup", bound=Group[Any])
