"""Databases written by eventsourcing 9.x open in esox, and the other way round.

Three writers and readers, each in its own process, over SQLite files and
PostgreSQL schemas, plain, compressed (zlib), encrypted (AES) and both:

- ``eventsourcing``: an eventsourcing application on eventsourcing's own
  persistence (``eventsourcing.sqlite``, ``eventsourcing.postgres``);
- ``dropin``: the same application on ``esox.dropin.*``;
- ``esox``: the application with only its imports changed to esox
  (``esox.sqlite``, ``esox.postgres``).

Separate processes are needed for SQLite: eventsourcing's sqlite3 and esox's
bundled SQLite are two SQLite libraries, whose file locks don't see each other
within one process. (For PostgreSQL they also keep each side's classes apart:
the two applications' event classes have the same topics.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.cipher import AESCipher

from tests.persistence_envs import POSTGRES, postgres_schema

MODEL = """
from __future__ import annotations

import json
import sys
from uuid import UUID

{imports}


class Dog(Aggregate):
    @event("Registered")
    def __init__(self, name: str) -> None:
        self.name = name
        self.tricks: list[str] = []

    @event("TrickAdded")
    def add_trick(self, trick: str) -> None:
        self.tricks.append(trick)


class DogSchool(Application):
    def register_dog(self, name: str) -> UUID:
        dog = Dog(name)
        self.save(dog)
        return dog.id

    def add_trick(self, dog_id: UUID, trick: str) -> None:
        dog = self.repository.get(dog_id)
        dog.add_trick(trick)
        self.save(dog)


def write(env: dict[str, str]) -> dict[str, str]:
    app = DogSchool(env={{**env, "IS_SNAPSHOTTING_ENABLED": "y"}})
    dog_id = app.register_dog("Fido")
    app.add_trick(dog_id, "roll over")
    app.take_snapshot(dog_id)
    app.add_trick(dog_id, "play dead")
    app.factory.tracking_recorder().insert_tracking(Tracking("upstream", 7))
    app.close()
    return {{"dog_id": str(dog_id)}}


def read(env: dict[str, str], dog_id: str) -> dict[str, object]:
    result: dict[str, object] = {{}}
    app = DogSchool(env={{**env, "CREATE_TABLE": "n"}})
    dog = app.repository.get(UUID(dog_id))
    result["events"] = [dog.name, dog.tricks, dog.version]
    result["topics"] = [
        n.topic.rpartition(".")[2] for n in app.notification_log.select(1, 10)
    ]
    result["tracking"] = app.factory.tracking_recorder().max_tracking_id("upstream")
    app.close()
    app = DogSchool(env={{**env, "CREATE_TABLE": "n", "IS_SNAPSHOTTING_ENABLED": "y"}})
    try:
        dog = app.repository.get(UUID(dog_id))
    except Exception as e:
        result["snapshot"] = f"{{type(e).__name__}}: {{e}}"
    else:
        result["snapshot"] = [dog.name, dog.tricks, dog.version]
    app.close()
    return result


if __name__ == "__main__":
    jobs = json.load(sys.stdin)
    out = []
    for job in jobs:
        if job["action"] == "write":
            out.append(write(job["env"]))
        else:
            out.append(read(job["env"], job["dog_id"]))
    print(json.dumps(out))
"""

IMPORTS = {
    "eventsourcing": """
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Tracking
""",
    "esox": """
