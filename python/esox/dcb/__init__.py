"""Dynamic consistency boundaries (DCB), with the names of ``eventsourcing.dcb``.

So far: the API (``esox.dcb.api``) and two recorders in Rust, in memory
(``esox.dcb.memory``, also ``esox.dcb.popo``) and on SQLite
(``esox.dcb.sqlite``). See docs/dcb.md.
"""
