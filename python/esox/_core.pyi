"""Typed stub of esox._core, the Rust extension module: the contract between
Rust and Python. Only esox.persistence (and the replay helper), the
recorder modules and esox.dcb's recorders import it."""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, Self, TypeVar, final
from uuid import UUID

from typing_extensions import disjoint_base

from esox.dcb.api import DCBAppendCondition, DCBEvent, DCBQuery, DCBSequencedEvent

__version__: str

__all__ = [
    "AesGcm",
    "DCBMemoryCursor",
    "DCBMemoryRecorder",
    "DCBSqliteCursor",
    "DCBSqliteRecorder",
    "Mapper",
    "MemoryRecorder",
    "Notification",
    "Recording",
    "SqliteCursor",
    "SqliteDatabase",
    "SqliteRecorder",
    "SqliteRow",
    "StoredEvent",
    "Tracking",
    "__version__",
    "_bind",
    "_is_bound",
    "dcb_append_arguments",
    "dcb_read_arguments",
    "decode_json",
    "encode_json",
    "project_aggregate",
    "recordings",
    "replay",
    "zlib_compress",
    "zlib_decompress",
    "zstd_compress",
    "zstd_decompress",
]

_TAggregateID = TypeVar("_TAggregateID", UUID, str)

@disjoint_base
class StoredEvent:
    """An event as stored: originator id and version, topic, state bytes.

    Immutable, hashable, compared by value.
    """

    def __new__(
        cls,
        originator_id: UUID | str,
        originator_version: int,
        topic: str,
        state: bytes,
    ) -> StoredEvent: ...
    @property
    def originator_id(self) -> UUID | str: ...
    @property
    def originator_version(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def state(self) -> bytes: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Notification(StoredEvent):
    """A stored event with its position (``id``) in the application sequence."""

    def __new__(
        cls,
        originator_id: UUID | str,
        originator_version: int,
        topic: str,
        state: bytes,
        id: int,
    ) -> Notification: ...
    @property
    def id(self) -> int: ...

@final
class Tracking:
    """The position of a processed notification in an upstream application."""

    def __new__(cls, application_name: str, notification_id: int) -> Tracking: ...
    @property
    def application_name(self) -> str: ...
    @property
    def notification_id(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@disjoint_base
class Recording(Generic[_TAggregateID]):
    """A domain event and the notification it was recorded as.

    Immutable, hashable, compared by value and matched by position (as
    eventsourcing's Recording, a frozen dataclass).
    """

    __match_args__ = ("domain_event", "notification")

    def __new__(
        cls, domain_event: Any, notification: Notification
    ) -> Recording[_TAggregateID]: ...
    @property
    def domain_event(self) -> Any: ...
    @property
    def notification(self) -> Notification: ...
    def __class_getitem__(cls, key: Any) -> Any: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

def recordings(
    domain_events: Iterable[Any],
    stored_events: Iterable[StoredEvent],
    notification_ids: Sequence[int],
) -> list[Recording[Any]]:
    """Each domain event with the notification its stored event became.

    Raises ValueError if the three do not have the same length.
    """

@disjoint_base
class Mapper:
    """Converts domain events to stored events and back, a batch per call.

    ``transcoder`` with ``types: dict[type, Transcoding]`` and
    ``names: dict[str, Transcoding]`` (a ``JSONTranscoder``) is driven natively,
    its registries read once per call (so later registrations count); UUID,
    Decimal and datetime are encoded natively as ``uuid_hex``, ``decimal_str``
    and ``datetime_iso`` while those are the registered names, and date,
    bytes, enum members and frozen dataclasses (``date_iso``,
    ``bytes_base64``, ``enum``, ``dataclass``) while esox's own transcodings
    for them are registered. Any other
    transcoder's ``encode``/``decode`` methods are called instead. State is
    encoded, then compressed, then encrypted; read back in reverse. esox's
    ``ZlibCompressor``, ``ZstdCompressor`` and ``AESCipher`` (exactly those
    classes) are run natively, a batch at a time with the GIL released;
    any other compressor or cipher is called through its
    ``compress``/``decompress`` and ``encrypt``/``decrypt`` methods. Errors
    are ``TranscodingNotRegisteredError`` and ``MapperDeserialisationError``
    (from ``esox.persistence.errors``), naming the event and the bad value;
    no panic reaches Python.
    """

    def __new__(
        cls,
        transcoder: Any,
        *,
        compressor: Any = None,
        cipher: Any = None,
    ) -> Mapper: ...
    @property
    def transcoder(self) -> Any: ...
    @property
    def compressor(self) -> Any: ...
    @property
    def cipher(self) -> Any: ...
    def forget_classes(self) -> None:
        """Forget cached topics and classes (registered topics changed)."""
    def to_stored_event(self, domain_event: object) -> StoredEvent:
        """Convert a domain event (its ``__dict__``) to a stored event."""
    def to_stored_events(self, domain_events: Iterable[object]) -> list[StoredEvent]:
        """Convert domain events to stored events, in one call."""
    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        """Convert a stored event to a domain event (upcast, not ``__init__``-ed)."""
    def to_domain_events(self, stored_events: Iterable[StoredEvent]) -> list[Any]:
        """Convert stored events to domain events, in one call."""
    def encode(self, obj: Any) -> bytes:
        """JSON-encode ``obj`` (no compression or encryption)."""
    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        """Decode JSON written by ``encode`` (no decompression or decryption)."""

def _bind(bindings: dict[str, Any]) -> None:
    """Hand the crate what it needs of esox (esox.persistence.binding, once)."""

def _is_bound() -> bool:
    """Whether ``_bind`` has been called."""

def encode_json(obj: Any, transcoder: Any, *, paths: bool = True) -> bytes:
    """Compact JSON of ``obj``, other types via ``transcoder.types``."""

def decode_json(data: bytes | bytearray | memoryview, transcoder: Any) -> Any:
    """The object JSON ``data`` holds, ``_type_`` objects via ``transcoder.names``."""

def zlib_compress(data: bytes) -> bytes:
    """``data`` as one zlib stream, which ``zlib.decompress`` reads.

    Up to 1 KiB: one block with deflate's fixed Huffman code (fastest to
    write and to read); larger: libdeflate at level 6.
    """

def zlib_decompress(data: bytes, max_size: int = ...) -> bytes:
    """The data of a zlib stream; MapperDeserialisationError if corrupt or
    if it holds more than ``max_size`` bytes."""

def zstd_compress(data: bytes) -> bytes:
    """``data`` as one zstd frame (level 3)."""

def zstd_decompress(data: bytes, max_size: int = ...) -> bytes:
    """The data of a zstd frame; MapperDeserialisationError if corrupt or if
    it holds more than ``max_size`` bytes (whatever its header declares)."""

@final
class AesGcm:
    """AES-GCM (key of 16, 24 or 32 bytes) in eventsourcing's layout:
    ``nonce(12) || tag(16) || ciphertext``, a fresh OS-random nonce each time.

    ``old_keys`` only decrypt (tried in order after ``key``). Wrong key sizes
    raise CipherKeyError; keys are never shown.
    """

    def __new__(cls, key: bytes, old_keys: Sequence[bytes] = ...) -> AesGcm: ...
    @property
    def key_size(self) -> int: ...
    def encrypt(self, plaintext: bytes) -> bytes: ...
    def decrypt(self, ciphertext: bytes) -> bytes:
        """MapperDeserialisationError if damaged or encrypted with another key."""

@disjoint_base
class MemoryRecorder:
    """In-memory application, tracking and process recorder; thread-safe."""

    def __new__(cls) -> MemoryRecorder: ...
    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        tracking: Tracking | None = None,
        **kwargs: Any,
    ) -> list[int]: ...
    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]: ...
    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] | None = None,
        *,
        inclusive_of_start: bool = True,
    ) -> list[Notification]: ...
    def max_notification_id(self) -> int | None: ...
    def insert_tracking(self, tracking: Tracking) -> None: ...
    def max_tracking_id(self, application_name: str) -> int | None: ...
    def has_tracking_id(
        self, application_name: str, notification_id: int | None
    ) -> bool: ...
    def wait_for_notification(self, gt: int, timeout: float) -> bool:
        """Block (GIL released) until max_notification_id() > gt or timeout."""
    def wait_for_tracking(
        self, application_name: str, notification_id: int, timeout: float
    ) -> bool:
        """Block (GIL released) until that tracking id is recorded or timeout."""

