"""`python -m pipeline serve [--host 127.0.0.1] [--port P] [--api-key K] [--tiny]`: the local backend."""

from __future__ import annotations

import secrets
import signal
import threading
from typing import Any

from pipeline import config
from pipeline.commands import progress


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="Run the embedded OpenAI-compatible backend (SmolLM2, LoRA fine-tuning)")
    parser.add_argument("--host", default="127.0.0.1", help="Address to bind (default loopback only)")
    parser.add_argument("--port", type=int, default=8400, help="Port (default 8400; 0 picks a free one)")
    parser.add_argument("--api-key", help="Key clients must send (default: $DISTILL_LOCAL_API_KEY, else random, printed)")
    parser.add_argument("--tiny", action="store_true", help="Serve a tiny random model of the same family (tests)")
    parser.set_defaults(run=run)


def run(args: Any) -> int:
    from pipeline.local.runtime import default_root, start_server, tiny_from_env

    key = args.api_key or config.LOCAL_API_KEY.get() or secrets.token_urlsafe(24)
    try:
        handle = start_server(args.host, args.port, key, root=default_root(), tiny=args.tiny or tiny_from_env())
    except OSError as exc:
        progress(f"Cannot listen on {args.host}:{args.port}: {exc.strerror or exc}. Pick another --port (0: any free one).")
        return 2
    backend = handle.app.state.backend
    shown = "(the one you passed)" if args.api_key or config.LOCAL_API_KEY.is_set() else key
    progress(f"Local backend on {handle.base_url}  key: {shown}  workspace: {backend.config.root}")
    if backend.runner is None:
        progress(f"Fine-tuning jobs of this workspace run in another process (pid {backend.lease.holder_pid() or '?'}); "
                 "this server takes them over when that process stops.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
    return 0
