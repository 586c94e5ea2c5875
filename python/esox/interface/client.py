"""The notification log of an application served over HTTP, read from anywhere.

``RemoteNotificationLog(url)`` is a NotificationLog: a NotificationLogReader
(or a follower) reads it exactly as it reads a local log.
"""

from __future__ import annotations

import random
import time
from binascii import Error as BinasciiError
from collections.abc import Sequence
from typing import Any

try:
    import httpx
    import orjson
except ImportError as e:  # pragma: no cover - depends on the installed extras
    msg = (
        f"esox.interface.client needs the 'http' extra: pip install 'esox[http]' ({e})"
    )
    raise ImportError(msg) from e

from esox.application import NotificationLog, Section
from esox.application.notificationlog import parse_section_id
from esox.interface.jsonlog import notifications_from_items
from esox.persistence import Notification, OperationalError, PersistenceError
from esox.utils import Closing

__all__ = [
    "MAX_RESPONSE_BYTES",
    "RemoteLogError",
    "RemoteLogRequestError",
    "RemoteLogUnavailableError",
    "RemoteNotificationLog",
]

# Worth another try: the server or the network may get better.
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_RETRY_ERRORS = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)
_MAX_DELAY = 10.0
#: The largest response body a RemoteNotificationLog reads, unless told otherwise.
MAX_RESPONSE_BYTES = 256 * 1024 * 1024


