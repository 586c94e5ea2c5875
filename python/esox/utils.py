"""Topics, environment and small helpers shared by every layer."""

from __future__ import annotations

import importlib
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import wraps
from inspect import isfunction
from types import ModuleType, TracebackType
from typing import Any, Self, cast

__all__ = [
    "EnvType",
    "Environment",
    "SettingError",
    "TopicError",
    "clear_topic_cache",
    "construct_topic",
    "get_method_name",
    "get_topic",
    "register_topic",
    "resolve_topic",
    "retry",
    "reversed_keys",
    "strtobool",
]


class TopicError(Exception):
    """A topic does not resolve to an object, or clashes with a registered one."""


class _TopicRegistry(dict[str, Any]):
    """Topics and the objects they resolve to. Removing entries (as
    eventsourcing's tests do, to "deploy" a new version of a class) tells the
    listeners, so caches of resolved classes (the mappers') are emptied."""

    listeners: list[Callable[[], None]] = []

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._changed()

    def pop(self, key: str, *default: Any) -> Any:
        value = super().pop(key, *default)
        self._changed()
        return value

    def popitem(self) -> tuple[str, Any]:
        item = super().popitem()
        self._changed()
        return item

    def clear(self) -> None:
        super().clear()
        self._changed()


_topics_by_object: dict[Any, str] = {}
_objects_by_topic = _TopicRegistry()
_lock = threading.Lock()
_topic_cache = _objects_by_topic
"""eventsourcing's name for the registry of resolved topics (tests delete from it)."""


def get_topic(obj: type | ModuleType | Any, /) -> str:
    """Return the topic of a class (``"module:QualName"``), or its ``TOPIC``."""
    try:
        return _topics_by_object[obj]
    except KeyError:
        pass
    topic = construct_topic(obj)
    register_topic(topic, obj)
    _topics_by_object[obj] = topic
    return topic


def construct_topic(obj: type | ModuleType | Any, /) -> str:
    """The topic of an object without caching it: its ``TOPIC`` (inherited
    too, as in eventsourcing), or ``"module:QualName"``."""
    topic = getattr(obj, "TOPIC", None)
    return topic or f"{obj.__module__}:{obj.__qualname__}"


def resolve_topic(topic: str) -> Any:
    """Return the object a topic names: a registered object, or module:attr.path."""
    try:
        return _objects_by_topic[topic]
    except KeyError:
        pass
    module_name, _, attr_path = topic.partition(":")
    # A registered prefix (a renamed or moved module or class) resolves the rest.
    obj: Any = None
    rest: list[str] = attr_path.split(".") if attr_path else []
    parts = rest
    for i in range(len(parts) - 1, 0, -1):
        prefix = f"{module_name}:{'.'.join(parts[:i])}"
        if prefix in _objects_by_topic:
            obj, rest = _objects_by_topic[prefix], parts[i:]
            break
    if obj is None:
        if module_name in _objects_by_topic:
            obj = _objects_by_topic[module_name]
        else:
            try:
                obj = importlib.import_module(_renamed_module(module_name))
            except ImportError as e:
                msg = f"Failed to resolve topic {topic!r}: {e}"
                raise TopicError(msg) from e
    for name in rest:
        try:
            obj = getattr(obj, name)
        except AttributeError as e:
            msg = f"Failed to resolve topic {topic!r}: {e}"
            raise TopicError(msg) from e
    register_topic(topic, obj)
    return obj


def _renamed_module(module_name: str) -> str:
    """Apply a registered package rename (``register_topic("old.pkg", new_pkg)``)."""
    parts = module_name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:i])
        registered = _objects_by_topic.get(prefix)
        if isinstance(registered, ModuleType):
            return ".".join([registered.__name__, *parts[i:]])
    return module_name


def register_topic(topic: str, obj: Any) -> None:
    """Make ``topic`` resolve to ``obj``: for renamed or moved classes and modules.

    Raises TopicError if the topic already resolves to a different object.
    """
    with _lock:
        registered = _objects_by_topic.setdefault(topic, obj)
    if registered is not obj and registered != obj:
        msg = (
            f"Refusing to register {obj!r}: {registered!r} is already registered "
            f"for topic {topic!r}"
        )
        raise TopicError(msg)


def clear_topic_cache() -> None:
    """Forget every registered and cached topic (for tests)."""
    with _lock:
        _objects_by_topic.clear()
        _topics_by_object.clear()


TRUE_VALUES = ("y", "yes", "t", "true", "on", "1")
FALSE_VALUES = ("n", "no", "f", "false", "off", "0")


class Closing:
    """A context manager that closes itself on exit: ``with x:`` ends with
    ``x.close()``, which subclasses define."""

    def close(self) -> None:
        """Release what the object holds open."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Stopping:
    """A context manager that stops itself on exit: ``with x:`` ends with
    ``x.stop()``, which subclasses define."""

    def stop(self) -> None:
        """Stop what the object runs."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class SettingError(ValueError):
    """A setting's value is not accepted; the message names the variable
    that set it and the values it accepts."""


