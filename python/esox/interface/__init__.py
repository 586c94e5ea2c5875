"""The interface layer: an application's notification log over HTTP, and its client.

Needs the ``http`` extra (``pip install 'esox[http]'``): the server uses
Starlette and uvicorn, the client httpx; both use orjson. Each is imported on
first use, so a reader process needs only httpx and orjson.

Wire format (JSON):

- ``GET /notifications/{first},{last}`` -> ``{"id", "next_id", "items"}``: a
  section of the application's notification log (``id`` and ``next_id`` as
  the local log gives them, null when absent).
- ``GET /notifications?start=&limit=&stop=&topics=a,b&inclusive_of_start=``
  -> ``{"items"}``: a selection (``limit`` required, 1 to the server's max).
- ``GET /health`` -> ``{"status": "ok", "max_notification_id": N}`` (0 when
  the log is empty; never needs a token).
- an item: ``{"id", "originator_id", "originator_id_type", "originator_version",
  "topic", "state"}``; ``originator_id`` is a string, a UUID in its canonical
  form when ``originator_id_type`` is ``"uuid"`` (``"str"`` otherwise), and
  ``state`` is the stored bytes in base64, still compressed and encrypted if
  the application does so.
- errors: a 4xx or 5xx status with ``{"error": "..."}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from esox.interface.jsonlog import (
    NotificationLogInterface,
    NotificationLogJSONClient,
    NotificationLogJSONService,
)

if TYPE_CHECKING:
    from esox.interface.client import (
        RemoteLogError,
        RemoteLogRequestError,
        RemoteLogUnavailableError,
        RemoteNotificationLog,
    )
    from esox.interface.server import create_app
    from esox.interface.serving import ServerThread, load_application

__all__ = [
    "NotificationLogInterface",
    "NotificationLogJSONClient",
    "NotificationLogJSONService",
    "RemoteLogError",
    "RemoteLogRequestError",
    "RemoteLogUnavailableError",
    "RemoteNotificationLog",
    "ServerThread",
    "create_app",
    "load_application",
]

_CLIENT = {
    "RemoteLogError",
    "RemoteLogRequestError",
    "RemoteLogUnavailableError",
    "RemoteNotificationLog",
}
_SERVER = {"create_app"}
_SERVING = {"ServerThread", "load_application"}


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the client doesn't need Starlette and uvicorn.
    if name in _CLIENT:
        from esox.interface import client

        return getattr(client, name)
    if name in _SERVER:
        from esox.interface import server

        return getattr(server, name)
    if name in _SERVING:
        from esox.interface import serving

        return getattr(serving, name)
    msg = f"module 'esox.interface' has no attribute {name!r}"
    raise AttributeError(msg)
