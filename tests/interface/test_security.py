"""Hostile input: SQL injection through configured names, the HTTP remote log,
and cipher keys that must never leak."""

from __future__ import annotations

import traceback
import uuid
from pathlib import Path
from typing import Any

import pytest

from esox import _core
from esox.interface import create_app
from esox.persistence import StoredEvent
from esox.persistence.cipher import AESCipher
from esox.persistence.errors import (
    CipherKeyError,
    InfrastructureFactoryError,
    MapperDeserialisationError,
    PersistenceError,
    ProgrammingError,
)
from esox.persistence.factory import InfrastructureFactory
from tests.persistence_envs import POSTGRES, postgres_conninfo, postgres_schema
from tests.system_apps import Items

TOPIC = "tests.security:Happened"

INJECTIONS = [
    'x"; DROP TABLE victim_events; --',
    "x'; DROP TABLE victim_events; --",
    'x" CASCADE; DELETE FROM victim_events; --',
    "x%s%(name)s{}",
    "Robert'); DROP TABLE victim_events;--",
    "a.b",
    "victim_events (x int); --",
    "ünïcødé-名前",
]


def _app_class(name: str) -> type[Items]:
    return type("Evil", (Items,), {"name": name})


# PostgreSQL: application names and POSTGRES_SCHEMA become identifiers.


def _pg_env(schema: str) -> dict[str, str]:
    return POSTGRES | {"PERSISTENCE_MODULE": "esox.postgres", "POSTGRES_SCHEMA": schema}


def _victim_rows(schema: str) -> int:
    import psycopg

    with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".victim_events').fetchone()
        assert row is not None
        return int(row[0])


@pytest.mark.parametrize("name", INJECTIONS)
def test_postgres_application_name_is_quoted_or_refused(name: str):
    with postgres_schema() as schema:
        victim = _app_class("Victim")(env=_pg_env(schema))
        victim.create_many(["v1", "v2"])
        try:
            try:
                evil = _app_class(name)(env=_pg_env(schema))
            except (InfrastructureFactoryError, ProgrammingError) as e:
                assert "DROP" not in type(e).__name__
            else:
                try:
                    evil.create_many(["e1"])
                    evil.create("e2")
                    notes = evil.recorder.select_notifications(None, 10)
                    assert [n.originator_version for n in notes] == [1, 1]
                    assert evil.recorder.max_notification_id() == 2
                finally:
                    evil.close()
            assert _victim_rows(schema) == 2
            assert [
                e.label
                for e in victim.mapper.to_domain_events(
                    victim.recorder.select_notifications(None, 10)
                )
            ] == ["v1", "v2"]
        finally:
            victim.close()


@pytest.mark.parametrize(
    "suffix",
    [
        '"; DROP TABLE victim_events; --',
        "; DROP TABLE victim_events",
        "'; DROP TABLE victim_events; --",
        "%s%(x)s",
        "x" * 64,
        "\x00nul",
    ],
)
def test_postgres_schema_is_quoted_or_refused(suffix: str):
    import psycopg
    from psycopg import sql

    with postgres_schema() as schema:
        victim = _app_class("Victim")(env=_pg_env(schema))
        victim.create_many(["v1"])
        bad_schema = schema + suffix
        try:
            try:
                app = Items(env=_pg_env(bad_schema))
            except (InfrastructureFactoryError, PersistenceError):
                pass  # refused
            else:
                # Quoted: the schema of that exact name holds the tables.
                try:
                    app.create("x")
                    assert len(app.recorder.select_notifications(None, 10)) == 1
                finally:
                    app.close()
                with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
                    row = conn.execute(
                        "SELECT count(*) FROM pg_tables WHERE schemaname = %s",
                        (bad_schema,),
                    ).fetchone()
                    assert row is not None and row[0] >= 1
            assert _victim_rows(schema) == 1
        finally:
            victim.close()
            if "\x00" not in bad_schema:
                with psycopg.connect(postgres_conninfo(), autocommit=True) as conn:
                    conn.execute(
                        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                            sql.Identifier(bad_schema)
                        )
                    )


def test_postgres_overlong_application_name_is_refused_not_truncated():
    with postgres_schema() as schema:
        with pytest.raises(InfrastructureFactoryError) as info:
            _app_class("n" * 70)(env=_pg_env(schema))
        assert "63" in str(info.value)


