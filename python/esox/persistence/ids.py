"""How a mapper turns stored originator ids back into an event class's ids,
for mappers written in Python (eventsourcing's helpers, under its names)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any
from uuid import UUID

from esox.domain import HasOriginatorIDVersion

__all__ = ["find_id_convertor", "pass_through_convertor", "str_to_uuid_convertor"]

_ANNOTATIONS: dict[Any, type[UUID] | type[str]] = {
    str: str,
    UUID: UUID,
    "str": str,
    "UUID": UUID,
    "uuid.UUID": UUID,
}


def pass_through_convertor(originator_id: UUID | str) -> UUID | str:
    """The id as it was stored."""
    return originator_id


def str_to_uuid_convertor(originator_id: UUID | str) -> UUID | str:
    """A stored text id as the UUID it spells."""
    return originator_id if isinstance(originator_id, UUID) else UUID(originator_id)


@lru_cache
def find_id_convertor(
    domain_event_cls: type[object], originator_id_cls: type[UUID | str]
) -> Callable[[UUID | str], UUID | str]:
    """The convertor from stored ids of type ``originator_id_cls`` to the ids
    of ``domain_event_cls``: from its ``originator_id_type`` (set by a type
    argument, ``HasOriginatorIDVersion[UUID]``), else from the first
    ``originator_id`` annotation along its MRO."""
    if issubclass(domain_event_cls, HasOriginatorIDVersion):
        id_type = domain_event_cls.originator_id_type
        if id_type is None:
            msg = "originator_id_type cannot be None"
            raise TypeError(msg)
    else:
        for cls in domain_event_cls.__mro__:
            annotation = getattr(cls, "__annotations__", {}).get("originator_id")
            if annotation is None:
                continue
            if annotation not in _ANNOTATIONS:
                msg = f"originator_id annotation on {cls} is not either UUID or str"
                raise TypeError(msg)
            id_type = _ANNOTATIONS[annotation]
            break
        else:
            msg = (
                f"Neither event class {domain_event_cls} nor its bases have an "
                "originator_id annotation"
            )
            raise TypeError(msg)
    if originator_id_cls is str and id_type is UUID:
        return str_to_uuid_convertor
    return pass_through_convertor
