"""Persistence: transcoding, the mapper, recorders, the event store, factories."""

from esox._core import Notification, StoredEvent, Tracking
from esox.persistence.cipher import AESCipher, Cipher
from esox.persistence.compression import Compressor, ZstdCompressor
from esox.persistence.errors import (
    CipherKeyError,
    DatabaseError,
    DataError,
    InfrastructureFactoryError,
    IntegrityError,
    InterfaceError,
    InternalError,
    InvalidSettingError,
    MapperDeserialisationError,
    MissingTableError,
    NotSupportedError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    RecordConflictError,
    TranscodingError,
    TranscodingNotRegisteredError,
    WaitInterruptedError,
)
from esox.persistence.eventstore import EventStore, Recording
from esox.persistence.factory import InfrastructureFactory, ZlibCompressor
from esox.persistence.ids import (
    find_id_convertor,
    pass_through_convertor,
    str_to_uuid_convertor,
)
from esox.persistence.mapper import Mapper
from esox.persistence.pool import (
    Connection,
    ConnectionNotFromPoolError,
    ConnectionPool,
    ConnectionPoolClosedError,
    ConnectionUnavailableError,
    Cursor,
    Params,
)
from esox.persistence.recorders import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    Recorder,
    Subscription,
    TrackingRecorder,
)
from esox.persistence.transcoding import (
    BytesAsBase64,
    DataclassAsTopicFields,
    DateAsISO,
    DatetimeAsISO,
    DecimalAsStr,
    EnumAsTopicValue,
    JSONTranscoder,
    Transcoder,
    Transcoding,
    UUIDAsHex,
)
from esox.utils import _present_as_package

__all__ = [
    "AESCipher",
    "AggregateRecorder",
    "ApplicationRecorder",
    "BytesAsBase64",
    "Cipher",
    "CipherKeyError",
    "Compressor",
    "Connection",
    "ConnectionNotFromPoolError",
    "ConnectionPool",
    "ConnectionPoolClosedError",
    "ConnectionUnavailableError",
    "Cursor",
    "DataError",
    "DatabaseError",
    "DataclassAsTopicFields",
    "DateAsISO",
    "DatetimeAsISO",
    "DecimalAsStr",
    "EnumAsTopicValue",
    "EventStore",
    "InfrastructureFactory",
    "InfrastructureFactoryError",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "InvalidSettingError",
    "JSONTranscoder",
    "Mapper",
    "MapperDeserialisationError",
    "MissingTableError",
    "NotSupportedError",
    "Notification",
    "OperationalError",
    "Params",
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
    "TranscodingError",
    "TranscodingNotRegisteredError",
    "UUIDAsHex",
    "WaitInterruptedError",
    "ZlibCompressor",
    "ZstdCompressor",
    "find_id_convertor",
    "pass_through_convertor",
    "str_to_uuid_convertor",
]

_present_as_package(globals())

# Last: hands esox._core what it needs of the modules above (and of esox.domain).
import esox.persistence.binding  # noqa: E402, F401
