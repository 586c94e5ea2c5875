"""esox: event sourcing for Python, with its hot paths in Rust.

The 90% case::

    from esox import Aggregate, Application, event

The names below are loaded on first use, so that ``import esox.domain`` loads
the domain layer only (not the Rust extension, persistence or application).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from esox.application import AggregateNotFoundError, Application
    from esox.domain import Aggregate, BaseAggregate, event, triggers

__version__ = "0.1.0"

# Each public name and the module that defines it.
_LAZY = {
    "Aggregate": "esox.domain",
    "AggregateNotFoundError": "esox.application",
    "Application": "esox.application",
    "BaseAggregate": "esox.domain",
    "event": "esox.domain",
    "triggers": "esox.domain",
}

__all__ = [
    "Aggregate",
    "AggregateNotFoundError",
    "Application",
    "BaseAggregate",
    "event",
    "triggers",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'esox' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
