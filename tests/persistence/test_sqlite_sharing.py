"""One SQLite database per application, whatever its name; one SQLite library
per file per process."""

from __future__ import annotations

import os
import sqlite3
import warnings
from pathlib import Path

import pytest

from esox.examples.dogschool import DogSchool
from esox.system import SingleThreadedRunner, SystemDefinitionError
from tests.system_apps import one_edge

# (ITEMS_SQLITE_DBNAME, COPIER_SQLITE_DBNAME), relative to the working directory.
SAME_DATABASE = {
    "dot-slash": ("same.db", "./same.db"),
    "absolute": ("same.db", "{cwd}/same.db"),
    "symlink": ("same.db", "link.db"),
    "uri": ("same.db", "file:same.db?mode=rwc"),
    "shared-memory": ("file::memory:?cache=shared", "file::memory:?cache=shared"),
    "named-shared-memory": (
        "file:mem1?mode=memory&cache=shared",
        "file:mem1?mode=memory&cache=shared",
    ),
}


def runner_env(items: str, copier: str) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "esox.sqlite",
        "ITEMS_SQLITE_DBNAME": items,
        "COPIER_SQLITE_DBNAME": copier,
    }


@pytest.mark.parametrize("names", SAME_DATABASE.values(), ids=list(SAME_DATABASE))
def test_runner_refuses_two_applications_in_one_database_however_named(
    names: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "same.db").touch()
    os.symlink(tmp_path / "same.db", tmp_path / "link.db")
    items, copier = (name.format(cwd=tmp_path) for name in names)
    with pytest.raises(SystemDefinitionError, match="would share one SQLite database"):
        SingleThreadedRunner(one_edge, env=runner_env(items, copier))


@pytest.mark.parametrize(
    "names",
    [
        (":memory:", ":memory:"),
        ("file:mem2?mode=memory&cache=shared", "file:mem3?mode=memory&cache=shared"),
        ("a.db", "b.db"),
    ],
    ids=["private-memory", "two-shared-memories", "two-files"],
)
def test_runner_accepts_distinct_databases(
    names: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with SingleThreadedRunner(one_edge, env=runner_env(*names)) as runner:
        assert runner.apps


def test_esox_warns_of_a_file_pythons_sqlite3_has_open(tmp_path: Path) -> None:
    # A warning, not a refusal: an open descriptor may be any open file (a
    # test's temporary file), not only another SQLite library's connection.
    path = str(tmp_path / "dogs.db")
    env = {"PERSISTENCE_MODULE": "esox.sqlite", "SQLITE_DBNAME": path}
    with DogSchool(env=env) as school:
        school.register_dog("Fido")
    other = sqlite3.connect(path)
    other.execute("SELECT count(*) FROM stored_events").fetchall()
    try:
        with (
            pytest.warns(RuntimeWarning, match="another SQLite library"),
            DogSchool(env=env),
        ):
            pass
    finally:
        other.close()
    # Closed: esox opens it quietly, and more than once in this process.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with DogSchool(env=env) as first, DogSchool(env=env) as second:
            assert first.recorder.max_notification_id() == 1
            assert second.recorder.max_notification_id() == 1
