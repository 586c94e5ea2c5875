"""The application layer: application, repository, notification log, snapshots."""

from esox.application.app import Application, ProcessingEvent
from esox.application.notificationlog import (
    LocalNotificationLog,
    NotificationLog,
    Section,
)
from esox.application.repository import (
    AggregateNotFoundError,
    Repository,
    project_aggregate,
)

__all__ = [
    "AggregateNotFoundError",
    "Application",
    "LocalNotificationLog",
    "NotificationLog",
    "ProcessingEvent",
    "Repository",
    "Section",
    "project_aggregate",
]
