"""The DCB infrastructure factory, chosen by ``PERSISTENCE_MODULE`` as for
the rest of esox: ``esox.memory`` (``esox.popo``, ``esox.dcb.popo``),
``esox.sqlite``, ``esox.postgres`` (``esox.dcb.postgres_tt``), eventsourcing's
names for them, or a module or ``module:Factory`` of one's own."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from esox.dcb.api import DCBRecorder
from esox.dcb.mapper import DCBMapper, JSONDCBMapper
from esox.persistence.factory import InfrastructureFactory, TTrackingRecorder
from esox.utils import Environment, EnvType, TopicError, resolve_topic

__all__ = ["DCB_PERSISTENCE_MODULES", "DCBInfrastructureFactory"]

_MEMORY = "esox.dcb.memory:InMemoryDCBFactory"
_SQLITE = "esox.dcb.sqlite:SQLiteDCBFactory"
_POSTGRES = "esox.dcb.postgres_tt:PostgresTTDCBFactory"

DCB_PERSISTENCE_MODULES = {
    "": _MEMORY,
    "esox.memory": _MEMORY,
    "esox.popo": _MEMORY,
    "esox.dcb.memory": _MEMORY,
    "esox.dcb.popo": _MEMORY,
    "eventsourcing.popo": _MEMORY,
    "eventsourcing.dcb.popo": _MEMORY,
    "esox.sqlite": _SQLITE,
    "esox.dcb.sqlite": _SQLITE,
    "eventsourcing.sqlite": _SQLITE,
    "esox.postgres": _POSTGRES,
    "esox.dcb.postgres": _POSTGRES,
    "esox.dcb.postgres_tt": _POSTGRES,
    "eventsourcing.postgres": _POSTGRES,
    "eventsourcing.dcb.postgres_tt": _POSTGRES,
}
"""``PERSISTENCE_MODULE`` values and the DCB factory each selects."""


class DCBInfrastructureFactory(InfrastructureFactory[TTrackingRecorder], ABC):
    """Constructs a DCB application's recorder and mapper (and the tracking
    recorders of the backend it is a factory of)."""

    DCB_TABLE_PREFIX = "dcb"

    @classmethod
    def construct(
        cls, env: Environment | EnvType | None = None
    ) -> DCBInfrastructureFactory[Any]:
        """The DCB factory that ``PERSISTENCE_MODULE`` selects."""
        return DCBInfrastructureFactory.construct_named(
            env, DCB_PERSISTENCE_MODULES, "DCB infrastructure factory"
        )

    @abstractmethod
    def dcb_recorder(self) -> DCBRecorder:
        """The recorder of DCB events."""

    def dcb_table_prefix(self) -> str:
        """The DCB tables' prefix: the application's name, lower-cased
        (as eventsourcing names them), or ``dcb``."""
        return self.env.name.lower() or self.DCB_TABLE_PREFIX

    def dcb_mapper(self) -> DCBMapper[Any]:
        """The mapper ``MAPPER_TOPIC`` names (a ``DCBMapper`` class), else
        ``JSONDCBMapper``; a ``JSONDCBMapper`` gets the transcoder,
        compressor and cipher the environment configures."""
        topic = self.env.get(self.MAPPER_TOPIC)
        mapper_cls: Any = JSONDCBMapper
        if topic:
            try:
                mapper_cls = resolve_topic(topic)
            except TopicError as e:
                raise self.env.invalid(
                    self.MAPPER_TOPIC, f"the topic of a DCBMapper class ({e})"
                ) from None
            if not (isinstance(mapper_cls, type) and issubclass(mapper_cls, DCBMapper)):
                raise self.env.invalid(
                    self.MAPPER_TOPIC,
                    f"the topic of a DCBMapper class, not of {mapper_cls!r}",
                )
        mapper: DCBMapper[Any]
        if issubclass(mapper_cls, JSONDCBMapper):
            mapper = mapper_cls(
                self.transcoder(), compressor=self.compressor(), cipher=self.cipher()
            )
        else:
            mapper = mapper_cls()
        return mapper
