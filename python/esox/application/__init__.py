"""The application layer: application, repository, notification log, snapshots."""

from esox.application.app import Application, ProcessingEvent, TApplication
from esox.application.cache import Cache, LRUCache
from esox.application.log import EventSourcedLog
from esox.application.notificationlog import (
    LocalNotificationLog,
    NotificationLog,
    Section,
)
from esox.application.repository import (
    AggregateNotFoundError,
    MutatorFunction,
    ProjectorFunction,
    Repository,
    project_aggregate,
)
from esox.domain import ProgrammingError
from esox.utils import _present_as_package

__all__ = [
    "AggregateNotFoundError",
    "Application",
    "Cache",
    "EventSourcedLog",
    "LRUCache",
    "LocalNotificationLog",
    "MutatorFunction",
    "NotificationLog",
    "ProcessingEvent",
    "ProgrammingError",
    "ProjectorFunction",
    "Repository",
    "Section",
    "TApplication",
    "project_aggregate",
]

_present_as_package(globals())
