"""Serve a test fake on a free loopback port in a background thread, and stop it again.

Every fake server (and any test that needs a throwaway one) starts through `serve_in_thread`, so the
port choice, the wait until it answers and the shutdown live in one place:

    with serve_in_thread(app) as served:          # an ASGI app (FastAPI) ...
        requests.get(f"{served.url}/v1/models")
    served = serve_in_thread(Handler)              # ... or an http.server request-handler class
    served.stop()
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import uvicorn

from pipeline.local.runtime import tcp_listener, wait_started


class Served:
    """A server running in a daemon thread on 127.0.0.1:`port`; `stop()` (or leaving `with`) ends it."""

    def __init__(self, port: int, stop: Callable[[], None]) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._stop = stop
        self._stopped = False

    def stop(self) -> None:
        if not self._stopped:  # a fake may be stopped by its test and again by a fixture
            self._stopped = True
            self._stop()

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_thread(app: Any, *, name: str = "fake server") -> Served:
    """Serve `app` — an ASGI app, or a `BaseHTTPRequestHandler` subclass — on a free loopback port.

    Returns once the server answers. A stdlib server's socket listens from the moment it is bound,
    so a request sent before its thread runs waits in the backlog; uvicorn binds in its own thread,
    so this waits for it to say it started.
    """
    if isinstance(app, type) and issubclass(app, BaseHTTPRequestHandler):
        return _serve_stdlib(app, name)
    return _serve_asgi(app, name)


def _serve_stdlib(handler: type[BaseHTTPRequestHandler], name: str) -> Served:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)  # daemon request threads: none outlives a test
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return Served(server.server_address[1], stop)


def _serve_asgi(app: Any, name: str) -> Served:
    # tcp_listener, as the app's own backend does: without TCP_NODELAY every kept-alive request
    # waits ~40 ms for the client's delayed ACK.
    sock = tcp_listener("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    wait_started(server, thread, name)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=5)

    return Served(sock.getsockname()[1], stop)


F = TypeVar("F", bound="ServedApp")


class ServedApp:
    """start()/stop()/`with` for a fake built on an ASGI app (FakeOpenAI, FakeBatches): the fake sets
    `self.app`, `self.port = 0` and `self._served = None` when it is made; `SERVER_NAME` names its thread."""

    SERVER_NAME = "fake server"
    app: Any
    port: int
    _served: Served | None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self: F) -> F:
        self._served = serve_in_thread(self.app, name=self.SERVER_NAME)
        self.port = self._served.port
        return self

    def stop(self) -> None:
        if self._served is not None:
            self._served.stop()

    def __enter__(self: F) -> F:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

