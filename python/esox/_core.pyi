"""Typed stub of esox._core, the Rust extension module: the contract between
Rust and Python. Only esox.persistence (and the replay helper) import it."""

from collections.abc import Sequence
from typing import Any, final
from uuid import UUID

__version__: str

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
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class Notification(StoredEvent):
    """A stored event with its position (``id``) in the application sequence."""

    def __new__(
        cls,
        originator_id: UUID | str,
        originator_version: int,
        topic: str,
        state: bytes,
        id: int,  # noqa: A002
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
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class Mapper:
    """Converts domain events to stored events and back, a batch per call.

    ``transcoder`` must have ``types: dict[type, Transcoding]`` and
    ``names: dict[str, Transcoding]`` (read live, so later registrations count).
    UUID, Decimal and datetime are encoded natively as ``uuid_hex``,
    ``decimal_str`` and ``datetime_iso``; other types call their transcoding.
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
    def to_stored_event(self, domain_event: object) -> StoredEvent: ...
    def to_stored_events(self, domain_events: Sequence[object]) -> list[StoredEvent]: ...
    def to_domain_event(self, stored_event: StoredEvent) -> Any: ...
    def to_domain_events(self, stored_events: Sequence[StoredEvent]) -> list[Any]: ...
    def encode(self, obj: Any) -> bytes:
        """JSON-encode ``obj`` (no compression or encryption)."""
    def decode(self, data: bytes) -> Any:
        """Decode JSON written by ``encode`` (no decompression or decryption)."""

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
        topics: Sequence[str] = (),
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

