"""Dynamic consistency boundaries (DCB), with the names of ``eventsourcing.dcb``.

So far: the API (``esox.dcb.api``), two recorders in Rust, in memory
(``esox.dcb.memory``, also ``esox.dcb.popo``) and on SQLite
(``esox.dcb.sqlite``), and one on PostgreSQL with psycopg 3
(``esox.dcb.postgres``, in eventsourcing's ``postgres_tt`` tables). See
docs/dcb.md.
"""
