"""The notification log served over HTTP: an ASGI app for any esox application.

``create_app(application)`` returns a Starlette app, to run with uvicorn (``esox
serve``) or to mount in a Starlette/FastAPI app. Wire format: see
``esox.interface``.
"""

from __future__ import annotations

import hmac
import logging
import math
import os
import re
import threading
import time
from binascii import b2a_base64
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

try:
    import anyio
    import orjson
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
    from starlette.types import Receive, Scope, Send
except ImportError as e:  # pragma: no cover - depends on the installed extras
    msg = (
        f"esox.interface.server needs the 'http' extra: pip install 'esox[http]' ({e})"
    )
    raise ImportError(msg) from e

from esox.application import Application, Section
from esox.application.notificationlog import MAX_ID
from esox.interface.serving import ServerThread, load_application
from esox.persistence import Notification
from esox.utils import Environment

# ServerThread and load_application live in esox.interface.serving; they are
# importable from here too, where they were first.
__all__ = [
    "ALLOW_ANONYMOUS_ENV",
    "MAX_CONCURRENT",
    "MAX_LIMIT",
    "MAX_RESPONSE_BYTES",
    "TOKEN_ENV",
    "WRITE_TIMEOUT",
    "ServerThread",
    "create_app",
    "load_application",
]

logger = logging.getLogger(__name__)

#: The environment variable that holds the bearer token, when one is required.
TOKEN_ENV = "ESOX_HTTP_TOKEN"
#: Set to a true value to serve without a token when ``ESOX_HTTP_TOKEN`` is empty.
ALLOW_ANONYMOUS_ENV = "ESOX_HTTP_ALLOW_ANONYMOUS"
RATE_LIMIT_ENV = "ESOX_HTTP_RATE_LIMIT"
MAX_QUERY_LENGTH = 4096
"""Longest query string accepted (414 beyond): the API needs far less."""
MAX_BODY_LENGTH = 0
"""The API is GET-only: a request with a body is refused (413)."""


class _RateLimiter:
    """A token bucket per client address: ``rate`` requests a second, with
    bursts of up to twice that."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(1.0, 2 * rate)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait_time(self, client: str) -> float:
        """0 if the request may go ahead now, else seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                if len(self._buckets) > 10_000:  # forget idle clients
                    self._buckets = {client: self._buckets[client]}
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate


#: The largest ``limit`` a selection may ask for, unless ``create_app`` says otherwise.
MAX_LIMIT = 10_000
#: Selections and sections built or being sent at once; more wait, then get 503.
MAX_CONCURRENT = 4
#: A selection stops adding notifications once their states exceed this many
#: bytes (it always holds at least one): readers ask again from where it ended.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: Seconds a client may leave its response unread before it is disconnected.
WRITE_TIMEOUT = 30.0
# How long a request waits for a free slot before it gets 503 (Retry-After: 1).
_QUEUE_TIMEOUT = 1.0
# Responses go out in pieces of this size, each once the client has read the
# previous ones: a client that stops reading holds one piece, not the response.
_CHUNK = 256 * 1024
# Rows selected at a time for one selection: its states are counted against
# MAX_RESPONSE_BYTES between selects.
_SELECT_CHUNK = 1_000

# Notification ids are signed 64-bit integers in every recorder: anything beyond
# is a bad request, not an overflow deep inside the database driver. -2**63 is
# out too, as in section ids, so that an id can always be negated or stepped.
_INT64_MIN, _INT64_MAX = -MAX_ID, MAX_ID
_INTEGER = re.compile(r"-?[0-9]+")
_SELECT_PARAMS = frozenset({"start", "limit", "stop", "topics", "inclusive_of_start"})
_TRUE, _FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})


