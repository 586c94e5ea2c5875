"""What every test shares: which tests are slow, and their time limits.

Slow tests (soak, stress, faults, several processes, wheel builds) are marked
here, in one list, rather than in each module: ``make test`` leaves them out
outside CI (``-m "not slow"``); ``make test-all`` and CI run them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# Modules whose every test is slow.
SLOW_MODULES = frozenset(
    {
        "test_faults",  # restarts the PostgreSQL server
        "test_dcb_processes",  # client processes race on SQLite and PostgreSQL
        "test_multiprocess_main_guard",
        "test_partitions",  # esox run processes, SIGKILLed at random
        "test_postgres_scaling",  # writer processes, killed and stalled
        "test_runners_multiprocess",
        "test_soak",
        "test_stress",
        "test_wheel",  # builds and installs a wheel
    }
)

# Single tests that start and kill writer processes, by module and name.
SLOW_TESTS = frozenset(
    {
        (
            "test_sqlite_recorder",
            "test_processes_inserting_into_one_file_lose_and_duplicate_nothing",
        ),
        (
            "test_sqlite_recorder",
            "test_writer_killed_mid_write_leaves_no_partial_batch",
        ),
        (
            "test_postgres_recorder",
            "test_processes_inserting_lose_and_duplicate_nothing",
        ),
        (
            "test_postgres_recorder",
            "test_writer_killed_mid_batch_leaves_nothing_partial",
        ),
        (
            "test_postgres_recorder",
            "test_writer_killed_while_its_transaction_holds_the_lock_leaves_all_or_nothing",
        ),
        ("test_bench", "test_a_writer_process_that_dies_fails_the_block_at_once"),
        ("test_bench", "test_writer_processes_end_when_their_parent_dies"),
        (
            "test_dcb_sqlite",
            "test_processes_racing_for_seats_each_seat_is_won_once_and_a_subscriber_skips_none",
        ),
    }
)

# A slow module's tests may take this long each (the default is pyproject's).
SLOW_MODULE_TIMEOUT = 1800


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = Path(str(item.fspath)).stem
        name = getattr(item, "originalname", item.name)
        if module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(SLOW_MODULE_TIMEOUT))
        elif (module, name) in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