class RemoteLogError(PersistenceError):
    """A request to a remote notification log failed.

    ``status_code`` is the HTTP status (None when no response came back) and
    ``message`` the server's ``error``, or what went wrong.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class RemoteLogRequestError(RemoteLogError, ValueError):
    """The server refused the request (4xx): bad parameters, token, or path.

    Retrying won't help; a ValueError, as the local log raises for bad arguments.
    """


class RemoteLogUnavailableError(RemoteLogError, OperationalError):
    """The server could not be reached, or kept failing (5xx, 429), after retries."""


class RemoteNotificationLog(Closing, NotificationLog):
    """A NotificationLog read over HTTP from ``esox serve`` (or ``create_app``).

    One keep-alive connection pool for all requests (safe to share between
    threads); each request times out after ``timeout`` seconds and is retried
    up to ``retries`` times on connection errors, timeouts, 5xx and 429, after
    ``backoff`` seconds, doubling each time (or as ``Retry-After`` says), then
    raises RemoteLogUnavailableError. Other 4xx raise RemoteLogRequestError at
    once. ``token`` is sent as ``Authorization: Bearer <token>``; a user and
    password in ``base_url`` as HTTP Basic authentication (never shown). A
    response body over ``max_response_bytes`` (decompressed) is not read
    further: RemoteLogError.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.1,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        if max_response_bytes < 1:
            msg = f"max_response_bytes must be at least 1, got {max_response_bytes}"
            raise ValueError(msg)
        self.max_response_bytes = max_response_bytes
        if retries < 0:
            msg = f"retries must not be negative, got {retries}"
            raise ValueError(msg)
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token.strip()}"
        # Credentials in the URL go into an auth header, never into a URL that
        # an error message, a log line (httpx logs each request) or repr shows.
        url = httpx.URL(base_url.rstrip("/"))
        auth = None
        if url.userinfo:
            auth = httpx.BasicAuth(url.username, url.password)
            url = url.copy_with(username=None, password=None)
        self.base_url = str(url).rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self._client = httpx.Client(
            base_url=self.base_url + "/", headers=headers, timeout=timeout, auth=auth
        )

    def __getitem__(self, section_id: str) -> Section:
        first, last = parse_section_id(section_id)
        body = self._get(f"notifications/{first},{last}")
        try:
            return Section(
                id=body["id"],
                items=notifications_from_items(body["items"]),
                next_id=body["next_id"],
            )
        except (KeyError, TypeError, ValueError, AttributeError, BinasciiError) as e:
            raise self._malformed(e) from e

    def select(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        if limit == 0:
            return []  # as the local log does; the server wants at least 1
        if any("," in topic for topic in topics):
            msg = f"Topics can't contain commas over HTTP: {list(topics)!r}"
            raise ValueError(msg)
        params: dict[str, str | int] = {"limit": limit}
        if start is not None:
            params["start"] = start
        if stop is not None:
            params["stop"] = stop
        if topics:
            params["topics"] = ",".join(topics)
        if not inclusive_of_start:
            params["inclusive_of_start"] = "false"
        body = self._get("notifications", params)
        try:
            return notifications_from_items(body["items"])
        except (KeyError, TypeError, ValueError, AttributeError, BinasciiError) as e:
            raise self._malformed(e) from e

    def health(self) -> dict[str, Any]:
        """The server's ``/health``: ``{"status": "ok", "max_notification_id": N}``."""
        body: dict[str, Any] = self._get("health")
        return body

    def _get(self, path: str, params: dict[str, str | int] | None = None) -> Any:
        """GET ``path`` and decode its JSON, retrying what may succeed later."""
        url = f"{self.base_url}/{path}"
        if self._client.is_closed:
            msg = f"Can't GET {url}: the RemoteNotificationLog is closed"
            raise RemoteLogError(msg)
        for attempt in range(self.retries + 1):
            retry_after: float | None = None
            try:
                response, content = self._fetch(url, path, params)
            except _RETRY_ERRORS as e:
                if attempt == self.retries:
                    msg = f"GET {url} failed after {attempt + 1} attempts: {e!r}"
                    raise RemoteLogUnavailableError(msg) from e
            except httpx.HTTPError as e:
                msg = f"GET {url} failed: {e!r}"
                raise RemoteLogError(msg) from e
            else:
                if response.status_code == 200:
                    try:
                        return orjson.loads(content)
                    except orjson.JSONDecodeError as e:
                        raise self._malformed(e) from e
                error = self._error_message(response, content)
                status = response.status_code
                if status not in _RETRY_STATUS:
                    msg = f"GET {url} returned {status}: {error}"
                    error_cls = (
                        RemoteLogRequestError if 400 <= status < 500 else RemoteLogError
                    )
                    raise error_cls(msg, status_code=status)
                if attempt == self.retries:
                    msg = (
                        f"GET {url} returned {status} after {attempt + 1} attempts: "
                        f"{error}"
                    )
                    raise RemoteLogUnavailableError(msg, status_code=status)
                retry_after = _retry_after(response)
            time.sleep(self._delay(attempt, retry_after))
        raise AssertionError("unreachable")  # pragma: no cover

    def _fetch(
        self, url: str, path: str, params: dict[str, str | int] | None
    ) -> tuple[httpx.Response, bytes]:
        """The response and its body, read up to ``max_response_bytes``."""
        request = self._client.build_request("GET", path, params=params)
        response = self._client.send(request, stream=True)
        try:
            limit = self.max_response_bytes
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > limit:
                raise self._too_large(url, int(length))
            chunks = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise self._too_large(url, size)
                chunks.append(chunk)
        finally:
            response.close()
        return response, b"".join(chunks)

    def _too_large(self, url: str, size: int) -> RemoteLogError:
        msg = (
            f"GET {url}: the response is larger than max_response_bytes "
            f"({size} > {self.max_response_bytes} bytes); raise it if the events "
            "are this large"
        )
        return RemoteLogError(msg)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, _MAX_DELAY)
        delay = min(self.backoff * 2**attempt, _MAX_DELAY)
        return float(delay * random.uniform(0.5, 1.0))  # jitter spreads out retries

    @staticmethod
    def _error_message(response: httpx.Response, content: bytes) -> str:
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return str(body["error"])
        text = content[:200].decode("utf-8", errors="replace").strip()
        return text or response.reason_phrase

    def _malformed(self, error: Exception) -> RemoteLogError:
        msg = (
            f"Malformed response from {self.base_url} (is it an esox notification "
            f"log?): {error!r}"
        )
        return RemoteLogError(msg)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After: <seconds>`` header (HTTP dates are ignored)."""
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
