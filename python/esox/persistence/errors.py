"""The one hierarchy of persistence errors, raised alike by every recorder.

Rust raises these classes too (see ``rust/errors.rs``): there is exactly one
place where a Rust error becomes a Python exception, and it uses these names.
"""

from __future__ import annotations

from esox.domain import EventSourcingError
from esox.utils import SettingError


class PersistenceError(EventSourcingError):
    """Base class for errors raised by recorders and the mapper."""


class InterfaceError(PersistenceError):
    """The database interface was used wrongly, or a connection is closed."""


class DatabaseError(PersistenceError):
    """An error in the database itself."""


class DataError(DatabaseError):
    """Stored data could not be processed (corrupt, wrong type, too large)."""


class OperationalError(DatabaseError):
    """The database could not carry out an operation (locked, disk full, gone)."""


class RecordConflictError(EventSourcingError):
    """A record conflicts with one already stored (optimistic concurrency)."""


class IntegrityError(DatabaseError, RecordConflictError):
    """A record would violate the store's integrity (version already taken)."""


class InternalError(DatabaseError):
    """The database reported an internal error."""


class ProgrammingError(DatabaseError):
    """The database was used in a way that is not supported (bad table, SQL)."""


class NotSupportedError(DatabaseError):
    """The database does not support what was asked of it."""


class WaitInterruptedError(PersistenceError):
    """A wait was interrupted before its condition was met."""


class MapperDeserialisationError(PersistenceError, ValueError):
    """Stored state could not be decrypted, decompressed or decoded.

    The message names the originator id, version and topic of the stored event.
    """


class TranscodingNotRegisteredError(PersistenceError, TypeError):
    """An object's type, or a stored ``_type_`` name, has no registered transcoding."""


class TranscodingError(PersistenceError, ValueError):
    """A transcoding cannot be registered as given (e.g. under a built-in name)."""


class CipherKeyError(PersistenceError, ValueError, EnvironmentError):
    """A cipher key is missing, malformed, or of the wrong size (a ValueError,
    and an EnvironmentError as eventsourcing raises for a missing key)."""


class MissingTableError(ProgrammingError, OperationalError):
    """A table the statement needs does not exist (create_table() was not
    called): a ProgrammingError, and an OperationalError as sqlite3 and
    eventsourcing report it."""


class InfrastructureFactoryError(EventSourcingError, EnvironmentError):
    """An infrastructure factory could not be constructed from the environment
    (an EnvironmentError, as eventsourcing raises)."""


class InvalidSettingError(InfrastructureFactoryError, SettingError):
    """A setting's value is not accepted: the message names the variable and
    the values it accepts. Also a ValueError."""
