"""A str aggregate id means the same on every backend (see docs/configuration.md).

Where ids are UUIDs, a str that spells a UUID (any way ``uuid.UUID`` reads
one) names that aggregate, and a str that spells none names no aggregate:
``AggregateNotFoundError``, never ValueError or DataError. In text tables a
str is first looked up as it is, then as the UUID it spells.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import pytest

from esox.application import AggregateNotFoundError
from esox.application.cache import Cache
from esox.examples.dogschool import DogSchool
from esox.persistence import DataError
from tests.persistence_envs import persistence_env

BACKENDS = [
    ("memory", "uuid"),
    ("sqlite", "uuid"),
    ("sqlite", "text"),
    ("postgres", "uuid"),
    ("postgres", "text"),
]

SPELLINGS: dict[str, Callable[[UUID], str]] = {
    "str": str,
    "hex": lambda u: u.hex,
    "upper": lambda u: str(u).upper(),
    "braces": lambda u: "{" + str(u) + "}",
}


@pytest.fixture(params=BACKENDS, ids=["-".join(b) for b in BACKENDS])
def school(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DogSchool]:
    kind, id_type = request.param
    with persistence_env(kind, tmp_path, "dogs") as env:
        app = DogSchool(env=env | {"ORIGINATOR_ID_TYPE": id_type})
        yield app
        app.close()


@pytest.mark.parametrize("cache", [False, True], ids=["no-cache", "cache"])
def test_a_str_id_finds_the_aggregate_of_the_uuid_it_spells_on_every_backend(
    school: DogSchool, cache: bool
) -> None:
    if cache:
        school.repository.cache = Cache()
    dog_id = school.register_dog("Fido")
    school.add_trick(dog_id, "sit")
    for spelling, spell in SPELLINGS.items():
        dog = school.repository.get(spell(dog_id))  # type: ignore[arg-type]
        assert (spelling, dog.id, dog.tricks) == (spelling, dog_id, ["sit"])
        assert spell(dog_id) in school.repository
    for missing in ["not-a-uuid", str(UUID(int=1)), ""]:
        with pytest.raises(AggregateNotFoundError, match=repr(missing)):
            school.repository.get(missing)  # type: ignore[arg-type]
        assert missing not in school.repository


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_uuid_tables_refuse_a_str_that_is_no_uuid_with_one_error(
    kind: str, tmp_path: Path
) -> None:
    with (
        persistence_env(kind, tmp_path, "dogs") as env,
        DogSchool(env=env) as school,
        pytest.raises(DataError, match="not a UUID"),
    ):
        school.recorder.select_events("not-a-uuid")
