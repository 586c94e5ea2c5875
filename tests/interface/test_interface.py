"""The notification log over HTTP: a real uvicorn server, a real client, sockets."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from esox.examples.dogschool import DogSchool
from esox.interface import (
    RemoteLogError,
    RemoteLogRequestError,
    RemoteLogUnavailableError,
    RemoteNotificationLog,
    ServerThread,
    create_app,
    load_application,
)
from esox.persistence import Notification, OperationalError, StoredEvent
from esox.system import NotificationLogReader

REGISTERED = "esox.examples.dogschool:Dog.Registered"
TRICK_ADDED = "esox.examples.dogschool:Dog.TrickAdded"


@pytest.fixture(autouse=True)
def no_token_in_env(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("ESOX_HTTP_TOKEN", raising=False)


@pytest.fixture
def school() -> Iterator[DogSchool]:
    app = DogSchool(env={"PERSISTENCE_MODULE": "esox.memory"})
    yield app
    app.close()


def teach(school: DogSchool, dogs: int, tricks: int) -> list[UUID]:
    """Register ``dogs`` dogs and teach each ``tricks`` tricks."""
    dog_ids = []
    for i in range(dogs):
        dog_id = school.register_dog(f"dog {i}")
        for t in range(tricks):
            school.add_trick(dog_id, f"trick {t}")
        dog_ids.append(dog_id)
    return dog_ids


@pytest.fixture
def server(school: DogSchool) -> Iterator[ServerThread]:
    with ServerThread(create_app(school)) as running:
        yield running


@pytest.fixture
def remote(server: ServerThread) -> Iterator[RemoteNotificationLog]:
    with RemoteNotificationLog(server.url) as log:
        yield log


def local_log(school: DogSchool) -> list[Notification]:
    return list(NotificationLogReader(school.notification_log).read(start=1))


# The endpoints, through a real server.


def test_health_reports_the_max_notification_id(school, server):
    response = httpx.get(f"{server.url}/health")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok", "max_notification_id": 0}
    teach(school, dogs=1, tricks=2)
    assert httpx.get(f"{server.url}/health").json()["max_notification_id"] == 3


def test_a_section_is_json_with_string_ids_and_base64_state(school, server):
    (dog_id,) = teach(school, dogs=1, tricks=11)
    response = httpx.get(f"{server.url}/notifications/1,10")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["id"] == "1,10"
    assert body["next_id"] == "11,20"
    local = school.notification_log["1,10"].items
    assert body["items"] == [
        {
            "id": n.id,
            "originator_id": str(dog_id),
            "originator_id_type": "uuid",
            "originator_version": n.originator_version,
            "topic": n.topic,
            "state": base64.b64encode(n.state).decode(),
        }
        for n in local
    ]
    assert body["items"][0]["topic"] == REGISTERED
    last = httpx.get(f"{server.url}/notifications/11,20").json()
    assert (last["id"], last["next_id"]) == ("11,12", None)
    assert [item["id"] for item in last["items"]] == [11, 12]


def test_a_section_past_the_end_of_the_log_is_empty(school, server):
    teach(school, dogs=1, tricks=0)
    body = httpx.get(f"{server.url}/notifications/11,20").json()
    assert body == {"id": None, "next_id": None, "items": []}


def test_a_selection_honours_start_limit_stop_topics_and_inclusive_of_start(
    school, server
):
    teach(school, dogs=3, tricks=3)  # ids 1, 5, 9 are registrations

    def ids(query: str) -> list[int]:
        response = httpx.get(f"{server.url}/notifications?{query}")
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"items"}
        return [item["id"] for item in response.json()["items"]]

    assert ids("limit=5") == [1, 2, 3, 4, 5]
    assert ids("start=3&limit=2") == [3, 4]
    assert ids("start=3&limit=2&inclusive_of_start=false") == [4, 5]
    assert ids("start=10&limit=100") == [10, 11, 12]
    assert ids("start=2&limit=100&stop=4") == [2, 3, 4]
    assert ids(f"limit=10&topics={REGISTERED}") == [1, 5, 9]
    assert ids(f"start=2&limit=10&topics={REGISTERED},{TRICK_ADDED}") == list(
        range(2, 12)
    )
    assert ids("start=13&limit=10") == []


BAD_REQUESTS = [
    ("/notifications/abc", "Invalid section id 'abc'"),
    ("/notifications/1", "Invalid section id '1'"),
    ("/notifications/1,2,3", "Invalid section id '1,2,3'"),
    ("/notifications/1,x", "Invalid section id '1,x'"),
    ("/notifications/1,99999999999999999999", "Invalid section id"),
    ("/notifications/1,9223372036854775808", "Invalid section id"),
    ("/notifications", "Missing query parameter 'limit'"),
    ("/notifications?limit=", "Missing query parameter 'limit'"),
    ("/notifications?limit=0", "Invalid limit 0: must be from 1 to 10000"),
    ("/notifications?limit=-1", "Invalid limit -1: must be from 1 to 10000"),
    ("/notifications?limit=10001", "Invalid limit 10001: must be from 1 to 10000"),
    ("/notifications?limit=1" + "0" * 30, "Invalid limit"),
    ("/notifications?limit=ten", "Invalid limit 'ten': expected an integer"),
    ("/notifications?limit=1.5", "Invalid limit '1.5'"),
    ("/notifications?limit=1&start=x", "Invalid start 'x'"),
    ("/notifications?limit=1&start=9223372036854775808", "Invalid start"),
    ("/notifications?limit=1&stop=1e3", "Invalid stop '1e3'"),
    ("/notifications?limit=1&inclusive_of_start=maybe", "Invalid inclusive_of_start"),
    ("/notifications?limit=1&limit=2", "'limit' given more than once"),
    ("/notifications?limit=1&sart=2", "Unknown query parameter 'sart'"),
]


@pytest.mark.parametrize(("path", "error"), BAD_REQUESTS)
def test_a_bad_request_gets_400_and_a_json_error(server, path, error):
    response = httpx.get(server.url + path)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert error in response.json()["error"]
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize(
    "path", ["/", "/nope", "/notifications/1,10/more", "/health/x"]
)
def test_an_unknown_path_gets_404_and_a_json_error(server, path):
    response = httpx.get(server.url + path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"].startswith(f"Not found: {path}")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/notifications", "/notifications/1,10", "/health"])
def test_an_unknown_method_gets_405_and_a_json_error(server, method, path):
    response = httpx.request(method, server.url + path, content=b"{}")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD"}
    assert response.json() == {
        "error": f"Method {method} not allowed on {path}: use GET"
    }


def test_an_unexpected_error_gets_a_generic_500_and_details_only_in_the_log(
    school, server, monkeypatch, caplog
):
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(school.recorder, "select_notifications", fail)
    monkeypatch.setattr(school.recorder, "max_notification_id", fail)
    caplog.set_level(logging.ERROR, logger="esox.interface.server")
    for path in ["/notifications/1,10", "/notifications?limit=10", "/health"]:
        response = httpx.get(server.url + path)
        assert response.status_code == 500
        assert response.json() == {
            "error": "Internal server error (details are in the server log)"
        }
        assert "fire" not in response.text
    errors = [r for r in caplog.records if r.name == "esox.interface.server"]
    assert len(errors) == 3
    assert all("the disk is on fire" in str(r.exc_info[1]) for r in errors)
    assert "GET http://127.0.0.1" in errors[0].getMessage()


def test_a_selection_limit_is_capped_by_max_limit(school):
    teach(school, dogs=1, tricks=5)
    app = create_app(school, max_limit=3)
    with ServerThread(app) as server, httpx.Client(base_url=server.url) as client:
        assert len(client.get("/notifications?limit=3").json()["items"]) == 3
        response = client.get("/notifications?limit=4")
    assert response.status_code == 400
    assert response.json() == {"error": "Invalid limit 4: must be from 1 to 3"}
    with pytest.raises(ValueError, match="max_limit must be at least 1"):
        create_app(school, max_limit=0)


def test_the_app_mounts_under_a_prefix_in_a_starlette_app(school):
    teach(school, dogs=1, tricks=1)
    outer = Starlette(routes=[Mount("/eventlog", app=create_app(school))])
    with ServerThread(outer) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/eventlog/health").json()["max_notification_id"] == 2
        assert client.get("/eventlog/notifications/1,10").json()["id"] == "1,2"
        response = client.get("/eventlog/nope")
        assert response.status_code == 404
        assert response.json()["error"].startswith("Not found: /eventlog/nope")
        with RemoteNotificationLog(f"{server.url}/eventlog/") as log:
            assert log["1,10"] == school.notification_log["1,10"]
            assert log.health()["max_notification_id"] == 2


# The bearer token.


def test_a_token_is_needed_everywhere_but_health(school):
    teach(school, dogs=1, tricks=0)
    app = create_app(school, token="s3cret")
    with ServerThread(app) as server, httpx.Client(base_url=server.url) as client:
        check_token(client)


def check_token(client: httpx.Client) -> None:
    for headers in [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer s3cret-but-longer"},
        {"Authorization": "Basic s3cret"},
        {"Authorization": "s3cret"},
        {"Authorization": "Bearer"},
    ]:
        for path in ["/notifications/1,10", "/notifications?limit=1", "/nope"]:
            response = client.get(path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.headers["www-authenticate"] == "Bearer"
            assert "bearer token" in response.json()["error"]
        assert client.get("/health", headers=headers).status_code == 200
    good = {"Authorization": "Bearer s3cret"}
    assert client.get("/notifications/1,10", headers=good).status_code == 200
    assert client.get("/notifications?limit=1", headers=good).status_code == 200
    assert client.get("/nope", headers=good).status_code == 404
    lower = {"Authorization": "bearer s3cret"}
    assert client.get("/notifications/1,10", headers=lower).status_code == 200


def test_the_token_defaults_to_the_esox_http_token_variable(school, monkeypatch):
    monkeypatch.setenv("ESOX_HTTP_TOKEN", "from-env")
    headers = {"Authorization": "Bearer from-env"}
    with ServerThread(create_app(school)) as server:
        url = f"{server.url}/notifications?limit=1"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers=headers).status_code == 200
    with ServerThread(create_app(school, token="argument")) as server:
        url = f"{server.url}/notifications?limit=1"
        assert httpx.get(url, headers=headers).status_code == 401


def test_the_client_sends_its_token(school):
    teach(school, dogs=1, tricks=1)
    with ServerThread(create_app(school, token="s3cret")) as server:
        with RemoteNotificationLog(server.url, token="s3cret") as log:
            assert log.select(1, 10) == school.recorder.select_notifications(1, 10)
        with RemoteNotificationLog(server.url) as log:
            with pytest.raises(RemoteLogRequestError) as raised:
                log.select(1, 10)
            assert raised.value.status_code == 401
            assert "returned 401: Missing or invalid bearer token" in str(raised.value)
            assert log.health()["status"] == "ok"


# The client: the same notifications as the local log.


def test_remote_sections_equal_local_sections(school, remote):
    teach(school, dogs=3, tricks=7)
    for section_id in ["1,10", "0,5", "-3,4", "5,3", "11,20", "21,30", "24,40", "1,1"]:
        assert remote[section_id] == school.notification_log[section_id], section_id


def test_remote_selections_equal_local_selections(school, remote):
    teach(school, dogs=3, tricks=7)
    local = school.notification_log
    for args, kwargs in [
        ((1, 10), {}),
        ((None, 10), {}),
        ((0, 3), {}),
        ((5, 10), {"inclusive_of_start": False}),
        ((5, 10, 9), {}),
        ((1, 10), {"topics": [REGISTERED]}),
        ((2, 10), {"topics": (REGISTERED, TRICK_ADDED)}),
        ((20, 10), {}),
        ((1, 0), {}),
    ]:
        items = remote.select(*args, **kwargs)
        assert items == local.select(*args, **kwargs), (args, kwargs)
        assert all(type(n) is Notification for n in items)


def test_uuid_and_str_originator_ids_come_back_as_they_went_in(school, remote):
    uuid_id = uuid4()
    school.recorder.insert_events(
        [
            StoredEvent(uuid_id, 1, "t:Made", b"{}"),
            StoredEvent("dog-1", 1, "t:Made", b"\x00\xff binary"),
            StoredEvent(str(uuid_id), 1, "t:Made", b""),
        ]
    )
    first, second, third = remote.select(1, 10)
    assert first.originator_id == uuid_id
    assert type(first.originator_id) is UUID
    assert second.originator_id == "dog-1"
    assert type(second.originator_id) is str
    assert second.state == b"\x00\xff binary"
    assert third.originator_id == str(uuid_id)
    assert type(third.originator_id) is str
    assert third.state == b""


class XorCipher:
    """A toy cipher (not encryption!), so the test sees state on the wire as stored."""

    def __init__(self, env: Any) -> None:
        self.key = 0x5A

    def encrypt(self, plaintext: bytes) -> bytes:
        return bytes(b ^ self.key for b in plaintext)

    def decrypt(self, ciphertext: bytes) -> bytes:
        return bytes(b ^ self.key for b in ciphertext)


def test_state_goes_over_the_wire_as_stored_compressed_and_encrypted():
    env = {
        "PERSISTENCE_MODULE": "esox.memory",
        "COMPRESSOR_TOPIC": "zlib",
        "CIPHER_TOPIC": f"{__name__}:XorCipher",
    }
    with DogSchool(env=env) as school:
        dog_id = school.register_dog("Fido")
        school.add_trick(dog_id, "roll over")
        stored = school.recorder.select_notifications(1, 10)
        assert b"Fido" not in stored[0].state
        with ServerThread(create_app(school)) as server:
            body = httpx.get(f"{server.url}/notifications?limit=10").json()
            assert [base64.b64decode(i["state"]) for i in body["items"]] == [
                n.state for n in stored
            ]
            with RemoteNotificationLog(server.url) as log:
                remote = log.select(1, 10)
        assert remote == stored
        # Whoever holds the key (and the compressor) reads the events back.
        events = school.mapper.to_domain_events(remote)
        assert events[0].name == "Fido"
        assert events[1].trick == "roll over"


def test_a_malformed_section_id_raises_what_the_local_log_raises(school, remote):
    for section_id in ["abc", "1", "1,2,3", "1,x"]:
        with pytest.raises(ValueError) as local_error:
            school.notification_log[section_id]
        with pytest.raises(ValueError) as remote_error:
            remote[section_id]
        assert str(remote_error.value) == str(local_error.value)


def test_a_bad_request_raises_at_once_naming_status_and_server_message(school):
    counter = RequestCounter(create_app(school))
    with (
        ServerThread(counter) as server,
        RemoteNotificationLog(server.url, retries=3) as log,
        pytest.raises(RemoteLogRequestError) as raised,
    ):
        log.select(1, -1)
    assert isinstance(raised.value, ValueError)
    assert raised.value.status_code == 400
    assert str(raised.value) == (
        f"GET {server.url}/notifications returned 400: "
        "Invalid limit -1: must be from 1 to 10000"
    )
    assert counter.requests == 1


def test_a_topic_with_a_comma_is_refused_by_the_client(remote):
    with pytest.raises(ValueError, match="Topics can't contain commas"):
        remote.select(1, 10, topics=["a,b"])


# Retries, timeouts, connections.


class RequestCounter:
    """ASGI middleware: counts requests and the client sockets they came on, and
    answers the first ``fail`` of them with ``status`` (after ``delay`` seconds)."""

    def __init__(
        self,
        app: Any,
        fail: int = 0,
        status: int = 503,
        delay: float = 0.0,
        headers: Iterable[tuple[bytes, bytes]] = (),
        body: bytes = b'{"error":"try later"}',
    ) -> None:
        self.app, self.fail, self.status, self.delay = app, fail, status, delay
        self.headers, self.body = list(headers), body
        self.requests = 0
        self.clients: set[tuple[str, int]] = set()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self.requests += 1
        self.clients.add(tuple(scope["client"]))
        if self.requests > self.fail:
            return await self.app(scope, receive, send)
        await asyncio.sleep(self.delay)
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(b"content-type", b"application/json"), *self.headers],
            }
        )
        await send({"type": "http.response.body", "body": self.body})
        return None


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_the_client_retries_5xx_and_429_then_succeeds(school, status):
    teach(school, dogs=1, tricks=1)
    counter = RequestCounter(create_app(school), fail=2, status=status)
    with (
        ServerThread(counter) as server,
        RemoteNotificationLog(server.url, retries=2, backoff=0.01) as log,
    ):
        assert log["1,10"] == school.notification_log["1,10"]
    assert counter.requests == 3


def test_the_client_gives_up_after_its_retries(school):
    counter = RequestCounter(create_app(school), fail=100, status=503)
    with (
        ServerThread(counter) as server,
        RemoteNotificationLog(server.url, retries=3, backoff=0.01) as log,
        pytest.raises(RemoteLogUnavailableError) as raised,
    ):
        log.select(1, 10)
    assert counter.requests == 4
    assert raised.value.status_code == 503
    assert isinstance(raised.value, OperationalError)
    assert "returned 503 after 4 attempts: try later" in str(raised.value)


def test_the_client_honours_retry_after(school):
    counter = RequestCounter(
        create_app(school), fail=1, status=429, headers=[(b"retry-after", b"0.3")]
    )
    with (
        ServerThread(counter) as server,
        RemoteNotificationLog(server.url, backoff=0.0) as log,
    ):
        started = time.monotonic()
        assert log.select(1, 10) == []
        assert time.monotonic() - started >= 0.3
    assert counter.requests == 2


def test_the_client_retries_a_connection_refused_then_gives_up():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nobody listens
    log = RemoteNotificationLog(f"http://127.0.0.1:{port}", retries=2, backoff=0.01)
    with log, pytest.raises(RemoteLogUnavailableError) as raised:
        log["1,10"]
    assert raised.value.status_code is None
    assert "failed after 3 attempts: ConnectError" in str(raised.value)
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


def test_a_slow_server_times_out_and_is_retried(school):
    counter = RequestCounter(create_app(school), fail=1, delay=1.0, status=200)
    with ServerThread(counter) as server:
        log = RemoteNotificationLog(server.url, timeout=0.2, retries=1, backoff=0.0)
        with log:
            assert log.select(1, 10) == []
        log = RemoteNotificationLog(server.url, timeout=0.2, retries=0)
        counter.fail = 3
        with log, pytest.raises(RemoteLogUnavailableError, match="ReadTimeout"):
            log.select(1, 10)
    assert counter.requests == 3


def test_a_response_that_is_not_a_notification_log_is_an_error(school):
    counter = RequestCounter(create_app(school), fail=1, status=200, body=b"<html>")
    with ServerThread(counter) as server, RemoteNotificationLog(server.url) as log:
        with pytest.raises(RemoteLogError, match="Malformed response"):
            log.select(1, 10)
        counter.fail, counter.body = 2, b'{"items": [{"id": 1}]}'
        with pytest.raises(RemoteLogError, match=r"Malformed response.*KeyError"):
            log.select(1, 10)


def test_the_client_keeps_one_connection_alive(school):
    teach(school, dogs=1, tricks=30)
    counter = RequestCounter(create_app(school))
    with ServerThread(counter) as server, RemoteNotificationLog(server.url) as log:
        reader = NotificationLogReader(log, section_size=3)
        assert len([n for batch in reader.select(start=1) for n in batch]) == 31
        assert len(list(reader.read(start=1))) == 31
    assert counter.requests > 20
    assert len(counter.clients) == 1


def test_a_closed_client_can_not_be_used(server):
    log = RemoteNotificationLog(server.url)
    with log:
        log.select(1, 10)
    with pytest.raises(RemoteLogError):
        log.select(1, 10)


# The reader: the same over local and remote logs.


def test_the_reader_reads_the_same_from_local_and_remote_logs(school, remote):
    teach(school, dogs=4, tricks=6)
    for size in (1, 3, 10):
        local_reader = NotificationLogReader(school.notification_log, section_size=size)
        remote_reader = NotificationLogReader(remote, section_size=size)
        for start in (1, 2, 11, 28, 29):
            assert list(remote_reader.read(start=start)) == list(
                local_reader.read(start=start)
            )
            for kwargs in [
                {},
                {"stop": 20},
                {"topics": [REGISTERED]},
                {"inclusive_of_start": False},
            ]:
                assert list(remote_reader.select(start=start, **kwargs)) == list(
                    local_reader.select(start=start, **kwargs)
                ), (size, start, kwargs)


def test_two_remote_readers_read_every_notification_once_in_order_while_events_are_written(  # noqa: E501
    school, server
):
    dogs, tricks = 40, 9
    total = dogs * (tricks + 1)
    writing_done = threading.Event()
    halfway = threading.Barrier(3, timeout=30)

    def write() -> None:
        teach(school, dogs=dogs // 2, tricks=tricks)
        halfway.wait()  # both readers have read some, while more is still to come
        for _ in range(dogs // 2):
            teach(school, dogs=1, tricks=tricks)
            time.sleep(0.001)
        writing_done.set()

    def follow(
        read: Callable[[int], Iterable[Notification]], polls: list[int]
    ) -> list[Notification]:
        seen: list[Notification] = []
        waited = False
        while True:
            finished = writing_done.is_set()  # so one more read follows the last write
            start = seen[-1].id + 1 if seen else 1
            seen.extend(read(start))
            polls.append(len(seen))
            if seen and not waited:
                halfway.wait()
                waited = True
            if finished:
                return seen
            time.sleep(0.002)

    with RemoteNotificationLog(server.url) as log:  # one client, shared by both
        sections = NotificationLogReader(log, section_size=10)
        batches = NotificationLogReader(log, section_size=7)
        polls_a: list[int] = []
        polls_b: list[int] = []
        with ThreadPoolExecutor(max_workers=3) as pool:
            reader_a = pool.submit(follow, lambda s: sections.read(start=s), polls_a)
            reader_b = pool.submit(
                follow,
                lambda s: [n for batch in batches.select(start=s) for n in batch],
                polls_b,
            )
            writer = pool.submit(write)
            writer.result(timeout=60)
            read_a = reader_a.result(timeout=60)
            read_b = reader_b.result(timeout=60)

    local = local_log(school)
    assert [n.id for n in local] == list(range(1, total + 1))
    for seen, polls in [(read_a, polls_a), (read_b, polls_b)]:
        assert [n.id for n in seen] == list(range(1, total + 1))  # once, in order
        assert seen == local
        assert any(0 < p < total for p in polls)  # read while events were written


# esox serve, and finding the application it serves.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    pytest.fail(f"esox serve did not come up on {url}")


def test_esox_serve_serves_a_sqlite_application_with_a_token(tmp_path: Path):
    env = {
        "PERSISTENCE_MODULE": "esox.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "dogs.sqlite"),
    }
    with DogSchool(env=env) as school:
        teach(school, dogs=2, tricks=2)
        expected = local_log(school)
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "esox", "serve"),
            "esox.examples.dogschool:DogSchool",
            *("--port", str(port), "--token-env", "DOGS_TOKEN"),
            *("--log-level", "warning"),
        ],
        env={**os.environ, **env, "DOGS_TOKEN": "t0ken"},
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
        assert httpx.get(f"{url}/notifications?limit=1").status_code == 401
        with RemoteNotificationLog(url, token="t0ken") as log:
            assert list(NotificationLogReader(log).read(start=1)) == expected
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()


def test_esox_serve_says_what_is_wrong_with_its_arguments(tmp_path: Path):
    def serve(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        result = subprocess.run(
            [sys.executable, "-m", "esox", "serve", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **(env or {})},
            check=False,
        )
        return result.returncode, result.stderr

    code, err = serve("esox.examples.dogschool:Dog")
    assert code == 2
    assert "expected an esox Application or a callable returning one" in err
    code, err = serve("no_such_module:make")
    assert code == 2
    assert "No module named 'no_such_module'" in err
    code, err = serve("esox.examples.dogschool:DogSchool", "--token-env", "NOT_SET_X")
    assert code == 2
    assert "environment variable NOT_SET_X is not set" in err


def make_school() -> DogSchool:
    return DogSchool(env={"PERSISTENCE_MODULE": "esox.memory"})


A_SCHOOL = make_school()


def test_load_application_takes_an_application_or_a_factory():
    assert isinstance(load_application(f"{__name__}:make_school"), DogSchool)
    assert isinstance(load_application("esox.examples.dogschool:DogSchool"), DogSchool)
    assert load_application(f"{__name__}:A_SCHOOL") is A_SCHOOL
    for spec, error in [
        ("nocolon", "expected 'module:attribute'"),
        (f"{__name__}:", "expected 'module:attribute'"),
        (f"{__name__}:nothing_here", "has no attribute 'nothing_here'"),
        ("no_such_module_x:App", "No module named 'no_such_module_x'"),
        (f"{__name__}:REGISTERED", "got str"),
    ]:
        with pytest.raises(ValueError, match=error):
            load_application(spec)


# Tokens that are empty or read from a file, and passwords in URLs.


@pytest.mark.parametrize("empty", ["", " ", "\n"])
def test_an_empty_token_is_refused_unless_anonymous_is_allowed(
    school, monkeypatch, empty
):
    monkeypatch.setenv("ESOX_HTTP_TOKEN", empty)
    with pytest.raises(ValueError, match="ESOX_HTTP_TOKEN is empty") as raised:
        create_app(school)
    assert "ESOX_HTTP_ALLOW_ANONYMOUS=y" in str(raised.value)
    with pytest.raises(ValueError, match="token is empty"):
        create_app(school, token=empty)
    monkeypatch.setenv("ESOX_HTTP_ALLOW_ANONYMOUS", "y")
    with ServerThread(create_app(school)) as server:
        assert httpx.get(f"{server.url}/notifications?limit=1").status_code == 200
    monkeypatch.delenv("ESOX_HTTP_ALLOW_ANONYMOUS")
    with ServerThread(create_app(school, token=empty, allow_anonymous=True)) as server:
        assert httpx.get(f"{server.url}/notifications?limit=1").status_code == 200


def test_a_token_read_with_a_trailing_newline_still_works(school, monkeypatch):
    teach(school, dogs=1, tricks=0)
    monkeypatch.setenv("ESOX_HTTP_TOKEN", "s3cret\n")
    with ServerThread(create_app(school)) as server:
        good = {"Authorization": "Bearer s3cret"}
        assert httpx.get(f"{server.url}/notifications?limit=1").status_code == 401
        response = httpx.get(f"{server.url}/notifications?limit=1", headers=good)
        assert response.status_code == 200
        with RemoteNotificationLog(server.url, token="s3cret\r\n") as log:
            assert len(log.select(1, 10)) == 1


def test_esox_serve_refuses_an_empty_token_unless_told_no_auth(tmp_path: Path):
    env = {**os.environ, "PERSISTENCE_MODULE": "esox.memory", "ESOX_HTTP_TOKEN": ""}
    command = [
        *(sys.executable, "-m", "esox", "serve", "esox.examples.dogschool:DogSchool")
    ]
    refused = subprocess.run(
        [*command, "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "esox serve: environment variable ESOX_HTTP_TOKEN is empty, which would "
        "let anyone read the log: set a token, or pass --no-auth (or set "
        "ESOX_HTTP_ALLOW_ANONYMOUS=y) to serve without one"
    ]
    port = free_port()
    process = subprocess.Popen(
        [*command, "--port", str(port), "--no-auth", "--log-level", "warning"],
        env=env,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
        assert httpx.get(f"{url}/notifications?limit=1").status_code == 200
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert b"without a bearer token" in err


def test_a_password_in_the_url_is_sent_but_never_shown(school, caplog):
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = dict(scope["headers"])
        seen.append(headers.get(b"authorization", b"").decode())
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b'{"error": "no"}'})

    with ServerThread(app) as server:
        url = server.url.replace("http://", "http://reader:hunter2@")
        with RemoteNotificationLog(url, retries=0) as log:
            assert "hunter2" not in log.base_url + repr(log)
            with pytest.raises(RemoteLogRequestError) as refused:
                log.select(1, 10)
    assert seen == ["Basic " + base64.b64encode(b"reader:hunter2").decode()]
    port = free_port()
    unreachable_url = f"http://u:hunter2@127.0.0.1:{port}"
    with (
        RemoteNotificationLog(unreachable_url, retries=0) as log,
        pytest.raises(RemoteLogUnavailableError) as unreachable,
    ):
        log.select(1, 10)
    for error in (refused.value, unreachable.value):
        assert "hunter2" not in str(error) and "hunter2" not in repr(error)
    assert "127.0.0.1" in str(unreachable.value)
    assert caplog.records and "hunter2" not in caplog.text


@pytest.mark.parametrize("with_length", [True, False])
def test_the_client_reads_no_more_than_max_response_bytes(with_length: bool):
    piece = b" " * 65536

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-length", str(len(piece) * 64).encode())]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": headers if with_length else [],
            }
        )
        for i in range(64):  # 4 MiB
            await send(
                {"type": "http.response.body", "body": piece, "more_body": i < 63}
            )

    with ServerThread(app) as server:
        small = RemoteNotificationLog(server.url, max_response_bytes=2**20)
        with small, pytest.raises(RemoteLogError, match="than max_response_bytes"):
            small.select(1, 10)
        whole = RemoteNotificationLog(server.url)  # 4 MiB is under the default
        with whole, pytest.raises(RemoteLogError, match="Malformed response"):
            whole.select(1, 10)
    with pytest.raises(ValueError, match="max_response_bytes must be at least 1"):
        RemoteNotificationLog("http://127.0.0.1:1", max_response_bytes=0)
