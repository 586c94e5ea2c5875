"""The system layer: log readers, followers, process applications, runners."""

from esox.system.definition import System
from esox.system.dispatch import singledispatchmethod
from esox.system.errors import (
    EventProcessingError,
    NotificationConvertingError,
    NotificationPullingError,
    RunnerAlreadyStartedError,
    SystemDefinitionError,
)
from esox.system.follower import (
    Follower,
    Leader,
    ProcessApplication,
    RecordingEvent,
    RecordingEventReceiver,
)
from esox.system.multiprocess import MultiProcessRunner, run_application
from esox.system.pipeline import (
    ConvertingJob,
    ConvertingThread,
    NewMultiThreadedRunner,
    NewSingleThreadedRunner,
    ProcessingJob,
    ProcessingThread,
    PullingThread,
)
from esox.system.projection import (
    ApplicationSubscription,
    EventSourcedProjection,
    EventSourcedProjectionRunner,
    Projection,
    ProjectionRunner,
)
from esox.system.reader import NotificationLogReader
from esox.system.runners import (
    FollowerThread,
    MultiThreadedRunner,
    Runner,
    SingleThreadedRunner,
)
from esox.utils import _present_as_package

__all__ = [
    "ApplicationSubscription",
    "ConvertingJob",
    "ConvertingThread",
    "EventProcessingError",
    "EventSourcedProjection",
    "EventSourcedProjectionRunner",
    "Follower",
    "FollowerThread",
    "Leader",
    "MultiProcessRunner",
    "MultiThreadedRunner",
    "NewMultiThreadedRunner",
    "NewSingleThreadedRunner",
    "NotificationConvertingError",
    "NotificationLogReader",
    "NotificationPullingError",
    "ProcessApplication",
    "ProcessingJob",
    "ProcessingThread",
    "Projection",
    "ProjectionRunner",
    "PullingThread",
    "RecordingEvent",
    "RecordingEventReceiver",
    "Runner",
    "RunnerAlreadyStartedError",
    "SingleThreadedRunner",
    "System",
    "SystemDefinitionError",
    "run_application",
    "singledispatchmethod",
]

_present_as_package(globals())
