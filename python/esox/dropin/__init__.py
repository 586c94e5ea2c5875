"""Drop-in persistence modules for eventsourcing 9.x applications.

Set ``PERSISTENCE_MODULE`` to one of these and an unchanged eventsourcing
application stores its events with esox's recorders and Rust mapper:

- ``esox.dropin.memory``: in memory (instead of ``eventsourcing.popo``)
- ``esox.dropin.sqlite``: SQLite (instead of ``eventsourcing.sqlite``)
- ``esox.dropin.postgres``: PostgreSQL (instead of ``eventsourcing.postgres``)

The application keeps eventsourcing's classes everywhere it can see them
(its ``StoredEvent``, ``Notification``, ``Tracking`` records, its exceptions,
its ``Mapper`` interface); the same environment variables configure it, and
the databases are the same tables, so either library opens the other's.
See docs/coming-from-eventsourcing.md.

This package needs eventsourcing installed (``pip install
'esox[eventsourcing]'``); importing it checks that, but imports nothing of
eventsourcing until one of the modules above is imported.
"""

import importlib.util


def _require_eventsourcing() -> None:
    try:
        found = importlib.util.find_spec("eventsourcing") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        msg = (
            "esox.dropin needs eventsourcing 9.x installed: "
            "pip install 'esox[eventsourcing]'"
        )
        raise ImportError(msg)


_require_eventsourcing()
