"""``singledispatchmethod`` for policies: one method, an implementation per event type.

The standard library's version, plus one thing policies need: an
implementation may be registered by a type annotation that names a class
defined later in the module (or a nested event class written as a string
under ``from __future__ import annotations``). Such registrations are
retried the first time the method is looked up, when the module is complete.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["singledispatchmethod"]

T = TypeVar("T")


class singledispatchmethod(functools.singledispatchmethod, Generic[T]):  # type: ignore[type-arg]
    """Dispatch a method on the type of its first argument after ``self``.

    ::

        class Ledger(ProcessApplication):
            @singledispatchmethod
            def policy(self, domain_event, processing_event):
                "Events without a registered policy are ignored."

            @policy.register
            def _(self, domain_event: BankAccount.Credited, processing_event):
                ...
    """

    def __init__(self, func: Callable[..., T]) -> None:
        super().__init__(func)
        self._deferred: list[Callable[..., T]] = []
        self._deferred_lock = threading.Lock()

    def register(self, cls: Any, method: Callable[..., T] | None = None) -> Any:
        """Register an implementation, for ``cls`` or for its annotated type."""
        try:
            return super().register(cls, method)
        except NameError:
            # An annotation names something not defined yet: try again later.
            if method is None and callable(cls) and not isinstance(cls, type):
                self._deferred.append(cls)
                return cls
            raise

    def __get__(self, obj: Any, cls: type[Any] | None = None) -> Callable[..., T]:
        if self._deferred:
            with self._deferred_lock:
                deferred, self._deferred = self._deferred, []
                for func in deferred:
                    super().register(func)
        return super().__get__(obj, cls)
