"""Is the backend advertised for a workspace alive? A slow answer is not a dead server: taking it for
dead starts a second backend (a second model in memory) on the same workspace."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.local import lease


def serve(status: int, delay_s: float):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            time.sleep(delay_s)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


@pytest.fixture
def slow_server():
    server, url = serve(200, delay_s=1.5)
    yield url
    server.shutdown()


def test_a_server_slower_than_one_timeout_still_answers(slow_server):
    assert lease.answers(slow_server, "key", timeout=0.5, patience=30)


def test_a_server_that_keeps_silent_past_the_patience_does_not(slow_server):
    assert not lease.answers(slow_server, "key", timeout=0.2, patience=0.5)


def test_another_server_or_nothing_listening_is_not_ours(monkeypatch):
    server, url = serve(401, delay_s=0)
    try:
        assert not lease.answers(url, "key")
    finally:
        server.shutdown()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    calls: list = []
    import httpx

    real_get = httpx.get
    monkeypatch.setattr(httpx, "get", lambda *a, **k: calls.append(1) or real_get(*a, **k))
    assert not lease.answers(f"http://127.0.0.1:{free}/v1", "key", patience=60)
    assert len(calls) == 1  # refused: known at once, never asked again
