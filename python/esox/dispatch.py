"""eventsourcing's module name for ``singledispatchmethod``."""

from esox.system.dispatch import singledispatchmethod

__all__ = ["singledispatchmethod"]
