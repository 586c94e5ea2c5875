"""Decisions as msgspec structs, stored as MessagePack (``esox.dcb.msgpack``,
the names of ``eventsourcing.dcb.msgpack``). Needs msgspec
(``pip install 'esox[msgpack]'``)."""

from __future__ import annotations

from typing import Any, TypeVar

try:
    import msgspec
except ImportError as e:  # pragma: no cover (msgspec is installed for the tests)
    msg = f"esox.dcb.msgpack needs msgspec: pip install 'esox[msgpack]' ({e})"
    raise ImportError(msg, name="msgspec") from e

from esox.dcb import api, domain
from esox.dcb.mapper import DCBMapper
from esox.utils import get_topic, resolve_topic

__all__ = ["Decision", "InitialDecision", "MessagePackMapper"]


class Decision(msgspec.Struct, domain.Decision):
    """A decision whose fields are declared as a msgspec struct's."""

    def as_dict(self) -> dict[str, Any]:
        """The decision's fields."""
        return msgspec.structs.asdict(self)


TDecision = TypeVar("TDecision", bound=Decision)


class InitialDecision(Decision, domain.InitialDecision):
    """The decision that creates an enduring object, as a msgspec struct."""

    originator_topic: str


class MessagePackMapper(DCBMapper[Decision]):
    """Tagged msgspec decisions to DCB events (MessagePack data) and back."""

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._decoders: dict[str, msgspec.msgpack.Decoder[Any]] = {}

    def to_dcb_event(self, event: domain.Tagged[TDecision]) -> api.DCBEvent:
        """The DCB event that records ``event``."""
        return api.DCBEvent(
            type=get_topic(type(event.decision)),
            data=self._encoder.encode(event.decision),
            tags=event.tags,
        )

    def to_domain_event(self, event: api.DCBEvent) -> domain.Tagged[Decision]:
        """The tagged decision that ``event`` records."""
        decoder = self._decoders.get(event.type)
        if decoder is None:
            decoder = msgspec.msgpack.Decoder(resolve_topic(event.type))
            self._decoders[event.type] = decoder
        return domain.Tagged(tags=event.tags, decision=decoder.decode(event.data))
