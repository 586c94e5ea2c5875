"""Persistence: transcoding, the mapper, recorders, the event store, factories."""

from esox._core import Mapper, Notification, StoredEvent, Tracking
from esox.persistence.errors import (
    DatabaseError,
    DataError,
    InfrastructureFactoryError,
    IntegrityError,
    InterfaceError,
    InternalError,
    MapperDeserialisationError,
    NotSupportedError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    RecordConflictError,
    TranscodingNotRegisteredError,
    WaitInterruptedError,
)
from esox.persistence.eventstore import EventStore, Recording
from esox.persistence.factory import InfrastructureFactory, ZlibCompressor
from esox.persistence.recorders import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    Recorder,
    Subscription,
    TrackingRecorder,
)
from esox.persistence.transcoding import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Transcoder,
    Transcoding,
    UUIDAsHex,
)

__all__ = [
    "AggregateRecorder",
    "ApplicationRecorder",
    "DataError",
    "DatabaseError",
    "DatetimeAsISO",
    "DecimalAsStr",
    "EventStore",
    "InfrastructureFactory",
    "InfrastructureFactoryError",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "JSONTranscoder",
    "Mapper",
    "MapperDeserialisationError",
    "NotSupportedError",
    "Notification",
    "OperationalError",
    "PersistenceError",
    "ProcessRecorder",
    "ProgrammingError",
    "RecordConflictError",
    "Recorder",
    "Recording",
    "StoredEvent",
    "Subscription",
    "Tracking",
    "TrackingRecorder",
    "Transcoder",
    "Transcoding",
    "TranscodingNotRegisteredError",
    "UUIDAsHex",
    "WaitInterruptedError",
    "ZlibCompressor",
]
