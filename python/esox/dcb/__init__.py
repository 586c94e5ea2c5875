"""Dynamic consistency boundaries (DCB), with the names of ``eventsourcing.dcb``.

``esox.dcb.api`` (queries, conditions, the recorder interface), recorders in
Rust in memory (``esox.dcb.memory``, also ``esox.dcb.popo``) and on SQLite
(``esox.dcb.sqlite``), one on PostgreSQL with psycopg 3 (``esox.dcb.postgres``,
in eventsourcing's ``postgres_tt`` tables), the domain model
(``esox.dcb.domain``), mapper, event store and factory
(``esox.dcb.persistence``), and ``DCBApplication`` with its repository
(``esox.dcb.application``). See docs/dcb.md.
"""
