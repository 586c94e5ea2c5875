"""Aggregate caches for the repository: unbounded, or least-recently-used."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

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

    def put(self, key: K, value: V) -> None:
        """Cache ``value`` under ``key``."""
        with self._lock:
            self._items[key] = value

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

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
