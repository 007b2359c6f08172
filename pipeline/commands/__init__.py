"""Command-line subcommands: one module each, with `add_parser(subparsers)` and `run(args) -> int`.

Contract (docs/ARCHITECTURE.md): `--json` prints exactly one JSON object on stdout, progress goes to stderr;
exit 0 success, 1 the work found problems or failed, 2 bad usage or unreadable input. A flag beats
the standard environment variable (OPENAI_API_KEY, OPENAI_BASE_URL, HF_TOKEN).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any
from urllib.parse import urlparse

from pipeline.providers import CompatibleKind, EndpointKind, LocalKind, OpenAIKind, openai_hosted


def emit_json(obj: Any) -> None:
    try:
        sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
    except UnicodeEncodeError:  # text stdout cannot carry (a lone surrogate, a non-UTF-8 terminal): escaped
        sys.stdout.write(json.dumps(obj, ensure_ascii=True, default=str) + "\n")
    sys.stdout.flush()


def progress(message: str) -> None:
    """Human progress: always stderr, so stdout stays one JSON object under --json."""
    print(message, file=sys.stderr, flush=True)


def add_endpoint_flags(parser: Any) -> None:
    parser.add_argument("--base-url", help="OpenAI-compatible base URL (default: $OPENAI_BASE_URL, "
                        "else OpenAI when a key is set, else the embedded local backend)")
    parser.add_argument("--api-key", help="API key (default: $OPENAI_API_KEY)")


def endpoint_name(args: Any) -> str:
    """How a batch record names the CLI's endpoint (its base URL, never the key)."""
    return args.base_url or os.environ.get("OPENAI_BASE_URL") or (
        "OpenAI" if args.api_key or os.environ.get("OPENAI_API_KEY") else "the local backend")


def cli_provider(args: Any) -> type[EndpointKind]:
    """The kind of endpoint the CLI talks to (pipeline.providers), by the same rule as openai_client:
    no key and no URL is the embedded backend; OpenAI's own URL is OpenAI; any other is compatible."""
    base_url = args.base_url or os.environ.get("OPENAI_BASE_URL")
    if not base_url and not (args.api_key or os.environ.get("OPENAI_API_KEY")):
        return LocalKind
    if openai_hosted(base_url):
        return OpenAIKind
    return LocalKind if _is_embedded_backend(base_url) else CompatibleKind


def _is_embedded_backend(base_url: str) -> bool:
    """A loopback URL served by this app's backend (one already running, or started by `serve`): its
    /health names the fields only it answers. Decided by asking the server, never by a model's name."""
    import httpx

    url = urlparse(base_url)
    if url.hostname not in ("127.0.0.1", "localhost", "::1"):
        return False
    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        health = httpx.get(f"{root}/health", timeout=2.0).json()
    except (httpx.HTTPError, ValueError):
        return False
    return isinstance(health, dict) and {"status", "model_ready", "tiny"} <= set(health)


def openai_client(args: Any, *, async_: bool = False, **opts: Any) -> Any:
    """A client for the CLI: flags beat variables; with neither key nor URL, the embedded backend."""
    import openai

    base_url = args.base_url or os.environ.get("OPENAI_BASE_URL")
    api_key = args.api_key or os.environ.get("OPENAI_API_KEY")
    if not base_url and not api_key:
        from pipeline.local.runtime import ensure_local_backend

        handle = ensure_local_backend()
        base_url, api_key = handle.base_url, handle.api_key
    klass = openai.AsyncOpenAI if async_ else openai.OpenAI
    # Some compatible servers take any key; the SDK insists on one.
    return klass(api_key=api_key or "none", base_url=base_url or None, **opts)