# SQLite: table names passed to the recorder.


@pytest.mark.parametrize(
    "table",
    [
        'x"; DROP TABLE stored_events; --',
        "x]; DROP TABLE stored_events; --",
        "x`; DROP TABLE stored_events; --",
        "x'; DROP TABLE stored_events; --",
        "stored_events (a); --",
    ],
)
def test_sqlite_table_name_is_quoted_or_refused(table: str, tmp_path: Path):
    path = str(tmp_path / "db.sqlite")
    db = _core.SqliteDatabase(path)
    victim = _core.SqliteRecorder(db)
    victim.insert_events([StoredEvent(uuid.uuid4(), 1, TOPIC, b"{}")])
    try:
        try:
            evil = _core.SqliteRecorder(db, table)
        except (PersistenceError, ValueError) as e:
            assert "table name" in str(e)  # refused, naming what is wrong
        else:
            evil.insert_events([StoredEvent(uuid.uuid4(), 1, TOPIC, b"{}")])
            assert len(evil.select_notifications(None, 10)) == 1
        assert len(victim.select_notifications(None, 10)) == 1
    finally:
        db.close()


def test_sqlite_dbname_with_sql_is_just_a_file_name(tmp_path: Path):
    name = tmp_path / "x'; DROP TABLE stored_events; --.sqlite"
    app = Items(env={"PERSISTENCE_MODULE": "esox.sqlite", "SQLITE_DBNAME": str(name)})
    try:
        app.create("a")
        assert name.exists()
    finally:
        app.close()


def test_select_topics_and_ids_are_parameters_not_sql(tmp_path: Path):
    app = Items(
        env={"PERSISTENCE_MODULE": "esox.sqlite", "SQLITE_DBNAME": str(tmp_path / "d")}
    )
    try:
        app.create("a")
        evil = ["x' OR '1'='1", 'x") OR 1=1 --']
        assert app.recorder.select_notifications(None, 10, topics=evil) == []
        assert (
            app.recorder.select_events("00000000000000000000000000000000' OR 1=1 --")
            == []
        )
    except (PersistenceError, ValueError) as e:
        assert "not a UUID" in str(e)  # refusing a malformed id is fine too
    finally:
        app.close()


# HTTP remote log.

SECRET = "internal-secret-detail-/srv/app/module.py"


