"""The DCB event store: tagged decisions in, selected by consistency boundary."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Generic

from esox.dcb.api import (
    DCBAppendCondition,
    DCBQuery,
    DCBQueryItem,
    DCBReadResponse,
    DCBRecorder,
)
from esox.dcb.domain import Selector, Tagged, TDecision
from esox.dcb.mapper import DCBMapper
from esox.utils import get_topic

__all__ = ["DCBEventStore", "DCBEventStoreReadResponse", "NotFoundError"]


class NotFoundError(Exception):
    """No decision is tagged with the id of the enduring object asked for."""


class DCBEventStore(Generic[TDecision]):
    """Appends tagged decisions on the condition that nothing in their
    consistency boundary was recorded after a position, and reads them by
    consistency boundary (a ``Selector`` or a list of them)."""

    def __init__(self, mapper: DCBMapper[TDecision], recorder: DCBRecorder) -> None:
        self.mapper = mapper
        self.recorder = recorder

    def append(
        self,
        events: Sequence[Tagged[TDecision]],
        cb: Selector | Sequence[Selector] | None = None,
        after: int | None = None,
    ) -> int:
        """Record ``events``; with ``cb`` or ``after``, only if no decision
        selected by ``cb`` was recorded after ``after`` (else IntegrityError,
        and nothing is recorded). Returns the last position (0 if no events)."""
        if len(events) == 0:
            return 0
        condition = (
            None
            if cb is None and after is None
            else DCBAppendCondition(
                fail_if_events_match=self._cb_to_dcb_query(cb), after=after
            )
        )
        return self.recorder.append(
            events=self.mapper.to_dcb_events(events), condition=condition
        )

    def read(
        self,
        cb: Selector | Sequence[Selector] | None = None,
        *,
        after: int | None = None,
    ) -> DCBEventStoreReadResponse[TDecision]:
        """The decisions ``cb`` selects (all if None), after position ``after``."""
        response = self.recorder.read(query=self._cb_to_dcb_query(cb), after=after)
        return DCBEventStoreReadResponse(response, self.mapper)

    @staticmethod
    def _cb_to_dcb_query(cb: Selector | Sequence[Selector] | None = None) -> DCBQuery:
        selectors = [cb] if isinstance(cb, Selector) else cb or []
        return DCBQuery(
            items=[
                DCBQueryItem(types=[get_topic(t) for t in s.types], tags=list(s.tags))
                for s in selectors
            ]
        )


class DCBEventStoreReadResponse(Iterator[Tagged[TDecision]]):
    """The decisions of a read, in position order, and the read's ``head``.

    The recorder's events are taken and decoded as one batch when the
    response is made (esox's recorders read a whole result at once anyway).
    """

    def __init__(
        self, dcb_read_response: DCBReadResponse, mapper: DCBMapper[TDecision]
    ) -> None:
        events = [sequenced.event for sequenced in dcb_read_response]
        self._head = dcb_read_response.head
        self._decisions = iter(mapper.to_domain_events(events))

    @property
    def head(self) -> int | None:
        """The head of the read: use it as the ``after`` of a later append."""
        return self._head

    def __next__(self) -> Tagged[TDecision]:
        return next(self._decisions)
