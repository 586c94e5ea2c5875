"""The ``@event`` decorator: command methods that trigger and apply events."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import FunctionType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from esox.domain.events import CanMutateAggregate, ProgrammingError

if TYPE_CHECKING:
    from esox.domain.aggregate import BaseAggregate

__all__ = ["CommandMethodDecorator", "event", "triggers"]

TDecoratable = TypeVar("TDecoratable", bound=Callable[..., Any] | property)

_EMPTY = inspect.Parameter.empty


def _listed(names: list[str]) -> str:
    """``'a'``, ``'a' and 'b'``, ``'a', 'b', and 'c'``: as Python lists them."""
    quoted = [f"'{name}'" for name in names]
    if len(quoted) < 3:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


class MethodSpec:
    """What a decorated method accepts, worked out once instead of per call."""

    __slots__ = (
        "accepts_id",
        "defaults",
        "factories",
        "func",
        "keyword_only",
        "names",
        "positional",
        "qualname",
    )

    def __init__(self, func: Callable[..., Any], *, skip_id: bool = False) -> None:
        params = list(inspect.signature(func).parameters.values())[1:]
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                msg = (
                    f"{func.__qualname__}() has variable parameters (*{p.name}); "
                    "an event class needs named parameters"
                )
                raise TypeError(msg)
            if p.kind is p.POSITIONAL_ONLY:
                msg = (
                    f"{func.__qualname__}() has positional-only parameter "
                    f"{p.name!r}; an event class needs keyword-compatible ones"
                )
                raise TypeError(msg)
        self.func = func
        self.accepts_id = skip_id
        self.qualname = func.__qualname__
        # How a call's arguments bind (an __init__'s id included) ...
        self.positional: tuple[str, ...] = tuple(
            p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD
        )
        self.keyword_only: tuple[str, ...] = tuple(
            p.name for p in params if p.kind is p.KEYWORD_ONLY
        )
        # ... and what the event records (an __init__'s id is the originator id).
        if skip_id:
            params = [p for p in params if p.name != "id"]
        self.names: tuple[str, ...] = tuple(p.name for p in params)
        self.defaults: dict[str, Any] = {
            p.name: p.default for p in params if p.default is not _EMPTY
        }
        # Dataclass fields with a default_factory: called when the argument is
        # missing, so the event records the value (set by the aggregate class).
        self.factories: dict[str, Callable[[], Any]] = {}

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Turn a call's arguments into keyword arguments, with defaults applied.

        A bad call raises TypeError with the message Python gives for it.
        """
        positional = self.positional
        if not kwargs and len(args) == len(positional) == len(self.names):
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
            if key in bound:
                msg = f"{name}() got multiple values for argument '{key}'"
                raise TypeError(msg)
            if key not in self.names and not (key == "id" and self.accepts_id):
                msg = f"{name}() got an unexpected keyword argument '{key}'"
                raise TypeError(msg)
            bound[key] = value
        given = len(bound) - (self.accepts_id and "id" in bound)
        if given != len(self.names):
            for group in (positional, self.keyword_only):
                missing = []
                for param in group:
                    if param in bound:
                        continue
                    if param in self.factories:
                        bound[param] = self.factories[param]()
                    elif param in self.defaults:
                        bound[param] = self.defaults[param]
                    elif param != "id" or not self.accepts_id:
                        missing.append(param)
                if missing:
                    kind = "positional" if group is positional else "keyword-only"
                    msg = (
                        f"{name}() missing {len(missing)} required {kind} "
                        f"argument{'s' * (len(missing) != 1)}: {_listed(missing)}"
                    )
                    raise TypeError(msg)
        return bound


class CommandMethodDecorator:
    """A method (or property setter) whose call triggers an event.

    The method body runs when the event is applied: when triggered, and again
    whenever the aggregate is reconstructed from its events.
    """

    def __init__(
        self,
        decorated: Callable[..., Any] | property,
        event_name: str | None = None,
        event_class: type[CanMutateAggregate[Any]] | None = None,
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
                msg = (
                    f"@event on @{decorated.fset.__name__}.setter requires an event "
                    "name or class"
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

    def __get__(self, instance: BaseAggregate[Any] | None, owner: type) -> Any:
        if self.func.__name__ == "_":
            msg = "Underscore 'non-command' methods cannot be used to trigger events."
            raise ProgrammingError(msg)
        if self.decorated_property is not None:
            return self.decorated_property.__get__(instance, owner)
        if self.func.__name__ == "__init__":
            return self.func.__get__(instance, owner)
        if instance is None:
            return UnboundCommandMethod(self)
        return BoundCommandMethod(self, instance)

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
        aggregate._trigger_decorated(event_class, self.spec.bind(args, kw))


class BoundCommandMethod:
    """A command method bound to an aggregate: calling it triggers the event."""

    __slots__ = ("aggregate", "decorator")

    def __init__(self, decorator: CommandMethodDecorator, aggregate: Any) -> None:
        self.decorator = decorator
        self.aggregate = aggregate

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.decorator.trigger(self.aggregate, args, kwargs)

    @property
    def __name__(self) -> str:
        return self.decorator.func.__name__

    @property
    def __doc__(self) -> str | None:  # type: ignore[override]
        return self.decorator.func.__doc__

    def __getattr__(self, name: str) -> Any:
        # The decorated function's other attributes: __qualname__,
        # __annotations__, __wrapped__-style metadata, user attributes.
        return getattr(self.decorator.func, name)


class UnboundCommandMethod:
    """A command method looked up on the class: call it with the aggregate first."""

    def __init__(self, decorator: CommandMethodDecorator) -> None:
        self.decorator = decorator
        self.__qualname__ = decorator.func.__qualname__
        self.__name__ = decorator.func.__name__
        self.__doc__ = decorator.func.__doc__
        self.__module__ = decorator.func.__module__
        self.__annotations__ = decorator.func.__annotations__

    def __call__(self, aggregate: Any, *args: Any, **kwargs: Any) -> None:
        self.decorator.trigger(aggregate, args, kwargs)


@overload
def event(arg: TDecoratable, /) -> TDecoratable: ...


@overload
def event(
    arg: str | type[CanMutateAggregate[Any]] | None = None,
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
    msg = f"{arg} is not a str, function, property, or subclass of CanMutateAggregate"
    raise TypeError(msg)


triggers = event