@disjoint_base
class DCBMemoryRecorder:
    """In-memory DCB recorder: positions from 1, indexed by type and tag.

    Queries, conditions and events are read by attribute, so eventsourcing's
    DCB objects are accepted as well as esox.dcb.api's. Events are built as
    `event_class` and `sequenced_event_class` (esox.dcb.api's by default).
    """

    def __new__(
        cls,
        *,
        event_class: type[Any] | None = None,
        sequenced_event_class: type[Any] | None = None,
    ) -> Self: ...
    def read_events(
        self,
        query: DCBQuery | None = None,
        *,
        after: int | None = None,
        limit: int | None = None,
    ) -> tuple[list[DCBSequencedEvent], int | None]:
        """The events after `after` matching `query` (at most `limit`) and the
        head: the last position, or with a limit the last position returned."""
    def append(
        self, events: Sequence[DCBEvent], condition: DCBAppendCondition | None = None
    ) -> int:
        """Check the condition and append, atomically; the last position.
        IntegrityError if an event matches the condition after its `after`."""
    def cursor(
        self, query: DCBQuery | None = None, *, after: int | None = None
    ) -> DCBMemoryCursor:
        """A cursor over matching events after `after` that waits for new ones."""
    @property
    def max_position(self) -> int:
        """The last position recorded (0 when empty)."""
    @property
    def positions_visited(self) -> int:
        """How many positions queries have looked at since the recorder was made."""

