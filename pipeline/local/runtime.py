"""Starting the local backend: in this process (a uvicorn daemon thread) or as a subprocess.

`ensure_local_backend()` is what the app and the CLI call when no OpenAI key is configured: one
server per process (a server, not visitor state), on a free loopback port, with a random key. The
model loads in the background, so this returns in well under a second once imports are done.

Environment: DISTILL_LOCAL_TINY=1 serves the tiny random test model; DISTILL_HOME sets the workspace.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import config, workspace
from pipeline.local import lease


@dataclass
class LocalBackendHandle:
    base_url: str
    api_key: str = field(repr=False)
    _stop: Any = field(default=None, repr=False)
    #: The FastAPI app when the server runs in this process (tests reach its state), else None.
    app: Any = field(default=None, repr=False)
    #: The server process when it is a subprocess of this one (spawn_server), else None.
    process: subprocess.Popen | None = field(default=None, repr=False)

    def client(self, **opts: Any) -> Any:
        import openai

        return openai.OpenAI(base_url=self.base_url, api_key=self.api_key, **opts)

    def async_client(self, **opts: Any) -> Any:
        import openai

        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, **opts)

    def wait_ready(self, timeout: float = 300) -> None:
        """Block until the model is loaded (the server answers before that; chat waits for it).

        Fails at once when the load failed or the server's process exited. In this process it asks the
        engine itself; elsewhere it polls /health, where a late or dropped answer is asked again until
        `timeout` (it had a 5 s request timeout: the likely cause of 22 tests erroring at setup once under
        load)."""
        if self.app is not None:
            self.app.state.backend.engine.wait_ready(timeout)  # RuntimeError with the cause if the load failed
            return
        import httpx

        health = self.base_url.removesuffix("/v1") + "/health"
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"The local backend exited with code {self.process.returncode}.")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("The local backend's model did not load in time.")
            try:
                if httpx.get(health, timeout=min(left, 30)).json().get("model_ready"):
                    return
            except (httpx.HTTPError, ValueError):
                pass  # not answering yet, or too slowly this time: ask again until the deadline
            time.sleep(0.1)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None


_lock = threading.Lock()
_handle: LocalBackendHandle | None = None
#: How long a server may take to start listening. Generous, because a loaded machine starves threads for
#: seconds (on the shared 2 cores at load 8 a whole start_server took 32 s, a /health answer 3.3 s); a
#: server that dies is seen at once whatever this says, so only one that hangs alive waits it out.
START_TIMEOUT_S = 300


def wait_started(server: Any, thread: threading.Thread, what: str) -> None:
    """Wait until the uvicorn `server` running in `thread` listens; RuntimeError if the thread ends
    first (its exception was printed by the thread) or after START_TIMEOUT_S."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"{what} stopped before it started listening (its error is in the log).")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start listening in {START_TIMEOUT_S} s.")
        time.sleep(0.02)


def tiny_from_env() -> bool:
    return config.LOCAL_TINY.get()


def default_root() -> Path:
    return workspace.subdir("local-backend")


def tcp_listener(host: str, port: int) -> socket.socket:
    """A bound TCP socket to hand to uvicorn (`sockets=[...]`).

    The protocol is named explicitly: asyncio turns Nagle's algorithm off only on sockets whose
    `proto` is TCP, and `socket.socket()` leaves it 0. Without this every response on a kept-alive
    connection waited ~40 ms for the client's delayed ACK (measured: 42 ms vs 0.5 ms per request).
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def start_server(host: str = "127.0.0.1", port: int = 0, api_key: str | None = None, *,
                 root: Path | None = None, tiny: bool | None = None,
                 max_body_bytes: int | None = None) -> LocalBackendHandle:
    """A server in a daemon thread of this process; returns once it accepts connections."""
    import uvicorn

    from pipeline.local.app import BackendConfig, create_app

    key = api_key or secrets.token_urlsafe(24)
    config = BackendConfig(root=root or default_root(), api_key=key, tiny=tiny_from_env() if tiny is None else tiny)
    if max_body_bytes:
        config.max_body_bytes = max_body_bytes
    app = create_app(config)
    sock = tcp_listener(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="local-backend", daemon=True)
    thread.start()
    wait_started(server, thread, "The local backend")
    bound = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    # Other processes reach a server bound to every address through loopback.
    local_host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, url_host)
    app.state.backend.advertise(f"http://{local_host}:{bound}/v1")

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=5)
        app.state.backend.close()
        sock.close()

    return LocalBackendHandle(f"http://{url_host}:{bound}/v1", key, stop, app)


def ensure_local_backend() -> LocalBackendHandle:
    """The backend serving this process's workspace (idempotent, thread-safe): the one another process
    (the app, `serve`, another command) advertises for it and that answers with its key, else one
    started here. So a command run next to the app uses the app's backend and its one job runner."""
    global _handle
    with _lock:
        if _handle is not None and (_handle.app is not None or lease.answers(_handle.base_url, _handle.api_key)):
            return _handle
        root = default_root()
        tiny = tiny_from_env()
        with lease.start_lock(root):
            record = lease.read_record(root)
            if record and record.get("tiny", tiny) == tiny and lease.answers(record["url"], record["key"]):
                _handle = LocalBackendHandle(record["url"], record["key"])
            else:
                _handle = start_server(root=root, tiny=tiny)
        return _handle


def spawn_server(*, home: Path | None = None, tiny: bool = True, api_key: str | None = None,
                 timeout: float = START_TIMEOUT_S) -> LocalBackendHandle:
    """`python -m pipeline serve` in a subprocess on a free port (for tests that want isolation)."""
    import httpx

    key = api_key or secrets.token_urlsafe(24)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The key goes by environment, not argv: a random key can start with "-" (argparse then took it for
    # an option and the server exited; 1 start in 64), and a command line is readable by every local user.
    env = {**os.environ, config.LOCAL_TINY.name: "1" if tiny else "0", config.LOCAL_API_KEY.name: key}
    if home is not None:
        env[config.HOME.name] = str(home)
    project = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = str(project) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--port", str(port)],
                            cwd=project, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"The local backend exited with code {proc.returncode}.")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("The local backend subprocess did not start in time.")
        time.sleep(0.2)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()

    return LocalBackendHandle(f"{base}/v1", key, stop, process=proc)