class _BadRequest(Exception):
    """A request the server refuses; becomes a 4xx response with ``{"error": ...}``."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def _json(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


def _append_items(
    items: list[dict[str, Any]], notifications: Sequence[Notification], budget: int
) -> int:
    """Append wire items until their states exceed ``budget`` bytes (at least one
    item in all); return the budget left, negative once it ran out.

    One loop, no call per item: this is the server's hot path.
    """
    for n in notifications:
        state = n.state
        budget -= len(state)
        if budget < 0 and items:
            return budget
        # orjson writes a UUID in its canonical form; the type tag tells the
        # client which ids to turn back into UUIDs (a log may hold both kinds).
        originator_id = n.originator_id
        items.append(
            {
                "id": n.id,
                "originator_id": originator_id,
                "originator_id_type": "uuid"
                if isinstance(originator_id, UUID)
                else "str",
                "originator_version": n.originator_version,
                "topic": n.topic,
                "state": b2a_base64(state, newline=False).decode("ascii"),
            }
        )
    return budget


def _integer(text: str, name: str) -> int:
    if not _INTEGER.fullmatch(text):
        msg = f"Invalid {name} {text!r}: expected an integer"
        raise _BadRequest(msg)
    if len(text) > 20 or not _INT64_MIN <= int(text) <= _INT64_MAX:
        msg = f"Invalid {name} {text!r}: out of range (-{MAX_ID} to {MAX_ID})"
        raise _BadRequest(msg)
    return int(text)


def _section_id(text: str) -> tuple[int, int]:
    first, sep, last = text.partition(",")
    if not sep:
        msg = f"Invalid section id {text!r}: expected 'first,last' integers"
        raise _BadRequest(msg)
    if not (_INTEGER.fullmatch(first) and _INTEGER.fullmatch(last)):
        msg = f"Invalid section id {text!r}: expected 'first,last' integers"
        raise _BadRequest(msg)
    if max(len(first), len(last)) > 20 or not all(
        _INT64_MIN <= int(i) <= _INT64_MAX for i in (first, last)
    ):
        msg = f"Invalid section id {text!r}: ids must be from -{MAX_ID} to {MAX_ID}"
        raise _BadRequest(msg)
    return int(first), int(last)


class _NotificationLogService:
    """The endpoints, over one application's recorder."""

    def __init__(
        self,
        application: Application[Any],
        token: str | None,
        max_limit: int,
        rate_limit: float | None = None,
        *,
        max_concurrent: int = MAX_CONCURRENT,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        write_timeout: float = WRITE_TIMEOUT,
    ) -> None:
        self.slots = _Slots(max_concurrent)
        self.max_response_bytes = max_response_bytes
        self.write_timeout = write_timeout
        self.rate_limiter = _RateLimiter(rate_limit) if rate_limit else None
        self.recorder = application.recorder
        # Sections keep the application's own section size, so a remote reader
        # sees exactly the sections a local one does; selections may be larger
        # (up to max_limit) because over HTTP a batch costs a round trip.
        self.sections = application.notification_log
        self.max_limit = max_limit
        self.token = token.encode() if token else None

    def authorized(self, request: Request) -> bool:
        if self.token is None:
            return True
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        # Starlette decodes header values as latin-1: encode back to the raw bytes.
        given = credentials.strip().encode("latin-1", errors="replace")
        return scheme.lower() == "bearer" and hmac.compare_digest(given, self.token)

    def respond(
        self, handler: Callable[[Request], Any], request: Request
    ) -> tuple[int, bytes]:
        """Status and JSON body of ``handler``'s answer (in a worker thread)."""
        try:
            return 200, orjson.dumps(handler(request))
        except _BadRequest as e:
            return e.status_code, orjson.dumps({"error": e.message})
        except Exception:
            logger.exception("Error serving %s %s", request.method, request.url)
            return 500, orjson.dumps({"error": _INTERNAL_ERROR})

    def refuse(self, request: Request) -> Response | None:
        """A 4xx response for an oversized or too frequent request, else None."""
        if len(request.url.query) > MAX_QUERY_LENGTH:
            message = f"Query string longer than {MAX_QUERY_LENGTH} characters"
            return _json({"error": message}, 414)
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_BODY_LENGTH:
            return _json({"error": "Request bodies are not accepted"}, 413)
        if self.rate_limiter is not None:
            client = request.client.host if request.client else "unknown"
            wait = self.rate_limiter.wait_time(client)
            if wait > 0:
                retry_after = str(max(1, math.ceil(wait)))
                message = "Too many requests: slow down and retry later"
                return _json({"error": message}, 429, {"Retry-After": retry_after})
        return None

    def section(self, request: Request) -> dict[str, Any]:
        first, last = _section_id(request.path_params["section_id"])
        try:
            section: Section = self.sections[f"{first},{last}"]
        except ValueError as e:  # what the local log refuses, the client gets told
            raise _BadRequest(str(e)) from None
        items: list[dict[str, Any]] = []
        # Sections hold the application's section size, which bounds them.
        _append_items(items, section.items, _INT64_MAX)
        return {"id": section.id, "next_id": section.next_id, "items": items}

    def select(self, request: Request) -> dict[str, Any]:
        params: dict[str, str] = {}
        for name, value in request.query_params.multi_items():
            if name not in _SELECT_PARAMS:
                expected = ", ".join(sorted(_SELECT_PARAMS))
                msg = f"Unknown query parameter {name!r}: expected some of {expected}"
                raise _BadRequest(msg)
            if name in params:
                msg = f"Query parameter {name!r} given more than once"
                raise _BadRequest(msg)
            params[name] = value
        if not params.get("limit"):
            msg = f"Missing query parameter 'limit' (1 to {self.max_limit})"
            raise _BadRequest(msg)
        limit = _integer(params["limit"], "limit")
        if not 1 <= limit <= self.max_limit:
            msg = f"Invalid limit {limit}: must be from 1 to {self.max_limit}"
            raise _BadRequest(msg)
        start = _integer(params["start"], "start") if params.get("start") else None
        stop = _integer(params["stop"], "stop") if params.get("stop") else None
        topics = [t for t in params.get("topics", "").split(",") if t]
        inclusive = params.get("inclusive_of_start", "true").lower()
        if inclusive not in _TRUE | _FALSE:
            msg = (
                f"Invalid inclusive_of_start {params['inclusive_of_start']!r}: "
                "expected true or false"
            )
            raise _BadRequest(msg)
        return {"items": self.selection(start, limit, stop, topics, inclusive in _TRUE)}

    def selection(
        self,
        start: int | None,
        limit: int,
        stop: int | None,
        topics: Sequence[str],
        inclusive_of_start: bool,
    ) -> list[dict[str, Any]]:
        """Wire items of up to ``limit`` notifications, selected a chunk at a
        time, ending early once their states exceed ``max_response_bytes``."""
        items: list[dict[str, Any]] = []
        budget = self.max_response_bytes
        while True:
            chunk = min(limit - len(items), _SELECT_CHUNK)
            batch = self.recorder.select_notifications(
                start, chunk, stop, topics, inclusive_of_start=inclusive_of_start
            )
            budget = _append_items(items, batch, budget)
            if budget < 0 or len(batch) < chunk or len(items) >= limit:
                return items
            start, inclusive_of_start = batch[-1].id, False

    def health(self, request: Request) -> dict[str, Any]:
        return {
            "status": "ok",
            "max_notification_id": self.recorder.max_notification_id() or 0,
        }

    def http_error(self, request: Request, exc: Exception) -> Response:
        """Starlette's own 404 and 405, as JSON (and 401 first when a token is due)."""
        if not self.authorized(request):
            return _unauthorized()
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            message = (
                f"Not found: {request.url.path} (the paths are "
                "/notifications/{first},{last}, /notifications?limit=N and /health)"
            )
        elif exc.status_code == 405:
            message = (
                f"Method {request.method} not allowed on {request.url.path}: use GET"
            )
        else:
            message = str(exc.detail)
        return _json({"error": message}, exc.status_code, dict(exc.headers or {}))


