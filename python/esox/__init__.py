"""esox: event sourcing for Python, with its hot paths in Rust.

The 90% case::

    from esox import Aggregate, Application, event
"""

from esox.application import AggregateNotFoundError, Application
from esox.domain import Aggregate, BaseAggregate, event, triggers

__version__ = "0.1.0"

__all__ = [
    "Aggregate",
    "AggregateNotFoundError",
    "Application",
    "BaseAggregate",
    "event",
    "triggers",
]
