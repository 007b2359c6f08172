"""`python -m pipeline serve [--host 127.0.0.1] [--port P] [--api-key K] [--tiny]`: the local backend."""

from __future__ import annotations

import secrets
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
    import uvicorn

    from pipeline.local.app import BackendConfig, create_app
    from pipeline.local.runtime import default_root, tiny_from_env

    key = args.api_key or config.LOCAL_API_KEY.get() or secrets.token_urlsafe(24)
    backend = BackendConfig(root=default_root(), api_key=key, tiny=args.tiny or tiny_from_env())
    app = create_app(backend)
    shown = "(the one you passed)" if args.api_key or config.LOCAL_API_KEY.is_set() else key
    progress(f"Local backend on http://{args.host}:{args.port}/v1  key: {shown}  workspace: {backend.root}")
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        app.state.backend.close()
    return 0