from esox import Aggregate, Application, event
from esox.persistence import Tracking
""",
}
IMPORTS["dropin"] = IMPORTS["eventsourcing"]

SIDES = ("eventsourcing", "dropin", "esox")
MODULES = {
    ("sqlite", "eventsourcing"): "eventsourcing.sqlite",
    ("sqlite", "dropin"): "esox.dropin.sqlite",
    ("sqlite", "esox"): "esox.sqlite",
    ("postgres", "eventsourcing"): "eventsourcing.postgres",
    ("postgres", "dropin"): "esox.dropin.postgres",
    ("postgres", "esox"): "esox.postgres",
}
CIPHER_KEY = AESCipher.create_key(16)
CONFIGS: dict[str, dict[str, str]] = {
    "plain": {},
    "zlib": {"COMPRESSOR_TOPIC": "zlib"},
    "aes": {"CIPHER_KEY": CIPHER_KEY},
    "zlib+aes": {"COMPRESSOR_TOPIC": "zlib", "CIPHER_KEY": CIPHER_KEY},
}


def run(side: str, models: Path, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run jobs in a new process with the side's model module."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POSTGRES_", "SQLITE_", "PERSISTENCE_", "CIPHER_"))
        and k != "COMPRESSOR_TOPIC"
    }
    env["PYTHONPATH"] = str(models / side)
    done = subprocess.run(
        [sys.executable, "-m", "dogs"],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    for side in SIDES:
        (root / side).mkdir()
        code = MODEL.format(imports=textwrap.dedent(IMPORTS[side]).strip())
        (root / side / "dogs.py").write_text(code)
    return root


def database_envs(
    kind: str, stack: ExitStack, tmp: Path
) -> dict[tuple[str, str], dict[str, str]]:
    """One database per writer and configuration."""
    envs = {}
    for side in SIDES:
        for config in CONFIGS:
            if kind == "sqlite":
                env = {"SQLITE_DBNAME": str(tmp / f"{side}-{config}.sqlite")}
            else:
                schema = stack.enter_context(postgres_schema())
                env = {**POSTGRES, "POSTGRES_SCHEMA": schema}
            envs[side, config] = env
    return envs


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def results(
    request: pytest.FixtureRequest,
    models: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[tuple[str, str, str], dict[str, Any]]]:
    """What each reader read from what each writer wrote, per configuration."""
    kind = request.param
    with ExitStack() as stack:
        envs = database_envs(kind, stack, tmp_path_factory.mktemp(kind))
        dog_ids = {}
        for writer in SIDES:
            jobs = [
                {
                    "action": "write",
                    "env": {
                        "PERSISTENCE_MODULE": MODULES[kind, writer],
                        **envs[writer, config],
                        **CONFIGS[config],
                    },
                }
                for config in CONFIGS
            ]
            for config, out in zip(CONFIGS, run(writer, models, jobs), strict=True):
                dog_ids[writer, config] = out["dog_id"]
        found = {}
        for reader in SIDES:
            keys = [(w, c) for w in SIDES for c in CONFIGS if w != reader]
            jobs = [
                {
                    "action": "read",
                    "env": {
                        "PERSISTENCE_MODULE": MODULES[kind, reader],
                        **envs[writer, config],
                        **CONFIGS[config],
                    },
                    "dog_id": dog_ids[writer, config],
                }
                for writer, config in keys
            ]
            for (writer, config), out in zip(
                keys, run(reader, models, jobs), strict=True
            ):
                found[writer, reader, config] = out
        yield found


PAIRS = [(w, r) for w in SIDES for r in SIDES if w != r]
READS = [(w, r, c) for w, r in PAIRS for c in CONFIGS]


@pytest.fixture(params=READS, ids=["-".join(read) for read in READS])
def read(
    request: pytest.FixtureRequest,
    results: dict[tuple[str, str, str], dict[str, Any]],
) -> dict[str, Any]:
    """What one reader read from what one writer wrote, in one configuration."""
    return results[request.param]


def test_events_notifications_and_tracking_open_in_the_other_library(
    read: dict[str, Any],
) -> None:
    assert read["events"] == ["Fido", ["roll over", "play dead"], 3]
    assert read["topics"] == ["Registered", "TrickAdded", "TrickAdded"]
    assert read["tracking"] == 7


def test_snapshots_open_in_the_other_library(read: dict[str, Any]) -> None:
    assert read["snapshot"] == ["Fido", ["roll over", "play dead"], 3]