@final
class DCBMemoryCursor:
    """Matching events after a position, taken in batches (subscriptions)."""

    def next_batch(self, limit: int = ...) -> list[DCBSequencedEvent]:
        """Up to `limit` next events, blocking (GIL released) until there is one;
        an empty list once stopped."""
    def stop(self) -> None:
        """Wake a waiting next_batch, which returns an empty list."""
    @property
    def position(self) -> int:
        """The position of the last event taken."""

@disjoint_base
class DCBSqliteRecorder:
    """SQLite DCB recorder: tables `<prefix>_events` and `<prefix>_tags`;
    each append (condition check and inserts) is one BEGIN IMMEDIATE
    transaction. Accepts eventsourcing's DCB objects too."""

    def __new__(
        cls,
        database: SqliteDatabase | str,
        *,
        table_prefix: str = "dcb",
        create_table: bool = True,
        lock_timeout: float | None = None,
        synchronous: str | None = None,
        event_class: type[Any] | None = None,
        sequenced_event_class: type[Any] | None = None,
    ) -> Self: ...
    @property
    def database(self) -> SqliteDatabase: ...
    def create_table(self) -> None:
        """Create the tables and the type index if missing."""
    def read_events(
        self,
        query: DCBQuery | None = None,
        *,
        after: int | None = None,
        limit: int | None = None,
    ) -> tuple[list[DCBSequencedEvent], int | None]:
        """The events after `after` matching `query` (at most `limit`) and the
        head, from one snapshot of the database."""
    def append(
        self, events: Sequence[DCBEvent], condition: DCBAppendCondition | None = None
    ) -> int:
        """Check the condition and append in one transaction; the last position."""
    def cursor(
        self, query: DCBQuery | None = None, *, after: int | None = None
    ) -> DCBSqliteCursor:
        """A cursor over matching events after `after` that waits for new ones."""
    @property
    def max_position(self) -> int:
        """The last position recorded (0 when empty)."""
    def explain_read(self, query: DCBQuery | None = None) -> list[str]:
        """SQLite's query plan for a read of `query`, one line per step."""