# The module that each optional extra of the esox package brings.
_EXTRAS = {
    "psycopg": "postgres",
    "psycopg_pool": "postgres",
    "starlette": "http",
    "uvicorn": "http",
    "httpx": "http",
    "orjson": "http",
    "msgspec": "msgpack",
}


def missing_extra(error: BaseException | None) -> str | None:
    """The extra (``postgres``, ``http``) whose absence caused ``error``, if any.

    Follows ``__cause__`` and ``__context__``, so an error raised while handling
    the ImportError is recognised too.
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ImportError) and error.name:
            extra = _EXTRAS.get(error.name.partition(".")[0])
            if extra is not None:
                return extra
        error = error.__cause__ or error.__context__
    return None


def strtobool(value: str) -> bool:
    """Read a truth value from a string: y/yes/t/true/on/1 or n/no/f/false/off/0."""
    if not isinstance(value, str):
        msg = f"{value!r} is not a str"
        raise TypeError(msg)
    lowered = value.strip().lower()
    if lowered in TRUE_VALUES:
        return True
    if lowered in FALSE_VALUES:
        return False
    msg = f"invalid truth value {value!r}"
    raise ValueError(msg)


def _present_as_package(namespace: dict[str, Any]) -> None:
    """Name a package's public classes (and their nested classes) for the
    package, not the submodule that defines them: ``esox.domain:Aggregate``,
    as eventsourcing's topics and reprs read ``eventsourcing.domain:Aggregate``.
    Old topics naming the submodules still resolve (the submodules stay)."""
    package = namespace["__name__"]
    for name in namespace["__all__"]:
        obj = namespace[name]
        if not (isinstance(obj, type) and obj.__qualname__ == name):
            continue
        for cls in (obj, *vars(obj).values()):
            if isinstance(cls, type) and cls.__module__.startswith(package + "."):
                cls.__module__ = package


def get_method_name(method: Callable[..., Any]) -> str:
    """The qualified name of a function or method."""
    return method.__qualname__


def reversed_keys(d: dict[Any, Any]) -> Iterator[Any]:
    """The keys of a dict, last first."""
    return reversed(d.keys())


def retry(
    exc: type[Exception] | tuple[type[Exception], ...] | Callable[..., Any] = Exception,
    max_attempts: int = 1,
    wait: float = 0,
    stall: float = 0,
) -> Any:
    """Retry a function when it raises ``exc``: ``@retry``, or
    ``@retry(ValueError, max_attempts=3, wait=0.1, stall=0)``.

    ``max_attempts`` counts calls in all; ``wait`` seconds (jittered by 10%) pass
    between them; ``stall`` seconds pass before the first.
    """
    if isfunction(exc):
        return retry()(exc)
    excs = exc if isinstance(exc, tuple | list) else (exc,)
    for e in excs:
        if not (isinstance(e, type) and issubclass(e, Exception)):
            msg = f"not an exception class: {e!r}"
            raise TypeError(msg)
    if not isinstance(max_attempts, int):
        msg = f"'max_attempts' must be an int: {max_attempts!r}"
        raise TypeError(msg)
    for name, value in (("wait", wait), ("stall", stall)):
        if not isinstance(value, float | int):
            msg = f"{name!r} must be a float: {value!r}"
            raise TypeError(msg)
    caught = cast(tuple[type[Exception], ...], tuple(excs))

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(func)
        def retrying(*args: Any, **kwargs: Any) -> Any:
            if stall:
                time.sleep(stall)
            attempts = 0
            while True:
                try:
                    return func(*args, **kwargs)
                except caught:
                    attempts += 1
                    if attempts >= max_attempts:
                        raise
                    time.sleep(wait * (1 + 0.1 * (random.random() - 0.5)))

        return retrying

    return decorator


EnvType = Mapping[str, str]


class Environment(dict[str, str]):
    """Configuration for one application, as a dict of strings.

    ``get("X")`` returns ``<NAME>_X`` if set, else ``X`` (the name upper-cased,
    as in eventsourcing), so several applications can share one process
    environment. The application merges class ``env``, ``os.environ`` and the
    constructor's ``env`` into it, later ones winning.
    """

    def __init__(self, name: str = "", env: EnvType | None = None) -> None:
        super().__init__(env or {})
        self.name = name

    def get(self, key: str, default: Any = None) -> Any:
        for k in self.create_keys(key):
            value = super().get(k)
            if value is not None:
                return value
        return default

    def __repr__(self) -> str:
        shown = {
            k: ("<redacted>" if _is_secret(k) else redact_url_credentials(v))
            for k, v in self.items()
        }
        return f"Environment(name={self.name!r}, env={shown!r})"

    __str__ = __repr__

    def create_keys(self, key: str) -> list[str]:
        """The names looked up for ``key``, most specific first."""
        keys = []
        if self.name:
            keys.append(f"{self.name.upper()}_{key}")
        keys.append(key)
        return keys

    # Typed readers: each returns ``default`` when the setting is absent or
    # empty, and otherwise the value read, or raises ``setting_error`` naming
    # the variable that set it and the values accepted.

    setting_error: type[SettingError] = SettingError
    """What the readers raise (factories use a subclass that is also an
    ``InfrastructureFactoryError``)."""

    def source(self, key: str) -> str:
        """The variable that sets ``key`` (``<NAME>_KEY`` or ``KEY``)."""
        for name in self.create_keys(key):
            if dict.get(self, name) is not None:
                return name
        return key

    def invalid(self, key: str, expected: str) -> SettingError:
        """The error for ``key``'s value: the variable, its value, what is accepted."""
        value = self.get(key)
        return self.setting_error(
            f"{self.source(key)}={value!r} is not valid: expected {expected}"
        )

    def is_set(self, key: str) -> bool:
        """Whether ``key`` has a value (not absent, not an empty string)."""
        return self._raw(key) is not None

    def _raw(self, key: str) -> Any:
        """The value of ``key``, None if absent or an empty or blank string."""
        value = self.get(key)
        if isinstance(value, str):
            return value.strip() or None
        return value

    def read_str(self, key: str, default: str | None = None) -> str | None:
        """A string setting (stripped)."""
        value = self._raw(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.invalid(key, f"a string, not a {type(value).__name__}")
        return value

    def read_bool(self, key: str, default: bool) -> bool:
        """A truth value: y/yes/t/true/on/1 or n/no/f/false/off/0 (or a bool)."""
        value = self._raw(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            lowered = value.lower()
            if lowered in TRUE_VALUES:
                return True
            if lowered in FALSE_VALUES:
                return False
        accepted = "/".join(TRUE_VALUES) + " or " + "/".join(FALSE_VALUES)
        raise self.invalid(key, f"a truth value: {accepted}")

    def read_int(
        self,
        key: str,
        default: int,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int:
        """An integer, within ``minimum`` and ``maximum`` (inclusive) if given."""
        value = self._raw(key)
        if value is None:
            return default
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            try:
                number = int(value)
            except ValueError:
                number = None
        if (
            number is None
            or (minimum is not None and number < minimum)
            or (maximum is not None and number > maximum)
        ):
            raise self.invalid(key, "an integer" + _bounds(minimum, maximum))
        return number

    def read_float(
        self,
        key: str,
        default: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        positive: bool = False,
        unit: str = "",
    ) -> float:
        """A finite number, within ``minimum`` and ``maximum`` (inclusive)."""
        value = self._raw(key)
        if value is None:
            return default
        number = math.nan
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = math.nan
        if (
            not math.isfinite(number)
            or (minimum is not None and number < minimum)
            or (maximum is not None and number > maximum)
            or (positive and number <= 0)
        ):
            kind = "a positive number" if positive else "a number"
            raise self.invalid(key, kind + unit + _bounds(minimum, maximum))
        return number

    def read_duration(
        self,
        key: str,
        default: float,
        *,
        maximum: float | None = None,
        positive: bool = False,
    ) -> float:
        """A number of seconds: finite, not negative, at most ``maximum``."""
        return self.read_float(
            key,
            default,
            minimum=None if positive else 0.0,
            maximum=maximum,
            positive=positive,
            unit=" of seconds",
        )

    def read_choice(self, key: str, default: str, choices: Sequence[str]) -> str:
        """One of ``choices`` (case-insensitive), returned as spelled there."""
        value = self._raw(key)
        if value is None:
            return default
        if isinstance(value, str):
            for choice in choices:
                if value.lower() == choice.lower():
                    return choice
        raise self.invalid(key, "one of " + ", ".join(choices))

    def read_path(self, key: str, default: str | None = None) -> str | None:
        """A file path or database name (a str or an ``os.PathLike``), as a str."""
        value = self.get(key)
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if isinstance(value, bytes):
            raise self.invalid(key, "a path as a str or an os.PathLike, not bytes")
        if value is None or (isinstance(value, str) and not value.strip()):
            return default
        if not isinstance(value, str):
            raise self.invalid(
                key, f"a path as a str or an os.PathLike, not a {type(value).__name__}"
            )
        return value


_SECRET_MARKERS = ("KEY", "PASSWORD", "TOKEN", "SECRET")


def _is_secret(name: str) -> bool:
    """Whether a setting's value must never be shown (keys, passwords, tokens)."""
    upper = name.upper()
    return any(marker in upper for marker in _SECRET_MARKERS)


def _bounds(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {_number(minimum)} to {_number(maximum)}"
    if minimum is not None:
        return f" of at least {_number(minimum)}"
    if maximum is not None:
        return f" of at most {_number(maximum)}"
    return ""


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# "scheme://user:password@" (the password may be empty, or hold ':' and '/').
_URL_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)[^@\s]*@")


def redact_url_credentials(text: Any) -> Any:
    """``text`` with the password of every URL in it shown as ``***``.

    ``postgresql://u:pw@h/db`` becomes ``postgresql://u:***@h/db``; anything
    that is not a string is returned as it is.
    """
    if not isinstance(text, str) or "://" not in text:
        return text
    return _URL_CREDENTIALS.sub(r"\1***@", text)
