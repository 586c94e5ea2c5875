"""The DCB application and repository, with the names of
``eventsourcing.dcb.application`` (9.5)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Generic

from esox.dcb.domain import (
    EnduringObject,
    InitialDecision,
    Perspective,
    Selector,
    TDecision,
    TGroup,
    TPerspective,
    TSlice,
)
from esox.dcb.eventstore import DCBEventStore, NotFoundError
from esox.dcb.factory import DCBInfrastructureFactory
from esox.dcb.mapper import DCBMapper
from esox.utils import Closing, Environment, EnvType

__all__ = ["DCBApplication", "DCBRepository", "NotFoundError"]


class DCBApplication(Closing):
    """An application whose decisions have dynamic consistency boundaries.

    Configured like ``esox.Application`` (class ``env``, then ``os.environ``,
    then the constructor's ``env``): ``PERSISTENCE_MODULE`` selects memory
    (default), SQLite or PostgreSQL; ``MAPPER_TOPIC`` a ``DCBMapper`` class
    (default ``JSONDCBMapper``, which ``CIPHER_KEY`` and ``COMPRESSOR_TOPIC``
    configure). ``recorder`` is the DCB recorder; ``repository`` reads and
    saves enduring objects, groups and slices.
    """

    name = "DCBApplication"
    env: Mapping[str, str] = {"PERSISTENCE_MODULE": "esox.dcb.popo"}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    def __init__(self, env: EnvType | None = None) -> None:
        self.env = self.construct_env(self.name, env)
        self.factory = DCBInfrastructureFactory.construct(self.env)
        self.recorder = self.factory.dcb_recorder()
        self.mapper: DCBMapper[Any] = self.factory.dcb_mapper()
        self.events = DCBEventStore(self.mapper, self.recorder)
        self.repository = DCBRepository[Any](self.events)

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        """Merge class ``env``, ``os.environ`` and the given ``env`` (later wins)."""
        merged = dict(type(self).env)
        merged.update(os.environ)
        if env is not None:
            merged.update(env)
        return Environment(name, merged)

    def do(self, s: TSlice) -> TSlice:
        """Project the slice's decisions (if it projects any), execute it,
        then save its new decisions on the condition of its boundary."""
        if type(s).do_projection:
            s = self.repository.advance(s)
        s.execute()
        if s.new_decisions:
            self.repository.save(s)
        return s

    def close(self) -> None:
        """Close the recorder's connections."""
        self.factory.close()


class DCBRepository(Generic[TDecision]):
    """Reads perspectives from the event store and saves their new decisions."""

    def __init__(self, eventstore: DCBEventStore[TDecision]) -> None:
        self.eventstore = eventstore

    def save(self, p: Perspective[TDecision]) -> int:
        """Append the perspective's new decisions, unless a decision in its
        consistency boundary was recorded after the position it was read at
        (then IntegrityError, and nothing is recorded)."""
        return self.eventstore.append(
            events=p.collect_events(),
            cb=p.consistency_boundary(),
            after=p.last_known_position,
        )

    def get(self, enduring_object_id: str) -> EnduringObject[TDecision]:
        """The enduring object with this id (``NotFoundError`` if none)."""
        events = self.eventstore.read(Selector(tags=[enduring_object_id]))
        obj: EnduringObject[TDecision] | None = None
        for tagged in events:
            obj = tagged.decision.mutate(obj)
        if obj is None:
            msg = f"Enduring object not found: {enduring_object_id!r}"
            raise NotFoundError(msg)
        obj.last_known_position = events.head
        return obj

    def get_many(
        self, *enduring_object_ids: str
    ) -> list[EnduringObject[TDecision] | None]:
        """The enduring objects with these ids (None for one not found),
        read together, all at the position of that read."""
        if not enduring_object_ids:
            return []
        events = self.eventstore.read(
            [Selector(tags=[object_id]) for object_id in enduring_object_ids]
        )
        objs: dict[str, EnduringObject[TDecision] | None] = dict.fromkeys(
            enduring_object_ids
        )
        for tagged in events:
            for tag in tagged.tags:
                if tag not in objs:
                    continue
                obj = objs[tag]
                if obj is None and not isinstance(tagged.decision, InitialDecision):
                    continue
                objs[tag] = tagged.decision.mutate(obj)
        for obj in objs.values():
            if obj is not None:
                obj.last_known_position = events.head
        return list(objs.values())

    def get_group(self, cls: type[TGroup], *enduring_object_ids: str) -> TGroup:
        """A group of the enduring objects with these ids (None for one not
        found: the group's ``__init__`` decides what that means)."""
        enduring_objects = self.get_many(*enduring_object_ids)
        perspective = cls(*enduring_objects)
        positions = [
            o.last_known_position
            for o in enduring_objects
            if o is not None and o.last_known_position
        ]
        perspective.last_known_position = max(positions) if positions else None
        return perspective

    def advance(self, p: TPerspective) -> TPerspective:
        """Apply the decisions in ``p``'s boundary recorded after its
        ``last_known_position``, and move that to the read's head."""
        events = self.eventstore.read(
            cb=p.consistency_boundary(), after=p.last_known_position
        )
        for tagged in events:
            tagged.decision.mutate(p)
        p.last_known_position = events.head
        return p
