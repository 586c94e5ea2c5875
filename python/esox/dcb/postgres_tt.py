"""eventsourcing's name for the PostgreSQL DCB module (``esox.dcb.postgres_tt``).

``PostgresTTDCBFactory`` (``PERSISTENCE_MODULE=esox.postgres``) builds the
recorder of ``esox.dcb.postgres`` on the application's PostgreSQL datastore;
``PostgresDCBRecorderTT`` is that recorder. The ``DB_*`` names are those of
the PostgreSQL types and functions of eventsourcing's ``postgres_tt`` layout
(its test helpers import them to drop them).
"""

from __future__ import annotations

import importlib
from typing import Any

from esox.dcb.api import DCBRecorder
from esox.dcb.factory import DCBInfrastructureFactory
from esox.postgres import PostgresFactory

__all__ = [
    "DB_FUNCTION_NAME_DCB_CONDITIONAL_APPEND_TT",
    "DB_FUNCTION_NAME_DCB_UNCONDITIONAL_APPEND_TT",
    "DB_TYPE_NAME_DCB_EVENT_TT",
    "DB_TYPE_NAME_DCB_QUERY_ITEM_TT",
    "PostgresTTDCBFactory",
]

DB_TYPE_NAME_DCB_EVENT_TT = "dcb_event_tt"
DB_TYPE_NAME_DCB_QUERY_ITEM_TT = "dcb_query_item_tt"
DB_FUNCTION_NAME_DCB_UNCONDITIONAL_APPEND_TT = "dcb_unconditional_append_tt"
DB_FUNCTION_NAME_DCB_CONDITIONAL_APPEND_TT = "dcb_conditional_append_tt"


def _recorder_class() -> Any:
    # esox.dcb.postgres is imported when a recorder is first asked for.
    return importlib.import_module("esox.dcb.postgres").PostgresDCBRecorder


def __getattr__(name: str) -> Any:
    if name == "PostgresDCBRecorderTT":
        try:
            return _recorder_class()
        except ImportError as e:
            # An AttributeError, so that hasattr() and "from ... import" work.
            msg = f"{name} needs the PostgreSQL DCB recorder (esox.dcb.postgres): {e}"
            raise AttributeError(msg) from e
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


class PostgresTTDCBFactory(PostgresFactory, DCBInfrastructureFactory[Any]):
    """DCB infrastructure in PostgreSQL (``PERSISTENCE_MODULE=esox.postgres``):
    the ``POSTGRES_*`` settings as for aggregates; the table is
    ``<application name>_events`` (``dcb_events`` without a name), as
    eventsourcing's ``postgres_tt`` names it."""

    def dcb_recorder(self) -> DCBRecorder:
        """The DCB recorder on this factory's datastore (its table created
        unless ``CREATE_TABLE`` is false)."""
        recorder = _recorder_class()(
            self.datastore, events_table_name=f"{self.dcb_table_prefix()}_events"
        )
        if self.create_tables:
            recorder.create_table()
        assert isinstance(recorder, DCBRecorder)
        return recorder
