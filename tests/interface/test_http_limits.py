"""HTTP remote log under abuse: rate limits, size limits, fuzzed parameters."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from esox.application import LocalNotificationLog, Section
from esox.examples.dogschool import DogSchool
from esox.interface.server import create_app
from tests.persistence_envs import persistence_env


@pytest.fixture(scope="module")
def school() -> DogSchool:
    school = DogSchool()
    for i in range(25):
        school.register_dog(f"dog {i}")
    return school


@pytest.fixture(scope="module")
def client(school: DogSchool) -> TestClient:
    return TestClient(
        create_app(school, allow_anonymous=True), raise_server_exceptions=False
    )


def test_clients_over_the_rate_limit_get_429_with_retry_after(school: DogSchool):
    limited = TestClient(create_app(school, allow_anonymous=True, rate_limit=1.0))
    statuses = [limited.get("/notifications?limit=1").status_code for _ in range(4)]
    assert statuses[:2] == [200, 200]
    assert statuses[-1] == 429
    refused = limited.get("/notifications?limit=1")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "Too many requests" in refused.json()["error"]


def test_rate_limit_from_environment_is_checked(
    school: DogSchool, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("ESOX_HTTP_RATE_LIMIT", "lots")
    with pytest.raises(ValueError, match="ESOX_HTTP_RATE_LIMIT"):
        create_app(school)
    monkeypatch.setenv("ESOX_HTTP_RATE_LIMIT", "0.5")
    limited = TestClient(create_app(school, allow_anonymous=True))
    assert limited.get("/health").status_code == 200
    assert limited.get("/health").status_code == 429


def test_oversized_query_strings_and_request_bodies_are_refused(client: TestClient):
    long_topics = ",".join(["x" * 50] * 200)
    response = client.get(f"/notifications?limit=1&topics={long_topics}")
    assert response.status_code == 414
    assert "longer than" in response.json()["error"]
    response = client.request("GET", "/notifications?limit=1", content=b"x" * 100)
    assert response.status_code == 413


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(query=st.text(max_size=80))
def test_fuzzed_query_strings_never_cause_server_errors(client: TestClient, query: str):
    response = client.get("/notifications?" + quote(query, safe="=&,"))
    assert response.status_code < 500, response.text
    assert "error" in response.json() or "items" in response.json()


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(section_id=st.text(max_size=40))
def test_fuzzed_section_ids_never_cause_server_errors(
    client: TestClient, section_id: str
):
    response = client.get("/notifications/" + quote(section_id, safe=","))
    assert response.status_code < 500, response.text


@settings(max_examples=500, deadline=None)
@given(
    section_id=st.one_of(
        st.text(max_size=30),
        st.tuples(st.integers(), st.integers()).map(lambda t: f"{t[0]},{t[1]}"),
    )
)
def test_fuzzed_section_ids_give_a_section_or_a_clear_value_error(section_id: str):
    log = LocalNotificationLog(_LOG_SCHOOL.recorder, section_size=10)
    try:
        section = log[section_id]
    except ValueError as e:
        assert "section id" in str(e).lower() or "invalid" in str(e).lower()
    else:
        assert isinstance(section, Section)
        assert len(section.items) <= 10


_LOG_SCHOOL = DogSchool()
for _i in range(15):
    _LOG_SCHOOL.register_dog(f"dog {_i}")


_MIN, _MAX = -(2**63), 2**63 - 1
_EXTREME_IDS = [_MIN, _MIN + 1, -1, 0, _MAX, _MAX + 1, 2**64]


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_extreme_section_ids_and_starts_get_400_or_an_answer_never_500(
    kind: str, tmp_path: Path
):
    with persistence_env(kind, tmp_path, "school") as env, DogSchool(env=env) as app:
        app.register_dog("rex")
        client = TestClient(
            create_app(app, allow_anonymous=True), raise_server_exceptions=False
        )
        paths = [f"/notifications/{a},{b}" for a in _EXTREME_IDS for b in _EXTREME_IDS]
        for value in _EXTREME_IDS:
            for inclusive in ("true", "false"):
                for name in ("start", "stop"):
                    paths.append(
                        f"/notifications?limit=10&{name}={value}"
                        f"&inclusive_of_start={inclusive}"
                    )
        for path in paths:
            response = client.get(path)
            assert response.status_code in (200, 400), (path, response.text)
            if response.status_code == 400:
                assert "out of range" in response.json()["error"] or (
                    "ids must be from" in response.json()["error"]
                ), path
        minimum = client.get(f"/notifications/{_MIN},5")
        assert minimum.status_code == 400
        assert "ids must be from -9223372036854775807" in minimum.json()["error"]
        start = client.get(f"/notifications?limit=1&start={_MIN}")
        assert start.status_code == 400
        assert "Invalid start" in start.json()["error"]
