"""Whose token a Hub call uses, and which repo it writes to.

On a Space (SPACE_ID set) the owner's HF_TOKEN is a secret of the *owner*: a visitor must never push
or read private data with it. So there, only a token the visitor brought (Sign in with Hugging Face,
or one they typed) is used, and reads without one are anonymous (`token=False`, which stops
huggingface_hub from picking HF_TOKEN up on its own). Off Spaces the person at the keyboard owns the
machine, so a typed token, then HF_TOKEN, then a saved `hf auth login` apply.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.errors import MissingKeyError
from pipeline.hub.errors import NO_TOKEN, NO_TOKEN_ON_SPACE, HubAuthError, explain_hub, invalid_repo_id


def on_space() -> bool:
    return bool(os.environ.get("SPACE_ID"))


def oauth_available() -> bool:
    """Sign in with Hugging Face works: a Space with `hf_oauth: true` (which sets OAUTH_CLIENT_ID).

    gradio's LoginButton raises at startup without it, so the app must not show one then.
    """
    return on_space() and bool(os.environ.get("OAUTH_CLIENT_ID"))


def endpoint() -> str | None:
    """HF_ENDPOINT read at call time (huggingface_hub reads it once at import)."""
    return (os.environ.get("HF_ENDPOINT") or "").rstrip("/") or None


def resolve_token(explicit: str | None, *, required: bool, allow_env: bool | None = None) -> str | Literal[False]:
    """The token to use: the explicit one, else (off Spaces) HF_TOKEN or a saved login, else False.

    `required` raises MissingKeyError instead of returning False (pushing needs a token).
    """
    token = (explicit or "").strip()
    if token:
        return token
    if allow_env is None:
        allow_env = not on_space()
    if allow_env:
        from huggingface_hub import get_token

        found = get_token()  # HF_TOKEN, then the token file of `hf auth login`
        if found:
            return found
    if required:
        raise MissingKeyError(NO_TOKEN_ON_SPACE if on_space() else NO_TOKEN)
    return False


@dataclass(frozen=True)
class Identity:
    name: str
    orgs: tuple[str, ...]
    can_write: bool


def whoami(api: Any, token: str) -> Identity:
    """Who the token belongs to (one /api/whoami-v2 call)."""
    try:
        info = api.whoami(token=token)
    except Exception as exc:
        raise explain_hub(exc, "your account", "checking the token") from exc
    access = (info.get("auth") or {}).get("accessToken") or {}
    # Fine-grained and OAuth tokens carry scopes instead of a role; let the Hub decide for those.
    can_write = access.get("role", "write") != "read"
    orgs = tuple(o.get("name", "") for o in info.get("orgs") or [] if isinstance(o, dict))
    return Identity(name=str(info.get("name", "")), orgs=orgs, can_write=can_write)


def check_repo_id(repo_id: str) -> str:
    """The repo id stripped and checked locally (no request), or InputError."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    repo_id = (repo_id or "").strip()
    if repo_id.startswith(("https://huggingface.co/datasets/", "hf://datasets/")):
        repo_id = repo_id.split("datasets/", 1)[1]
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise invalid_repo_id(repo_id) from None
    if not repo_id or repo_id.count("/") > 1:
        raise invalid_repo_id(repo_id)
    return repo_id


def target_repo(repo_id: str, me: Identity) -> str:
    """NAMESPACE/NAME to push to: a bare NAME goes to the token's own namespace.

    A namespace that is neither the user nor one of their organizations is refused before any upload,
    with a message naming the account the token belongs to.
    """
    repo_id = check_repo_id(repo_id)
    if "/" not in repo_id:
        return f"{me.name}/{repo_id}"
    namespace = repo_id.split("/", 1)[0]
    if namespace != me.name and namespace not in me.orgs:
        raise HubAuthError(f"{namespace} is not your account: your token belongs to {me.name}"
                           + (f" (organizations: {', '.join(me.orgs)})" if me.orgs else "")
                           + f". Push to {me.name}/{repo_id.split('/', 1)[1]} or to one of your organizations.")
    if not me.can_write:
        raise HubAuthError("This token can only read. Create a token with write access at "
                           "https://huggingface.co/settings/tokens, or sign in with Hugging Face again.")
    return repo_id
