"""The conformance runner: eventsourcing 9.5's own tests, examples and docs,
ported to esox by rewriting imports and persistence-module names only, run
beside the same files unchanged on eventsourcing 9.5.6 (the control).

See tests/conformance/README.md.
"""
