"""Aggregate caches for the repository: unbounded, or least-recently-used."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Generic, TypeVar

__all__ = ["Cache", "LRUCache"]

K = TypeVar("K")
V = TypeVar("V")


class Cache(Generic[K, V]):
    """An unbounded, thread-safe cache."""

    def __init__(self) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, *, evict: bool = False) -> V:
        """The cached value (KeyError if absent); ``evict`` removes it too."""
        with self._lock:
            if evict:
                return self._items.pop(key)
            return self._items[key]

    def put(self, key: K, value: V | None) -> Any:
        """Cache ``value`` under ``key`` (None is not cached, as in eventsourcing)."""
        if value is not None:
            with self._lock:
                self._items[key] = value
        return None

    @property
    def cache(self) -> dict[K, V]:
        """The cached items (eventsourcing's attribute name), a snapshot copy."""
        with self._lock:
            return dict(self._items)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class LRUCache(Cache[K, V]):
    """A thread-safe cache that forgets the least recently used beyond ``maxsize``."""

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize

    def get(self, key: K, *, evict: bool = False) -> V:
        with self._lock:
            if evict:
                return self._items.pop(key)
            value = self._items[key]
            self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V | None) -> tuple[K | None, V | None]:
        """Cache ``value`` (most recently used); return the item this evicted,
        or ``(None, None)``."""
        with self._lock:
            self._items[key] = value  # type: ignore[assignment]
            self._items.move_to_end(key)
            if len(self._items) > self.maxsize:
                return self._items.popitem(last=False)
        return None, None
