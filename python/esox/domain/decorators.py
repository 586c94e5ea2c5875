"""The ``@event`` decorator: command methods that trigger and apply events."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import update_wrapper
from types import FunctionType, MethodType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from esox.domain.events import AbstractDecision, CanMutateAggregate, ProgrammingError

if TYPE_CHECKING:
    from esox.domain.aggregate import BaseAggregate

__all__ = [
    "CommandMethodDecorator",
    "DecoratedFuncCaller",
    "MethodSpec",
    "decision_decorators",
    "event",
    "triggers",
]

TDecoratable = TypeVar("TDecoratable", bound=Callable[..., Any] | property)

# Decorators naming a decision class (esox.dcb.domain), in definition order,
# until the class they are defined on takes them: several methods named "_"
# in one class body leave only the last in the class's namespace.
decision_decorators: list[CommandMethodDecorator] = []

_EMPTY = inspect.Parameter.empty


def _listed(names: list[str]) -> str:
    """``'a'``, ``'a' and 'b'``, ``'a', 'b', and 'c'``: as Python lists them."""
    quoted = [f"'{name}'" for name in names]
    if len(quoted) < 3:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def _check_event_parameters(func: Callable[..., Any]) -> list[inspect.Parameter]:
    """The parameters after ``self``, if an event class can record them."""
    params = list(inspect.signature(func).parameters.values())[1:]
    for p in params:
        # eventsourcing's messages, which its users' tests assert.
        if p.kind is p.VAR_POSITIONAL:
            msg = f"*{p.name} not supported by decorator on {func.__name__}()"
            raise TypeError(msg)
        if p.kind is p.VAR_KEYWORD:
            msg = f"**{p.name} not supported by decorator on {func.__name__}()"
            raise TypeError(msg)
    positional_only = [p.name for p in params if p.kind is p.POSITIONAL_ONLY]
    if positional_only:
        msg = (
            "positional only args arg not supported by @event decorator on "
            f"{func.__name__}(): {', '.join(positional_only)} (an event records "
            "its values by name: make them positional-or-keyword)"
        )
        raise TypeError(msg)
    return params


class MethodSpec:
    """What a decorated method (or an aggregate's ``__init__``) accepts, worked
    out once instead of per call."""

    __slots__ = (
        "accepted",
        "defaults",
        "factories",
        "func",
        "keyword_only",
        "mentions_timestamp",
        "names",
        "positional",
        "qualname",
        "simple_count",
    )

    def __init__(self, func: Callable[..., Any], *, skip_id: bool = False) -> None:
        params = _check_event_parameters(func)
        self.func = func
        self.qualname = func.__qualname__
        # How a call's arguments bind (an __init__'s id included) ...
        self.positional: tuple[str, ...] = tuple(
            p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD
        )
        self.keyword_only: tuple[str, ...] = tuple(
            p.name for p in params if p.kind is p.KEYWORD_ONLY
        )
        self.accepted: frozenset[str] = frozenset(self.positional + self.keyword_only)
        self.defaults: dict[str, Any] = {
            p.name: p.default for p in params if p.default is not _EMPTY
        }
        # ... and what the event records (an __init__'s id is the originator id).
        self.names: tuple[str, ...] = tuple(
            p.name for p in params if not (skip_id and p.name == "id")
        )
        # A "timestamp" parameter is the event's own timestamp (given, or now).
        self.mentions_timestamp = "timestamp" in self.names
        # Dataclass fields with a default_factory: called when the argument is
        # missing, so the event records the value (set by the aggregate class).
        self.factories: dict[str, Callable[[], Any]] = {}
        self.simple_count = -1
        self._update_simple_count()

    def _update_simple_count(self) -> None:
        # A call that passes every parameter positionally binds by zip() alone.
        simple = not self.keyword_only and self.positional == self.names
        self.simple_count = len(self.positional) if simple else -1

    def expect_leading_id(self) -> None:
        """Take an ``id`` before the other arguments (the dataclass style, where
        the class annotates ``id``): required, as eventsourcing has it."""
        self.positional = ("id", *self.positional)
        self.accepted = self.accepted | {"id"}
        self._update_simple_count()

    def accept_optional_id(self) -> None:
        """Take an optional ``id=`` that the method does not declare (an esox
        extension, for aggregate classes that have no ``create_id``)."""
        self.accepted = self.accepted | {"id"}

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Turn a call's arguments into keyword arguments, with defaults applied.

        A bad call raises TypeError with the message Python gives for it.
        """
        positional = self.positional
        if not kwargs and len(args) == self.simple_count:
            return dict(zip(positional, args, strict=True))
        name = self.qualname
        if len(args) > len(positional):
            takes = len(positional) + 1
            msg = (
                f"{name}() takes {takes} positional argument{'s' * (takes != 1)} "
                f"but {len(args) + 1} were given"
            )
            raise TypeError(msg)
        bound = dict(zip(positional, args, strict=False))
        for key, value in kwargs.items():
            if key not in self.accepted:
                msg = f"{name}() got an unexpected keyword argument '{key}'"
                raise TypeError(msg)
            if key in bound:
                msg = f"{name}() got multiple values for argument '{key}'"
                raise TypeError(msg)
            bound[key] = value
        for group in (positional, self.keyword_only):
            missing = []
            for param in group:
                if param in bound:
                    continue
                if param in self.factories:
                    bound[param] = self.factories[param]()
                elif param in self.defaults:
                    bound[param] = self.defaults[param]
                else:
                    missing.append(param)
            if missing:
                kind = "positional" if group is positional else "keyword-only"
                msg = (
                    f"{name}() missing {len(missing)} required {kind} "
                    f"argument{'s' * (len(missing) != 1)}: {_listed(missing)}"
                )
                raise TypeError(msg)
        # In the parameters' order, which is the event's fields' order.
        ordered = {name: bound[name] for name in positional + self.keyword_only}
        if len(ordered) != len(bound):
            ordered.update(bound)  # an id that the method does not declare
        return ordered


class DecoratedFuncCaller(CanMutateAggregate[Any]):
    """Applies an event by calling the method that was decorated with ``@event``."""

    _decorated_spec_: ClassVar[MethodSpec]

    def apply(self, aggregate: Any) -> None:
        spec = type(self)._decorated_spec_
        state = self._as_dict()
        spec.func(aggregate, **{name: state[name] for name in spec.names})
        super().apply(aggregate)


class CommandMethodDecorator:
    """A method (or property setter) whose call triggers an event.

    The method body runs when the event is applied: when triggered, and again
    whenever the aggregate is reconstructed from its events.
    """

    def __init__(
        self,
        decorated: Callable[..., Any] | property,
        event_name: str | None = None,
        event_class: type[CanMutateAggregate[Any] | AbstractDecision] | None = None,
        topic: str | None = None,
    ) -> None:
        self.given_event_class = event_class
        self.event_topic = topic
        self.event_name = event_name
        self.name_inferred = False
        self.decorated_property: property | None = None
        self.setter_arg_name: str | None = None
        # Set by the aggregate class.
        self.event_class: type[CanMutateAggregate[Any]] | None = None
        if isinstance(decorated, property):
            if decorated.fset is None:
                name = getattr(decorated.fget, "__name__", "?")
                msg = f"@event can't decorate {name}() property getter"
                raise TypeError(msg)
            if not (event_name or event_class):
                # An event named after the property would read as a command
                # ("Value"), not as what happened.
                msg = (
                    f"@event decorator on @{decorated.fset.__name__}.setter "
                    "requires event name or class"
                )
                raise TypeError(msg)
            self.decorated_property = decorated
            func: Callable[..., Any] = decorated.fset
            self.setter_arg_name = list(inspect.signature(func).parameters)[1]
        elif isinstance(decorated, FunctionType):
            func = decorated
            if not (event_name or event_class) and func.__name__ != "__init__":
                self.name_inferred = True
                self.event_name = "".join(
                    part.capitalize() for part in func.__name__.split("_")
                )
        else:
            msg = f"{decorated!r} is not a function or property"
            raise TypeError(msg)
        self.func = func
        self.spec = MethodSpec(func, skip_id=func.__name__ == "__init__")
        # What instance.method is: a real bound method (made in C, with the
        # decorated function's name, module and docs), unless the method is
        # not a command (an __init__, a property, a "_" projection method).
        self._command: Callable[..., None] | None = None
        if self.decorated_property is None and func.__name__ not in ("_", "__init__"):
            self._command = _command_function(self)

    def __get__(self, instance: BaseAggregate[Any] | None, owner: type) -> Any:
        command = self._command
        if instance is not None and command is not None:
            return MethodType(command, instance)
        if self.func.__name__ == "_":
            msg = "Underscore 'non-command' methods cannot be used to trigger events."
            raise ProgrammingError(msg)
        if self.decorated_property is not None:
            return self.decorated_property.__get__(instance, owner)
        if self.func.__name__ == "__init__":
            return self.func.__get__(instance, owner)
        return UnboundCommandMethod(self)

    def __call__(self, aggregate: BaseAggregate[Any], value: Any) -> None:
        """Called as a property's setter (``@x.setter`` over ``@event``)."""
        assert self.setter_arg_name is not None
        self.trigger(aggregate, (), {self.setter_arg_name: value})

    def __set__(self, instance: BaseAggregate[Any], value: Any) -> None:
        assert self.setter_arg_name is not None
        self.trigger(instance, (), {self.setter_arg_name: value})

    def trigger(
        self, aggregate: BaseAggregate[Any], args: tuple[Any, ...], kw: dict[str, Any]
    ) -> None:
        """Trigger this method's event on ``aggregate`` with the call's arguments."""
        event_class = self.event_class
        if event_class is None:
            msg = f"{self.func.__qualname__} is not on an aggregate class"
            raise ProgrammingError(msg)
        kwargs = self.spec.bind(args, kw)
        timestamp = kwargs.get("timestamp") if self.spec.mentions_timestamp else None
        if timestamp is None:
            timestamp = event_class.create_timestamp()
        if self.spec.mentions_timestamp:
            # The method is applied with the event's timestamp, when
            # triggered as when replayed.
            kwargs["timestamp"] = timestamp
        aggregate._trigger_decorated(event_class, kwargs, timestamp)


def _command_function(decorator: CommandMethodDecorator) -> Callable[..., None]:
    """The function that ``aggregate.method`` binds: it triggers the event."""
    spec = decorator.spec
    positional = spec.positional
    simple_count = spec.simple_count
    if spec.mentions_timestamp:

        def command(aggregate: Any, /, *args: Any, **kwargs: Any) -> None:
            decorator.trigger(aggregate, args, kwargs)

    else:

        def command(aggregate: Any, /, *args: Any, **kwargs: Any) -> None:
            # decorator.trigger() inlined: this is every command's path.
            event_class = decorator.event_class
            if event_class is None:
                decorator.trigger(aggregate, args, kwargs)  # raises
                return
            if not kwargs and len(args) == simple_count:
                bound = dict(zip(positional, args, strict=True))
            else:
                bound = spec.bind(args, kwargs)
            aggregate._trigger_decorated(
                event_class, bound, event_class.create_timestamp()
            )

    return update_wrapper(command, decorator.func)


class UnboundCommandMethod:
    """A command method looked up on the class: call it with the aggregate first."""

    def __init__(self, decorator: CommandMethodDecorator) -> None:
        self.decorator = decorator
        self.__qualname__ = decorator.func.__qualname__
        self.__name__ = decorator.func.__name__
        self.__doc__ = decorator.func.__doc__
        self.__module__ = decorator.func.__module__
        self.__annotations__ = decorator.func.__annotations__

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        from esox.domain.aggregate import BaseAggregate

        if not args or not isinstance(args[0], BaseAggregate):
            msg = "Expected aggregate as first argument"
            raise TypeError(msg)
        self.decorator.trigger(args[0], args[1:], kwargs)


@overload
def event(arg: TDecoratable, /) -> TDecoratable: ...


@overload
def event(
    arg: str | type[CanMutateAggregate[Any] | AbstractDecision] | None = None,
    /,
    *,
    topic: str | None = None,
) -> Callable[[TDecoratable], TDecoratable]: ...


def event(arg: Any = None, /, *, topic: str | None = None) -> Any:
    """Make a method trigger an event: ``@event``, ``@event("Name")``, ``@event(Cls)``.

    On ``__init__`` it names the aggregate's created event. The event class is
    defined from the method's signature; the method body applies the event.
    ``topic`` gives the defined event class an explicit ``TOPIC``.
    """
    if isinstance(arg, (FunctionType, property)):
        return CommandMethodDecorator(arg)
    if arg is None:
        return lambda decorated: CommandMethodDecorator(decorated, topic=topic)
    if isinstance(arg, str):
        if not arg:
            msg = "Can't use empty string as name of event class"
            raise ValueError(msg)
        return lambda decorated: CommandMethodDecorator(
            decorated, event_name=arg, topic=topic
        )
    if isinstance(arg, type) and issubclass(arg, CanMutateAggregate):
        return lambda decorated: CommandMethodDecorator(
            decorated, event_class=arg, topic=topic
        )
    if isinstance(arg, type) and issubclass(arg, AbstractDecision):

        def decide(decorated: Any) -> CommandMethodDecorator:
            decorator = CommandMethodDecorator(decorated, event_class=arg)
            decision_decorators.append(decorator)
            return decorator

        return decide
    # eventsourcing's message, which its users' tests assert.
    msg = f"{arg} is not a str, function, property, or subclass of CanMutateAggregate"
    raise TypeError(msg)


triggers = event