class _Endpoint:
    """An ASGI endpoint: refusals and auth, then the handler in a worker thread
    and its JSON sent piece by piece, within one of a bounded number of slots."""

    def __init__(
        self,
        service: _NotificationLogService,
        handler: Callable[[Request], Any],
        *,
        public: bool = False,
        bounded: bool = True,
    ) -> None:
        self.service = service
        self.handler = handler
        self.public = public
        self.bounded = bounded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = self.service
        request = Request(scope, receive)
        refused = service.refuse(request)
        if refused is None and not self.public and not service.authorized(request):
            refused = _unauthorized()
        if refused is not None:
            await refused(scope, receive, send)
            return
        if not self.bounded:
            status, body = await anyio.to_thread.run_sync(
                service.respond, self.handler, request
            )
            await self._send(request, send, status, body)
            return
        if not await service.slots.acquire(_QUEUE_TIMEOUT):
            message = (
                f"Server busy: {service.slots.size} requests are being served; "
                "retry later"
            )
            await _json({"error": message}, 503, {"Retry-After": "1"})(
                scope, receive, send
            )
            return
        try:
            status, body = await anyio.to_thread.run_sync(
                service.respond, self.handler, request
            )
            await self._send(request, send, status, body)
        finally:
            service.slots.release()

    async def _send(
        self,
        request: Request,
        send: Send,
        status: int,
        body: bytes,
    ) -> None:
        """Send the response; give up on a client that reads none of it for
        ``write_timeout`` seconds (the server then closes its connection)."""
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
        ]
        timeout = self.service.write_timeout
        # Progress moves the deadline back, but at most once a second (or half
        # the timeout): moving it costs more than sending a piece.
        slack = min(1.0, timeout / 2)
        now = anyio.current_time
        try:
            with anyio.fail_after(timeout) as scope:
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": raw_headers,
                    }
                )
                for offset in range(0, len(body), _CHUNK):
                    if scope.deadline - now() < timeout - slack:
                        scope.deadline = now() + timeout
                    await send(
                        {
                            "type": "http.response.body",
                            # ASGI wants bytes; one piece is the body itself.
                            "body": body[offset : offset + _CHUNK],
                            "more_body": offset + _CHUNK < len(body),
                        }
                    )
                if not body:
                    await send({"type": "http.response.body", "body": b""})
        except TimeoutError:
            client = request.client.host if request.client else "unknown"
            logger.warning(
                "Client %s read none of its response to %s for %ss: disconnecting it",
                client,
                request.url.path,
                timeout,
            )


