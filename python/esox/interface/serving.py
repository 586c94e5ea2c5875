"""Running the notification log's ASGI app: finding the application that
``esox serve`` serves, and a server on a background thread for tests and docs."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, Self

try:
    import uvicorn
    from starlette.types import ASGIApp
except ImportError as e:  # pragma: no cover - depends on the installed extras
    msg = (
        f"esox.interface.serving needs the 'http' extra: pip install 'esox[http]' ({e})"
    )
    raise ImportError(msg) from e

from esox.application import Application
from esox.utils import Stopping, TopicError, resolve_topic

__all__ = ["ServerThread", "load_application"]


def load_application(spec: str) -> Application[Any]:
    """The application that ``"module:attribute"`` names.

    The attribute is an Application, or a callable (such as an Application
    class) that returns one when called without arguments. The spec is a
    topic, resolved as every other topic is (``esox.utils.resolve_topic``).
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        msg = f"Invalid application {spec!r}: expected 'module:attribute'"
        raise ValueError(msg)
    if "" not in sys.path and os.getcwd() not in sys.path:
        # As uvicorn does: 'myapp:make' finds myapp.py in the current directory.
        sys.path.insert(0, os.getcwd())
    try:
        obj = resolve_topic(spec)
    except TopicError as e:
        raise ValueError(f"Invalid application {spec!r}: {e}") from e
    expected = "expected an esox Application or a callable returning one"
    if isinstance(obj, type) and not issubclass(obj, Application):
        msg = f"Invalid application {spec!r}: {expected}, got class {obj.__name__}"
        raise ValueError(msg)
    if not isinstance(obj, Application) and callable(obj):
        obj = obj()
    if not isinstance(obj, Application):
        msg = f"Invalid application {spec!r}: {expected}, got {type(obj).__name__}"
        raise ValueError(msg)
    return obj


class ServerThread(Stopping):
    """A uvicorn server on a background thread, on a free loopback port by default.

    For tests, docs and notebooks: ``with ServerThread(create_app(app)) as s:``
    then read ``s.url``. In production run ``esox serve`` (or uvicorn) instead.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="esox-http-server", daemon=True
        )
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        """The server's base URL, e.g. ``http://127.0.0.1:54321``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> Self:
        """Start serving; return once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                msg = f"HTTP server on {self.host}:{self.port} failed to start"
                raise RuntimeError(msg)
            if time.monotonic() > deadline:
                self.stop()
                msg = f"HTTP server on {self.host}:{self.port} did not start in time"
                raise TimeoutError(msg)
            time.sleep(0.01)
        sockets: Sequence[socket.socket] = self._server.servers[0].sockets
        self.port = sockets[0].getsockname()[1]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (closing open connections) and wait for the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()
