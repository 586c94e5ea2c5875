"""Infrastructure factories: persistence chosen by configuration alone."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import ModuleType, TracebackType
from typing import Any, Self

from esox._core import Mapper
from esox.persistence.cipher import AESCipher
from esox.persistence.compression import ZlibCompressor, ZstdCompressor
from esox.persistence.errors import InfrastructureFactoryError
from esox.persistence.eventstore import EventStore
from esox.persistence.recorders import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    TrackingRecorder,
)
from esox.persistence.transcoding import JSONTranscoder, Transcoder
from esox.utils import (
    Environment,
    EnvType,
    TopicError,
    missing_extra,
    resolve_topic,
    strtobool,
)

__all__ = ["InfrastructureFactory", "ZlibCompressor"]

DEFAULT_PERSISTENCE_MODULE = "esox.memory"

# eventsourcing's persistence modules, so its configuration keeps working.
PERSISTENCE_ALIASES = {
    "eventsourcing.popo": "esox.memory",
    "eventsourcing.sqlite": "esox.sqlite",
    "eventsourcing.postgres": "esox.postgres",
}


# COMPRESSOR_TOPIC values that select esox's native compressors (the
# eventsourcing topic included, so its configuration keeps working).
COMPRESSORS: dict[str, type[Any]] = {
    "zlib": ZlibCompressor,
    "eventsourcing.compressor:ZlibCompressor": ZlibCompressor,
    "esox.persistence.compression:ZlibCompressor": ZlibCompressor,
    "esox.persistence:ZlibCompressor": ZlibCompressor,
    "zstd": ZstdCompressor,
    "esox.persistence.compression:ZstdCompressor": ZstdCompressor,
    "esox.persistence:ZstdCompressor": ZstdCompressor,
}

# CIPHER_TOPIC values that select esox's native AES-GCM cipher.
CIPHERS: dict[str, type[Any]] = {
    "eventsourcing.cipher:AESCipher": AESCipher,
    "esox.persistence.cipher:AESCipher": AESCipher,
    "esox.persistence:AESCipher": AESCipher,
}


class InfrastructureFactory(ABC):
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
    IS_SNAPSHOTTING_ENABLED = "IS_SNAPSHOTTING_ENABLED"

    def __init__(self, env: Environment | EnvType | None = None) -> None:
        self.env = env if isinstance(env, Environment) else Environment(env=env)

    @classmethod
    def construct(
        cls, env: Environment | EnvType | None = None
    ) -> InfrastructureFactory:
        """Construct the factory that ``PERSISTENCE_MODULE`` names."""
        if not isinstance(env, Environment):
            env = Environment(env=env)
        topic = env.get(cls.PERSISTENCE_MODULE) or DEFAULT_PERSISTENCE_MODULE
        topic = PERSISTENCE_ALIASES.get(topic, topic)
        try:
            obj = resolve_topic(topic)
        except TopicError as e:
            extra = missing_extra(e)
            if extra is not None:
                msg = (
                    f"PERSISTENCE_MODULE {topic!r} needs the {extra!r} extra: "
                    f"pip install 'esox[{extra}]' ({e.__cause__})"
                )
                raise InfrastructureFactoryError(msg) from None
            msg = (
                f"PERSISTENCE_MODULE {topic!r} does not resolve: {e}. Use "
                "'esox.memory', 'esox.sqlite', 'esox.postgres' or 'module:Factory'."
            )
            raise InfrastructureFactoryError(msg) from None
        if isinstance(obj, ModuleType):
            found = {
                member
                for member in vars(obj).values()
                if isinstance(member, type)
                and issubclass(member, InfrastructureFactory)
                and member.__module__ == obj.__name__
                and not getattr(member, "__abstractmethods__", None)
            }
            if len(found) != 1:
                msg = (
                    f"Found {len(found)} infrastructure factory classes in "
                    f"{topic!r}, expected 1."
                )
                raise InfrastructureFactoryError(msg)
            factory_cls: type[InfrastructureFactory] = found.pop()
        elif isinstance(obj, type) and issubclass(obj, InfrastructureFactory):
            factory_cls = obj
        else:
            msg = f"PERSISTENCE_MODULE {topic!r} is not a persistence module: {obj!r}"
            raise InfrastructureFactoryError(msg)
        return factory_cls(env)

    def transcoder(self) -> Transcoder:
        """The transcoder (``TRANSCODER_TOPIC``, default JSONTranscoder)."""
        topic = self.env.get(self.TRANSCODER_TOPIC)
        transcoder_cls = resolve_topic(topic) if topic else JSONTranscoder
        return transcoder_cls()

    def compressor(self) -> Any:
        """The compressor named by ``COMPRESSOR_TOPIC``, or None.

        ``zlib`` (or eventsourcing's ``eventsourcing.compressor:ZlibCompressor``)
        and ``zstd`` select esox's native compressors; any other value is a
        topic of a class (instantiated without arguments) or an object with
        ``compress`` and ``decompress`` methods.
        """
        topic = self.env.get(self.COMPRESSOR_TOPIC)
        if not topic:
            return None
        if topic in COMPRESSORS:
            return COMPRESSORS[topic]()
        try:
            obj = resolve_topic(topic)
        except TopicError as e:
            msg = (
                f"COMPRESSOR_TOPIC {topic!r} does not resolve: {e}. "
                "Use 'zlib', 'zstd' or a 'module:Class' topic."
            )
            raise InfrastructureFactoryError(msg) from None
        return obj() if isinstance(obj, type) else obj

    def cipher(self) -> Any:
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
        if cipher_cls is None:
            try:
                cipher_cls = resolve_topic(topic)
            except TopicError as e:
                msg = f"CIPHER_TOPIC {topic!r} does not resolve: {e}"
                raise InfrastructureFactoryError(msg) from None
        return cipher_cls(self.env)

    def mapper(
        self,
        transcoder: Transcoder | None = None,
        mapper_class: type[Mapper] | None = None,
    ) -> Mapper:
        """The mapper: transcoder, then compressor, then cipher."""
        if mapper_class is None:
            topic = self.env.get(self.MAPPER_TOPIC)
            mapper_class = resolve_topic(topic) if topic else Mapper
        assert mapper_class is not None
        return mapper_class(
            transcoder or self.transcoder(),
            compressor=self.compressor(),
            cipher=self.cipher(),
        )

    def event_store(
        self, mapper: Mapper | None = None, recorder: AggregateRecorder | None = None
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

    def is_snapshotting_enabled(self) -> bool:
        """Whether ``IS_SNAPSHOTTING_ENABLED`` is true (default no)."""
        return strtobool(self.env.get(self.IS_SNAPSHOTTING_ENABLED, "no"))

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Close connections and anything else held open."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