class FailingRecorder:
    """A recorder whose every read raises, to force internal server errors."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(SECRET)

        return fail


@pytest.fixture
def served():
    from starlette.testclient import TestClient

    app = Items()
    app.create_many([f"i{k}" for k in range(5)])
    client = TestClient(
        create_app(app, token="s3cret-token"), raise_server_exceptions=False
    )
    yield app, client
    client.close()
    app.close()


AUTH = {"Authorization": "Bearer s3cret-token"}


def test_http_token_is_required(served):
    _, client = served
    assert client.get("/notifications?limit=5", headers=AUTH).status_code == 200
    assert client.get("/notifications/1,5", headers=AUTH).status_code == 200
    for headers in [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer s3cret-token-and-more"},
        {"Authorization": "Bearer s3cret-toke"},
        {"Authorization": "Basic s3cret-token"},
        {"Authorization": "s3cret-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer s3cret-token\x00"},
    ]:
        for path in ["/notifications?limit=5", "/notifications/1,5", "/nope"]:
            try:
                response = client.get(path, headers=headers)
            except Exception:
                continue
            assert response.status_code == 401, (headers, path, response.text)
            assert "s3cret" not in response.text
            assert response.headers.get("www-authenticate") == "Bearer"
    # The token is not accepted in the query string.
    assert client.get("/notifications?limit=5&token=s3cret-token").status_code in (
        400,
        401,
    )
    assert client.get("/health").status_code == 200


def test_http_internal_errors_carry_no_stack_trace(served):
    from starlette.testclient import TestClient

    app, _ = served
    app.recorder = FailingRecorder()  # type: ignore[assignment]
    app._notification_log = type(app.notification_log)(  # type: ignore[attr-defined]
        app.recorder, section_size=10
    )
    client = TestClient(create_app(app, token="t"), raise_server_exceptions=False)
    headers = {"Authorization": "Bearer t"}
    for path in ["/notifications?limit=5", "/notifications/1,10", "/health"]:
        response = client.get(path, headers=headers)
        assert response.status_code >= 500, (path, response.status_code)
        body = response.text
        assert SECRET not in body
        assert "Traceback" not in body and 'File "' not in body
        assert "RuntimeError" not in body
        assert response.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    "query",
    [
        "limit=abc",
        "limit=-1",
        "limit=0",
        "limit=" + "9" * 30,
        "limit=99999999",
        "limit=1e3",
        "limit=5&start=1%20OR%201=1",
        "limit=5&start=" + "9" * 5000,
        "limit=5&stop=-99999999999999999999999",
        "limit=5&limit=6",
        "limit=5&evil=1",
        "limit=5&inclusive_of_start=maybe",
        "limit=5&start=%00",
        "limit=5&start=0x10",
        "limit=%E2%91%A0",  # a unicode digit
    ],
)
def test_http_abusive_query_parameters_are_4xx(served, query: str):
    _, client = served
    response = client.get(f"/notifications?{query}", headers=AUTH)
    assert 400 <= response.status_code < 500, (
        query,
        response.status_code,
        response.text,
    )
    assert "Traceback" not in response.text
    assert len(response.text) < 10_000


@pytest.mark.parametrize(
    "section",
    ["abc", "1", "1,", ",5", "1,2,3", "1," + "9" * 40, "%00,5", "-" * 1000],
)
def test_http_abusive_section_ids_are_4xx(served, section: str):
    _, client = served
    response = client.get(f"/notifications/{section}", headers=AUTH)
    assert 400 <= response.status_code < 500, (section, response.status_code)


def test_http_huge_section_range_is_bounded(served):
    _, client = served
    response = client.get(f"/notifications/1,{2**62}", headers=AUTH)
    assert response.status_code in (200, 400, 422), response.status_code
    if response.status_code == 200:
        assert len(response.json()["items"]) == 5


def test_http_oversized_topics_parameter(served):
    _, client = served
    # As long as a URL an HTTP client will send (httpx caps URLs at 64 KiB).
    topics = ",".join(f"t{k}" for k in range(9_000))
    response = client.get(f"/notifications?limit=5&topics={topics}", headers=AUTH)
    # Either refused as too large, or answered; never a server error.
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code == 200:
        assert response.json()["items"] == []


def test_http_oversized_request_line_over_a_real_server():
    import socket

    from esox.interface import ServerThread

    app = Items()
    try:
        with ServerThread(create_app(app, token="t")) as server:
            topics = ",".join(f"t{k}" for k in range(100_000))
            request = (
                f"GET /notifications?limit=5&topics={topics} HTTP/1.1\r\n"
                f"Host: x\r\nAuthorization: Bearer t\r\nConnection: close\r\n\r\n"
            ).encode()
            with socket.create_connection((server.host, server.port), timeout=10) as s:
                try:
                    s.sendall(request)
                except OSError:
                    return  # the server hung up on it: fine
                data = b""
                try:
                    while chunk := s.recv(65536):
                        data += chunk
                except ConnectionResetError:
                    pass  # refused and hung up (maybe after a 4xx response)
            if data:
                status = int(data.split(b" ", 2)[1])
                assert status < 500, data[:300]
                assert b"Traceback" not in data
    finally:
        app.close()


# Cipher keys.


KEY = AESCipher.create_key(32)


def _leaks(text: str, key: str = KEY) -> bool:
    import base64

    raw = base64.b64decode(key)
    return key in text or raw.hex() in text or repr(raw)[2:-1] in text


def test_cipher_key_never_in_reprs():
    app = Items(env={"CIPHER_KEY": KEY})
    try:
        cipher = app.mapper.cipher
        assert cipher is not None
        for obj in [cipher, app.mapper, app.factory, app.events, app.recorder]:
            assert not _leaks(repr(obj)), repr(obj)
            assert not _leaks(str(obj)), str(obj)
        inner = getattr(cipher, "_aead", None)
        if inner is not None:
            assert not _leaks(repr(inner)), repr(inner)
    finally:
        app.close()


def test_wrong_key_error_does_not_show_either_key():
    other = AESCipher.create_key(32)
    writer = Items(env={"CIPHER_KEY": KEY})
    item_id = writer.create("secret")
    reader_env = {"CIPHER_KEY": other}
    reader = Items(env=reader_env)
    # Share the writer's in-memory recorder with a reader holding another key.
    stored = writer.recorder.select_events(item_id)
    with pytest.raises(MapperDeserialisationError) as info:
        reader.mapper.to_domain_events(stored)
    text = "".join(traceback.format_exception(info.value))
    assert not _leaks(text, KEY) and not _leaks(text, other), text
    assert str(item_id) in str(info.value) or item_id.hex in str(info.value)


@pytest.mark.parametrize(
    "bad",
    [
        "not base64 at all " + KEY,
        KEY[:-4],  # wrong size
        KEY + "AAAA",
        AESCipher.create_key(16)[:-2] + "!!",
        "  ",
    ],
)
def test_malformed_key_is_a_clear_error_without_the_key(bad: str):
    with pytest.raises((CipherKeyError, InfrastructureFactoryError)) as info:
        Items(env={"CIPHER_KEY": bad, "CIPHER_TOPIC": "esox.persistence:AESCipher"})
    message = str(info.value)
    assert "CIPHER_KEY" in message, message
    text = "".join(traceback.format_exception(info.value))
    assert bad.strip() == "" or bad.strip() not in text, text
    assert not _leaks(text), text


def test_missing_key_with_cipher_topic_is_a_clear_error():
    with pytest.raises((CipherKeyError, InfrastructureFactoryError)) as info:
        Items(env={"CIPHER_TOPIC": "esox.persistence:AESCipher"})
    assert "CIPHER_KEY" in str(info.value)


def test_other_configuration_errors_do_not_show_the_key(tmp_path: Path):
    env = {
        "CIPHER_KEY": KEY,
        "PERSISTENCE_MODULE": "esox.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "db"),
    }
    for extra in [
        {"SQLITE_LOCK_TIMEOUT": "soon"},
        {"SQLITE_SYNCHRONOUS": "maybe"},
        {"PERSISTENCE_MODULE": "no.such.module"},
        {"COMPRESSOR_TOPIC": "no.such:Thing"},
        {"CIPHER_TOPIC": "no.such:Cipher"},
    ]:
        with pytest.raises(Exception) as info:
            Items(env=env | extra)
        text = "".join(traceback.format_exception(info.value))
        assert not _leaks(text), (extra, text)


def test_factory_construct_with_key_does_not_leak():
    factory = InfrastructureFactory.construct({"CIPHER_KEY": KEY})
    mapper = factory.mapper()
    assert not _leaks(repr(factory)) and not _leaks(repr(mapper))
    assert not _leaks(repr(mapper.cipher))


def test_environment_repr_never_shows_secrets():
    from esox.utils import Environment

    env = Environment(
        "bank",
        {"CIPHER_KEY": "c2VjcmV0", "POSTGRES_PASSWORD": "hunter2", "X": "shown"},
    )
    text = repr(env) + str(env)
    assert "c2VjcmV0" not in text and "hunter2" not in text
    assert "shown" in text and "<redacted>" in text


def test_environment_repr_hides_passwords_inside_urls():
    from esox.utils import Environment

    env = Environment(
        "bank",
        {
            "UPSTREAM": "postgresql://u:pw@h/db",
            "OTHER_URL": "http://reader:s3cr:et@example.com:8000/log",
            "PLAIN": "http://example.com/x",
            "HTTP_TOKEN": "t0k",
        },
    )
    text = repr(env)
    assert "postgresql://u:***@h/db" in text
    assert "http://reader:***@example.com:8000/log" in text
    assert "http://example.com/x" in text
    assert "pw@" not in text and "s3cr" not in text and "t0k" not in text


def test_application_env_repr_redacts_secrets_and_url_credentials():
    from esox.examples.dogschool import DogSchool

    school = DogSchool(
        env={
            "PERSISTENCE_MODULE": "esox.memory",
            "MY_API_KEY": "k3y",
            "MY_SECRET": "s3c",
            "REPLICA": "postgresql://u:pw@h/db",
        }
    )
    text = repr(school.env)
    assert "k3y" not in text and "s3c" not in text and ":pw@" not in text
    assert "postgresql://u:***@h/db" in text
