"""Servers the tests start come up on a loaded machine, and say so at once when they died.

Once, with the shared 2 cores loaded, 22 tests errored at setup: the session's tiny backend asked its
/health with a 5 s request timeout while the model loaded (a start measured 32 s at load 8, its slowest
/health answer 3.3 s), and the fakes gave uvicorn 10 s to start. Waits now last until the server is
ready, bounded by a deadline meant for a hung server; a server that died ends them at once.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import subprocess
import sys
import threading

import httpx
import pytest

from pipeline.local import runtime, weights
from tests.browser_support import free_port
from tests.fakes.serving import serve_in_thread


def _lifespan_app(on_startup):
    """A bare ASGI app whose startup runs `on_startup` (uvicorn says it started only after it)."""
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    try:
                        await on_startup()
                    except Exception as exc:  # noqa: BLE001 - reported to uvicorn as the protocol says
                        await send({"type": "lifespan.startup.failed", "message": str(exc)})
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"up"})
    return app


def test_a_fake_that_starts_slower_than_ten_seconds_is_waited_for():
    """The old fixed 10 s start deadline; a loaded machine can take longer (this one sleeps 11 s)."""
    with serve_in_thread(_lifespan_app(lambda: asyncio.sleep(11)), name="slow fake") as served:
        assert httpx.get(served.url, timeout=30).text == "up"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # uvicorn's sys.exit in its thread
def test_a_fake_that_dies_while_starting_fails_at_once_saying_so():
    async def boom():
        raise OSError("port trouble")

    with pytest.raises(RuntimeError, match="slow fake stopped before it started listening"):
        serve_in_thread(_lifespan_app(boom), name="slow fake")


class _SlowHealth(http.server.BaseHTTPRequestHandler):
    """/health answers after 6 s the first time (a starved server), then at once; the model is ready."""

    asked = 0
    lock = threading.Lock()

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        with self.lock:
            type(self).asked += 1
            first = self.asked == 1
        if first:
            threading.Event().wait(6)  # longer than the 5 s request timeout wait_ready had
        body = json.dumps({"status": "ok", "model_ready": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_wait_ready_waits_out_a_slow_health_answer():
    with serve_in_thread(_SlowHealth, name="slow health") as served:
        runtime.LocalBackendHandle(f"{served.url}/v1", "key").wait_ready(timeout=120)
    assert _SlowHealth.asked >= 1


def test_wait_ready_fails_at_once_when_the_server_process_exited():
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    handle = runtime.LocalBackendHandle(f"http://127.0.0.1:{free_port()}/v1", "key", process=proc)
    with pytest.raises(RuntimeError, match="exited with code 3"):
        handle.wait_ready(timeout=120)


def test_wait_ready_in_process_fails_at_once_with_the_load_error(tmp_path, monkeypatch):
    """Before, /health only said "not ready" and the fixture waited its 600 s out for a TimeoutError."""
    def no_weights(tiny: bool):
        raise FileNotFoundError("no model files in this test's folder")

    monkeypatch.setattr(weights, "model_dir", no_weights)
    handle = runtime.start_server(root=tmp_path, tiny=True)
    try:
        with pytest.raises(RuntimeError, match="no model files in this test's folder"):
            handle.wait_ready(timeout=60)
    finally:
        handle.stop()