@final
class DCBSqliteCursor:
    """Matching events after a position, taken in batches (subscriptions)."""

    def next_batch(self, limit: int = ...) -> list[DCBSequencedEvent]:
        """Up to `limit` next events, blocking (GIL released) until there is
        one (woken by local commits, polling for other processes'); an empty
        list once stopped."""
    def stop(self) -> None:
        """Wake a waiting next_batch, which returns an empty list."""
    @property
    def position(self) -> int:
        """The position of the last event taken."""

@final
class SqliteDatabase:
    """An SQLite database (a file path, ":memory:" or a "file:" URI) and its
    connections, shared by the recorders built on it.

    Files are put in WAL mode. ``lock_timeout`` (seconds) is how long a write
    waits for the database lock; ``synchronous`` is "FULL" or "NORMAL".
    An in-memory database lives in one connection, seen by all its recorders.
    """

    def __new__(
        cls, path: str, *, lock_timeout: float = ..., synchronous: str = "FULL"
    ) -> SqliteDatabase: ...
    @property
    def path(self) -> str: ...
    @property
    def is_memory(self) -> bool: ...
    @property
    def file_id(self) -> tuple[int, int] | None:
        """The database file's (device, inode) while open; None in memory."""
    @property
    def lock_timeout(self) -> float: ...
    @property
    def synchronous(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    @property
    def journal_mode_wal(self) -> bool:
        """Whether the file is in WAL mode (False in memory)."""
    @property
    def journal_mode_was_changed_to_wal(self) -> bool:
        """Whether opening the file switched it to WAL mode."""
    def begin(self, *, commit: bool) -> SqliteCursor:
        """A cursor in a new transaction: a write transaction (BEGIN IMMEDIATE,
        holding the writer connection) if ``commit``, else a read transaction."""
    def cursor(self) -> SqliteCursor:
        """A cursor outside any transaction (each statement commits)."""
    def close(self) -> None:
        """Close every connection; later calls raise InterfaceError."""

@disjoint_base
class SqliteCursor:
    """SQL on an SqliteDatabase's own connections, in a transaction (from
    ``SqliteDatabase.begin``) or autocommit (``SqliteDatabase.cursor``).
    Parameters as sqlite3 takes them (registered adapters honoured)."""

    def execute(
        self,
        statement: str | bytes,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
    ) -> None: ...
    def executemany(
        self,
        statement: str | bytes,
        seq_of_params: Iterable[Sequence[Any] | Mapping[str, Any]],
    ) -> None: ...
    def fetchall(self) -> list[SqliteRow]: ...
    def fetchone(self) -> SqliteRow | None: ...
    def fetchmany(self, size: int = 1) -> list[SqliteRow]: ...
    @property
    def lastrowid(self) -> int: ...
    @property
    def rowcount(self) -> int: ...
    @property
    def finished(self) -> bool: ...
    def end(self, *, commit: bool) -> None:
        """Commit (commit=True) or roll back, and let go of the connection."""
    def close(self) -> None:
        """Roll back what is not committed, and let go of the connection."""

@final
class SqliteRow:
    """A result row, by position or by column name (like sqlite3.Row)."""

    def __len__(self) -> int: ...
    def __getitem__(self, key: int | str | slice, /) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def keys(self) -> list[str]: ...

@disjoint_base
class SqliteRecorder:
    """SQLite recorder of stored events and/or tracking; thread- and process-safe.

    ``events_table`` None: tracking only. ``notifications`` False: the events
    table is WITHOUT ROWID (snapshots) and ``insert_events`` returns None.
    ``originator_id_type`` "uuid" stores UUIDs as 32 hex digits and returns
    UUIDs; "text" returns str. ``lock_timeout`` and ``synchronous`` are for
    opening ``database`` when it is a path.
    """

    def __new__(
        cls,
        database: str | SqliteDatabase | None = None,
        events_table: str | None = ...,
        *,
        notifications: bool = True,
        tracking: bool = False,
        originator_id_type: str = "uuid",
        lock_timeout: float | None = None,
        synchronous: str | None = None,
        create_table: bool = True,
    ) -> Self: ...
    def _configure(
        self,
        database: str | SqliteDatabase,
        events_table: str | None,
        *,
        notifications: bool = True,
        tracking: bool = False,
        originator_id_type: str = "uuid",
        lock_timeout: float | None = None,
        synchronous: str | None = None,
        create_table: bool = True,
    ) -> None:
        """Set the database and tables of a recorder made without them."""
    @property
    def database(self) -> SqliteDatabase: ...
    @property
    def native_create_table_statements(self) -> list[str]: ...
    def _create_tables_in(self, cursor: SqliteCursor) -> None: ...
    def _insert_events_in(
        self,
        cursor: SqliteCursor,
        stored_events: Sequence[StoredEvent],
        *,
        tracking: Tracking | None = None,
    ) -> list[int] | None: ...
    @property
    def events_table(self) -> str | None: ...
    @property
    def keeps_notifications(self) -> bool: ...
    @property
    def has_tracking(self) -> bool: ...
    @property
    def originator_id_type(self) -> str: ...
    def create_table(self) -> None:
        """Create the recorder's tables if missing (done on construction)."""
    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        tracking: Tracking | None = None,
        **kwargs: Any,
    ) -> list[int] | None: ...
    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]: ...
    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] | None = None,
        *,
        inclusive_of_start: bool = True,
    ) -> list[Notification]: ...
    def max_notification_id(self) -> int | None: ...
    def insert_tracking(self, tracking: Tracking) -> None: ...
    def max_tracking_id(self, application_name: str) -> int | None: ...
    def has_tracking_id(
        self, application_name: str, notification_id: int | None
    ) -> bool: ...
    def wait_for_notification(self, gt: int, timeout: float) -> bool:
        """Block (GIL released) until max_notification_id() > gt or timeout.

        Woken at once by commits in this process; polls for other processes.
        """
    def wait_for_tracking(
        self, application_name: str, notification_id: int, timeout: float
    ) -> bool:
        """Block (GIL released) until that tracking id is recorded or timeout."""
    def close(self) -> None:
        """Stop using the recorder; closes the database if it opened it."""

