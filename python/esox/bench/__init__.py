"""esox's benchmark: esox against eventsourcing 9.x and the practical limits.

``esox bench`` (see :func:`esox.bench.run.run_bench`) runs every workload in
one process and reports rates and ratios (and, with ``--goals``, esox's own
performance goals). The workloads in ``esox.bench.workloads`` are also what
the pytest-benchmark suites in ``benches/`` time, so each is defined once.
Nothing in the library imports this package; it needs ``esox[bench]``.
"""

from esox.bench.run import Options, run_bench

__all__ = ["Options", "run_bench"]
