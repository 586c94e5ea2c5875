"""``esox.dcb.msgpack`` under the name later eventsourcing releases give it
(``eventsourcing.dcb.msgspecstruct``, ``MsgspecStructMapper``), so code
written for them imports it too."""

from esox.dcb.msgpack import Decision, InitialDecision
from esox.dcb.msgpack import MessagePackMapper as MsgspecStructMapper

__all__ = ["Decision", "InitialDecision", "MsgspecStructMapper"]