# replay

def project_aggregate(aggregate: Any, events: Iterable[Any]) -> Any:
    """Apply domain events in order to ``aggregate`` (None before the first).

    The same result and errors as calling ``event.mutate(aggregate)`` for
    each event; esox's own ``mutate`` and ``apply`` are done in Rust.
    """

def replay(
    mapper: Any,
    recorder: Any,
    originator_id: UUID | str,
    *,
    gt: int | None = None,
    lte: int | None = None,
    initial: Any = None,
) -> Any:
    """Select, decode and apply one aggregate's events in one call.

    ``recorder.select_events(originator_id, gt=gt, lte=lte, desc=False,
    limit=None)`` then ``mapper.to_domain_events``, then ``project_aggregate``
    from ``initial``: an aggregate, a ``Snapshot`` (mutated first; ``gt``
    defaults to its version) or None. Returns None if there is nothing.
    """

_DCBItems = list[tuple[list[str], list[str]]]

def dcb_read_arguments(
    query: DCBQuery | None = None,
    *,
    after: int | None = None,
    limit: int | None = None,
) -> tuple[_DCBItems, int | None, int | None]:
    """A DCB read's arguments checked as the Rust recorders check them: the
    query's items as (types, tags) pairs, `after` and `limit`
    (ProgrammingError naming what is wrong)."""

def dcb_append_arguments(
    events: Sequence[DCBEvent], condition: DCBAppendCondition | None = None
) -> tuple[list[str], list[bytes], list[list[str]], tuple[_DCBItems, int] | None]:
    """A DCB append's arguments checked as the Rust recorders check them: the
    events' types, data and tags, and the condition's items and `after` (0
    for None), or None (ProgrammingError naming what is wrong)."""