class _Slots:
    """At most ``size`` bounded requests at once; the others wait, a while."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._semaphore = threading.BoundedSemaphore(size)

    async def acquire(self, timeout: float) -> bool:
        """Take a slot, waiting up to ``timeout`` seconds; False if none came free."""
        # Polling, not an asyncio primitive: the app may serve several event loops.
        deadline = time.monotonic() + timeout
        delay = 0.001
        while not self._semaphore.acquire(blocking=False):
            if time.monotonic() >= deadline:
                return False
            await anyio.sleep(delay)
            delay = min(2 * delay, 0.05)
        return True

    def release(self) -> None:
        self._semaphore.release()


def _unauthorized() -> Response:
    message = "Missing or invalid bearer token (header 'Authorization: Bearer ...')"
    return _json(
        {"error": message},
        401,
        {"WWW-Authenticate": "Bearer"},
    )


_INTERNAL_ERROR = "Internal server error (details are in the server log)"


def _internal_error() -> Response:
    return _json({"error": _INTERNAL_ERROR}, 500)


def _server_error(request: Request, exc: Exception) -> Response:
    logger.error("Error serving %s %s", request.method, request.url, exc_info=exc)
    return _internal_error()


def create_app(
    application: Application[Any],
    *,
    token: str | None = None,
    allow_anonymous: bool | None = None,
    max_limit: int = MAX_LIMIT,
    rate_limit: float | None = None,
    max_concurrent: int = MAX_CONCURRENT,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
    write_timeout: float = WRITE_TIMEOUT,
) -> Starlette:
    """An ASGI app serving ``application``'s notification log as JSON.

    ``GET /notifications/{first},{last}`` (a section), ``GET /notifications?
    start=&limit=&stop=&topics=a,b&inclusive_of_start=`` (a selection, ``limit``
    at most ``max_limit``) and ``GET /health``.

    With a ``token`` (default: the ``ESOX_HTTP_TOKEN`` environment variable,
    surrounding whitespace ignored), every path but ``/health`` needs
    ``Authorization: Bearer <token>``. An empty token is refused (ValueError)
    unless ``allow_anonymous`` (default: ``ESOX_HTTP_ALLOW_ANONYMOUS``) says
    to serve without one; with no token at all, the log is served to anyone.

    Memory is bounded: at most ``max_concurrent`` selections and sections are
    built or sent at once (others wait a second, then get 503 with
    ``Retry-After``); a selection ends early once its states exceed
    ``max_response_bytes``; a client that reads nothing of its response for
    ``write_timeout`` seconds is disconnected. With a ``rate_limit`` (default:
    ``ESOX_HTTP_RATE_LIMIT``, requests per second per client address), faster
    clients get 429 with ``Retry-After``. Query strings over 4 KiB get 414 and
    request bodies 413.
    """
    token = _token(token, allow_anonymous)
    for name, setting in [
        ("max_limit", max_limit),
        ("max_concurrent", max_concurrent),
        ("max_response_bytes", max_response_bytes),
    ]:
        if setting < 1:
            msg = f"{name} must be at least 1, got {setting}"
            raise ValueError(msg)
    if not write_timeout > 0:
        msg = f"write_timeout must be positive, got {write_timeout}"
        raise ValueError(msg)
    process_env = Environment(env=dict(os.environ))
    if rate_limit is None and process_env.is_set(RATE_LIMIT_ENV):
        rate_limit = process_env.read_float(
            RATE_LIMIT_ENV, 0.0, positive=True, unit=" of requests per second"
        )
    if rate_limit is not None and not rate_limit > 0:
        msg = f"rate_limit must be positive, got {rate_limit}"
        raise ValueError(msg)
    service = _NotificationLogService(
        application,
        token,
        max_limit,
        rate_limit,
        max_concurrent=max_concurrent,
        max_response_bytes=max_response_bytes,
        write_timeout=write_timeout,
    )
    routes = [
        Route("/notifications", _Endpoint(service, service.select), methods=["GET"]),
        Route(
            "/notifications/{section_id}",
            _Endpoint(service, service.section),
            methods=["GET"],
        ),
        Route(
            "/health",
            _Endpoint(service, service.health, public=True, bounded=False),
            methods=["GET"],
        ),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: service.http_error,
            Exception: _server_error,
        },
    )


def _token(token: str | None, allow_anonymous: bool | None) -> str | None:
    """The bearer token to require, or None to serve anyone; never an empty one."""
    source = "token"
    if token is None:
        token = os.environ.get(TOKEN_ENV)
        source = TOKEN_ENV
        if token is None:
            return None
    token = token.strip()  # a token read from a file keeps its newline
    if token:
        return token
    if allow_anonymous is None:
        process_env = Environment(env=dict(os.environ))
        allow_anonymous = process_env.read_bool(ALLOW_ANONYMOUS_ENV, default=False)
    if allow_anonymous:
        return None
    msg = (
        f"The {source} is empty, which would let anyone read the log: set a "
        f"token, or set {ALLOW_ANONYMOUS_ENV}=y (esox serve --no-auth) to "
        "serve without one"
    )
    raise ValueError(msg)
