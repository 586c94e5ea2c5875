"""Topics, environment and small helpers shared by every layer."""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Mapping
from types import ModuleType
from typing import Any

__all__ = [
    "EnvType",
    "Environment",
    "TopicError",
    "clear_topic_cache",
    "get_topic",
    "register_topic",
    "resolve_topic",
    "strtobool",
]


class TopicError(Exception):
    """A topic does not resolve to an object, or clashes with a registered one."""


_topics_by_object: dict[Any, str] = {}
_objects_by_topic: dict[str, Any] = {}
_lock = threading.Lock()


def get_topic(obj: type | ModuleType | Any, /) -> str:
    """Return the topic of a class (``"module:QualName"``), or its ``TOPIC``."""
    try:
        return _topics_by_object[obj]
    except KeyError:
        pass
    topic = obj.__dict__.get("TOPIC") if isinstance(obj, type) else None
    if not topic:
        topic = f"{obj.__module__}:{obj.__qualname__}"
    register_topic(topic, obj)
    _topics_by_object[obj] = topic
    return topic


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
        msg = f"Topic {topic!r} is already registered for {registered!r}, not {obj!r}"
        raise TopicError(msg)


def clear_topic_cache() -> None:
    """Forget every registered and cached topic (for tests)."""
    with _lock:
        _objects_by_topic.clear()
        _topics_by_object.clear()


# The module that each optional extra of the esox package brings.
_EXTRAS = {
    "psycopg": "postgres",
    "psycopg_pool": "postgres",
    "starlette": "http",
    "uvicorn": "http",
    "httpx": "http",
    "orjson": "http",
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
    lowered = value.strip().lower()
    if lowered in ("y", "yes", "t", "true", "on", "1"):
        return True
    if lowered in ("n", "no", "f", "false", "off", "0", ""):
        return False
    msg = f"invalid truth value {value!r}"
    raise ValueError(msg)


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


_SECRET_MARKERS = ("KEY", "PASSWORD", "TOKEN", "SECRET")


def _is_secret(name: str) -> bool:
    """Whether a setting's value must never be shown (keys, passwords, tokens)."""
    upper = name.upper()
    return any(marker in upper for marker in _SECRET_MARKERS)


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
