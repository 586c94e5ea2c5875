"""Infrastructure factories: persistence chosen by configuration alone."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Generic, Self, TypeVar

from esox.persistence.cipher import AESCipher, Cipher
from esox.persistence.compression import (
    DEFAULT_MAX_STATE_SIZE,
    Compressor,
    ZlibCompressor,
    ZstdCompressor,
)
from esox.persistence.errors import InfrastructureFactoryError, InvalidSettingError
from esox.persistence.eventstore import EventStore
from esox.persistence.mapper import Mapper
from esox.persistence.recorders import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    TrackingRecorder,
)
from esox.persistence.transcoding import JSONTranscoder, Transcoder
from esox.utils import (
    Closing,
    Environment,
    EnvType,
    TopicError,
    missing_extra,
    resolve_topic,
)

__all__ = ["InfrastructureFactory", "ZlibCompressor"]

TTrackingRecorder = TypeVar("TTrackingRecorder", bound=TrackingRecorder)

DEFAULT_PERSISTENCE_MODULE = "esox.memory"

# PERSISTENCE_MODULE values that stand for another: unset, and eventsourcing's
# persistence modules, so its configuration keeps working.
PERSISTENCE_ALIASES = {
    "": DEFAULT_PERSISTENCE_MODULE,
    "eventsourcing.popo": "esox.memory",
    "esox.popo": "esox.memory",
    "eventsourcing.sqlite": "esox.sqlite",
    "eventsourcing.postgres": "esox.postgres",
}


# COMPRESSOR_TOPIC values that select esox's native compressors (the
# eventsourcing topic included, so its configuration keeps working).
COMPRESSORS: dict[str, type[ZlibCompressor | ZstdCompressor]] = {
    "zlib": ZlibCompressor,
    "eventsourcing.compressor:ZlibCompressor": ZlibCompressor,
    "esox.persistence.compression:ZlibCompressor": ZlibCompressor,
    "esox.persistence:ZlibCompressor": ZlibCompressor,
    "esox.compressor:ZlibCompressor": ZlibCompressor,
    "zstd": ZstdCompressor,
    "esox.persistence.compression:ZstdCompressor": ZstdCompressor,
    "esox.persistence:ZstdCompressor": ZstdCompressor,
}

# CIPHER_TOPIC values that select esox's native AES-GCM cipher.
CIPHERS: dict[str, type[Any]] = {
    "eventsourcing.cipher:AESCipher": AESCipher,
    "esox.persistence.cipher:AESCipher": AESCipher,
    "esox.persistence:AESCipher": AESCipher,
    "esox.cipher:AESCipher": AESCipher,
    "esox.cryptography:AESCipher": AESCipher,
    "eventsourcing.cryptography:AESCipher": AESCipher,
}


class InfrastructureFactory(Closing, ABC, Generic[TTrackingRecorder]):
    """Constructs the mapper, recorders and event stores of an application.

    ``InfrastructureFactory.construct(env)`` picks the concrete factory named
    by ``PERSISTENCE_MODULE`` (``esox.memory`` by default, ``esox.sqlite``,
    ``esox.postgres``, or a ``module:Class`` topic).
    """

    PERSISTENCE_MODULE = "PERSISTENCE_MODULE"
    TRANSCODER_TOPIC = "TRANSCODER_TOPIC"
    MAPPER_TOPIC = "MAPPER_TOPIC"
    CIPHER_TOPIC = "CIPHER_TOPIC"
    CIPHER_KEY = "CIPHER_KEY"
    COMPRESSOR_TOPIC = "COMPRESSOR_TOPIC"
    MAX_STATE_SIZE = "MAX_STATE_SIZE"
    IS_SNAPSHOTTING_ENABLED = "IS_SNAPSHOTTING_ENABLED"
    TRACKING_RECORDER_TOPIC = "TRACKING_RECORDER_TOPIC"

    def __init__(self, env: Environment | EnvType | None = None) -> None:
        self.env = env if isinstance(env, Environment) else Environment(env=env)
        # Bad settings are factory errors (and ValueErrors).
        self.env.setting_error = InvalidSettingError

    @classmethod
    def construct(
        cls, env: Environment | EnvType | None = None
    ) -> InfrastructureFactory[Any]:
        """Construct the factory that ``PERSISTENCE_MODULE`` names."""
        return InfrastructureFactory.construct_named(
            env, PERSISTENCE_ALIASES, "infrastructure factory"
        )

    @classmethod
    def construct_named(
        cls,
        env: Environment | EnvType | None,
        aliases: Mapping[str, str],
        kind: str,
    ) -> Self:
        """The factory of this class that ``PERSISTENCE_MODULE`` names
        (``construct`` of the base classes, which name their own aliases).

        The value (``aliases`` maps some values, the unset one ``""``
        included, to others) is the ``module:Class`` topic of a subclass, or a
        module holding one concrete subclass (one defined there, if it holds
        several); ``kind`` names this class in the errors.
        """
        if not isinstance(env, Environment):
            env = Environment(env=env)
        key = cls.PERSISTENCE_MODULE
        given = env.get(cls.PERSISTENCE_MODULE) or ""
        topic = aliases.get(given, given)
        try:
            obj = resolve_topic(topic)
        except TopicError as e:
            extra = missing_extra(e)
            if extra is not None:
                msg = (
                    f"{key} {given or topic!r} needs the {extra!r} extra: "
                    f"pip install 'esox[{extra}]' ({e.__cause__})"
                )
                raise InfrastructureFactoryError(msg) from None
            msg = (
                f"Failed to resolve persistence module topic: '{topic}' from "
                f"environment variable '{key}' ({e}). Use 'esox.memory', "
                "'esox.sqlite', 'esox.postgres' or 'module:Factory'."
            )
            raise InfrastructureFactoryError(msg) from None
        if isinstance(obj, ModuleType):
            found = {
                member
                for member in vars(obj).values()
                if isinstance(member, type)
                and issubclass(member, cls)
                and not getattr(member, "__abstractmethods__", None)
            }
            defined_here = {m for m in found if m.__module__ == obj.__name__}
            if len(found) > 1 and defined_here:
                found = defined_here
            if len(found) != 1:
                msg = f"Found {len(found)} {kind} classes in {topic!r}, expected 1."
                raise InfrastructureFactoryError(msg)
            factory_cls: type[Self] = found.pop()
        elif isinstance(obj, type) and issubclass(obj, cls):
            factory_cls = obj
        else:
            msg = (
                f"Topic '{topic}' didn't resolve to a persistence module or "
                f"{kind} class: {obj}"
            )
            raise InfrastructureFactoryError(msg)
        return factory_cls(env)

    def transcoder(self) -> Transcoder:
        """The transcoder (``TRANSCODER_TOPIC``, default JSONTranscoder)."""
        transcoder_cls = self._class_of(
            self.TRANSCODER_TOPIC, "the 'module:Class' topic of a Transcoder"
        )
        return (transcoder_cls or JSONTranscoder)()

    def _class_of(self, key: str, accepted: str) -> Any:
        """The class (or object) that the topic in setting ``key`` names, or
        None when it is not set; an unresolvable topic names the variable."""
        topic = self.env.read_str(key)
        if topic is None:
            return None
        try:
            return resolve_topic(topic)
        except TopicError as e:
            raise self.env.invalid(
                key, f"{accepted}; it does not resolve: {e}"
            ) from None

    def compressor(self) -> Compressor | None:
        """The compressor named by ``COMPRESSOR_TOPIC``, or None.

        ``zlib`` (or eventsourcing's ``eventsourcing.compressor:ZlibCompressor``)
        and ``zstd`` select esox's native compressors; any other value is a
        topic of a class (instantiated without arguments) or an object with
        ``compress`` and ``decompress`` methods.
        """
        topic = self.env.read_str(self.COMPRESSOR_TOPIC)
        if not topic:
            return None
        if topic in COMPRESSORS:
            return COMPRESSORS[topic](max_size=self.max_state_size())
        accepted = (
            "'zlib', 'zstd', or the 'module:Class' topic of a compressor (an "
            "object with compress() and decompress())"
        )
        try:
            obj = resolve_topic(topic)
        except TopicError as e:
            raise self.env.invalid(
                self.COMPRESSOR_TOPIC, f"{accepted}; it does not resolve: {e}"
            ) from None
        compressor = obj() if isinstance(obj, type) else obj
        if not isinstance(compressor, Compressor):
            raise self.env.invalid(
                self.COMPRESSOR_TOPIC,
                f"{accepted}; it names {obj!r}, which has no compress() and "
                "decompress()",
            )
        return compressor

    def max_state_size(self) -> int:
        """``MAX_STATE_SIZE``: the most bytes one stored state may decompress to.

        Bounds what a forged or corrupt row (a decompression bomb) can make
        esox allocate; 64 MiB by default.
        """
        return self.env.read_int(
            self.MAX_STATE_SIZE, default=DEFAULT_MAX_STATE_SIZE, minimum=1
        )

    def cipher(self) -> Cipher | None:
        """The cipher: esox's AES-GCM ``AESCipher`` when ``CIPHER_KEY`` is set.

        ``CIPHER_TOPIC`` may name another cipher class (constructed with the
        environment); eventsourcing's ``eventsourcing.cipher:AESCipher`` maps
        to esox's, which reads and writes the same bytes. Key problems raise
        CipherKeyError.
        """
        topic = self.env.get(self.CIPHER_TOPIC)
        if not topic:
            return AESCipher(self.env) if self.env.get(self.CIPHER_KEY) else None
        cipher_cls = CIPHERS.get(topic)
        accepted = (
            "the 'module:Class' topic of a cipher (constructed with the "
            "environment; an object with encrypt() and decrypt())"
        )
        if cipher_cls is None:
            try:
                cipher_cls = resolve_topic(topic)
            except TopicError as e:
                raise self.env.invalid(
                    self.CIPHER_TOPIC, f"{accepted}; it does not resolve: {e}"
                ) from None
        cipher = cipher_cls(self.env)
        if not isinstance(cipher, Cipher):
            raise self.env.invalid(
                self.CIPHER_TOPIC,
                f"{accepted}; it names {cipher_cls!r}, which has no encrypt() and "
                "decrypt()",
            )
        return cipher

    def mapper(
        self,
        transcoder: Transcoder | None = None,
        mapper_class: type[Mapper[Any]] | None = None,
    ) -> Mapper[Any]:
        """The mapper: transcoder, then compressor, then cipher."""
        if mapper_class is None:
            mapper_class = (
                self._class_of(
                    self.MAPPER_TOPIC, "the 'module:Class' topic of a Mapper"
                )
                or Mapper
            )
        return mapper_class(
            transcoder or self.transcoder(),
            compressor=self.compressor(),
            cipher=self.cipher(),
        )

    def event_store(
        self,
        mapper: Mapper[Any] | None = None,
        recorder: AggregateRecorder | None = None,
    ) -> EventStore[Any]:
        """An event store over the given (or new) mapper and recorder."""
        return EventStore(
            mapper=mapper or self.mapper(),
            recorder=recorder or self.application_recorder(),
        )

    @abstractmethod
    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        """A recorder for one kind of aggregate record ("events", "snapshots")."""

    @abstractmethod
    def application_recorder(self) -> ApplicationRecorder:
        """The application's recorder of events and notifications."""

    @abstractmethod
    def tracking_recorder(
        self, tracking_recorder_class: type[TrackingRecorder] | None = None
    ) -> TrackingRecorder:
        """A recorder of tracking positions alone (for projections)."""

    @abstractmethod
    def process_recorder(self) -> ProcessRecorder:
        """A recorder of events and tracking in one transaction."""

    def tracking_recorder_class(
        self, given: type[Any] | None, default: type[Any]
    ) -> type[Any]:
        """The tracking recorder class to construct: ``given``, else the one
        ``TRACKING_RECORDER_TOPIC`` names, else ``default``; a subclass of
        ``default`` in any case (a view of its own, for a projection)."""
        if given is None:
            return self._recorder_class(self.TRACKING_RECORDER_TOPIC, default)
        if not (isinstance(given, type) and issubclass(given, default)):
            msg = f"{given!r} is not a subclass of {default.__qualname__}"
            raise InfrastructureFactoryError(msg)
        return given

    def _recorder_class(self, key: str, default: type[Any]) -> type[Any]:
        """The class an ``*_RECORDER_TOPIC`` setting names (a subclass of
        ``default``), else ``default``."""
        topic = self.env.get(key)
        if not topic:
            return default
        try:
            cls = resolve_topic(topic)
        except TopicError as e:
            msg = f"{key} {topic!r} does not resolve: {e}"
            raise InfrastructureFactoryError(msg) from None
        if not (isinstance(cls, type) and issubclass(cls, default)):
            msg = f"{key} {topic!r} is not a subclass of {default.__qualname__}"
            raise InfrastructureFactoryError(msg)
        return cls

    def is_snapshotting_enabled(self) -> bool:
        """Whether ``IS_SNAPSHOTTING_ENABLED`` is true (default no)."""
        return self.env.read_bool(self.IS_SNAPSHOTTING_ENABLED, default=False)

    def close(self) -> None:
        """Close connections and anything else held open."""
