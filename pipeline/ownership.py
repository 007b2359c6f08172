"""Who may see and act on what, decided on the server.

- **Is this app shared?** `multi_user()`: on a Space, on a server bound beyond loopback, behind a
  share link, or with DISTILL_MULTI_USER=1, several people reach the same app and each sees only
  their own work. A localhost run is one person's tool: they see everything in the workspace,
  including what the command line made.
- **Who is this visitor?** An id the server mints and signs (`mint_visitor`), or, for a visitor
  signed in with Hugging Face, one derived from their account (`account_visitor`: the same in every
  browser). The browser only carries the signed token; `verify_visitor` turns it back into the id,
  and anything the server did not sign is no one.
- **Who made what?** `claim(visitor, kind, id)` records, in the workspace (never in the browser),
  which visitor created a job, file or model; `may_use` / `require` / `visible` answer from that
  record, never from lists the client sends.
- **Secrets the browser keeps** (keys it remembers) are sealed with a key only the server has
  (`seal` / `unseal`): the page can store them but not read them.

The signing key lives in the workspace (`.server_secret`, mode 0600) or in DISTILL_SECRET_KEY, so
ids and sealed values survive restarts. No gradio here: the app (components/visitor.py), the tabs
and the model pickers all use this module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

from pipeline import atomic, config, workspace
from pipeline.errors import InputError

KINDS = ("job", "file", "model", "batch")
_LOOPBACK = {"", "127.0.0.1", "localhost", "::1", "[::1]"}
_TRUE = {"1", "true", "yes", "on"}
_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_MAC_CHARS = 32


def multi_user() -> bool:
    """Can more than one person reach this app? Then every visitor sees only their own work."""
    if config.MULTI_USER.get():
        return True
    if os.environ.get("SPACE_ID"):
        return True
    if os.environ.get("GRADIO_SHARE", "").strip().lower() in _TRUE:
        return True
    host = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1").strip().lower()
    return host not in _LOOPBACK and not host.startswith("127.")


def isolated(shared_endpoint: bool) -> bool:
    """Must this visitor's view of an endpoint be limited to their own jobs and models? Only where
    several visitors share the app *and* the endpoint's account (a visitor's own key is theirs)."""
    return shared_endpoint and multi_user()


# --- the server's secret ---------------------------------------------------------------------------

def _secret() -> bytes:
    explicit = config.SECRET_KEY.get()
    if explicit:
        return explicit.encode("utf-8")
    path = workspace.home() / ".server_secret"
    if not path.exists():
        try:  # O_EXCL: two processes starting at once agree on one secret (the loser reads the winner's)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(secrets.token_urlsafe(32))
    value = path.read_text(encoding="utf-8").strip()
    if not value:  # the other process has not written it yet
        raise InputError("The workspace's secret is being created; try again in a moment.")
    return value.encode("utf-8")


def _mac(purpose: str, value: str) -> str:
    digest = hmac.new(_secret(), f"{purpose}\0{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")[:_MAC_CHARS]


# --- visitor ids -----------------------------------------------------------------------------------

def token_for(visitor_id: str) -> str:
    """The signed token of a visitor id (the same every time: the browser keeps it)."""
    return f"{visitor_id}.{_mac('visitor', visitor_id)}"


def mint_visitor() -> str:
    """A new anonymous visitor: a random id with the server's signature (what the browser keeps)."""
    return token_for(secrets.token_urlsafe(16))


def account_visitor(account: str) -> str:
    """The signed id of a Hugging Face account: the same in every browser the account signs in from,
    and not guessable from the account name (it is keyed with the server's secret)."""
    return token_for("hf-" + _mac("account", account.strip().lower())[:24])


def is_account(visitor_id: str | None) -> bool:
    return bool(visitor_id) and visitor_id.startswith("hf-")


def verify_visitor(token: object) -> str | None:
    """The visitor id inside a token this server signed; None for anything else (forged, changed,
    another server's, not a string)."""
    if not isinstance(token, str) or token.count(".") != 1:
        return None
    visitor_id, mac = token.split(".")
    if not _ID.match(visitor_id) or not hmac.compare_digest(mac, _mac("visitor", visitor_id)):
        return None
    return visitor_id


def visitor_tag(visitor_id: str) -> str:
    """A stable tag for records and job metadata that does not reveal the visitor's id."""
    return hashlib.sha256(visitor_id.encode("utf-8")).hexdigest()[:16]


# --- who made what ---------------------------------------------------------------------------------

def _path(kind: str) -> Path:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    return workspace.subdir("owners") / f"{kind}s.json"


def claim(visitor_id: str | None, kind: str, object_id: str | None) -> None:
    """Record that this visitor made this job / file / model. The first claim stands: nobody can
    take over an object someone else made by claiming it later."""
    if not visitor_id or not object_id:
        return
    path = _path(kind)
    with atomic.locked(path):
        owners = atomic.read_json(path, {})
        if object_id in owners:
            return
        owners[object_id] = visitor_tag(visitor_id)
        atomic.write_json(path, owners, indent=None)


def owner_tag(kind: str, object_id: str) -> str | None:
    """The tag of the visitor who made it, None if no visitor did (the CLI, the operator, unknown)."""
    return atomic.read_json(_path(kind), {}).get(object_id)


def owned(visitor_id: str | None, kind: str) -> set[str]:
    if not visitor_id:
        return set()
    tag = visitor_tag(visitor_id)
    return {k for k, v in atomic.read_json(_path(kind), {}).items() if v == tag}


def may_use(visitor_id: str | None, kind: str, object_id: str, *, shared: bool = True,
            tag: str | None = None) -> bool:
    """May this visitor see / act on it? Always in a single-user run or on an endpoint that is the
    visitor's own account; otherwise only if the record says they made it.

    `tag`: the visitor tag the provider holds for an object the record does not know (job metadata
    the server itself set when the job was created, before this record existed).
    """
    if not isolated(shared):
        return True
    if not visitor_id:
        return False
    recorded = owner_tag(kind, object_id)
    mine = visitor_tag(visitor_id)
    return recorded == mine if recorded is not None else (tag is not None and tag == mine)


def require(visitor_id: str | None, kind: str, object_id: str, *, shared: bool = True,
            tag: str | None = None) -> None:
    """Refuse, in the words used for an id that does not exist (so nothing is learnt about others')."""
    if not may_use(visitor_id, kind, object_id, shared=shared, tag=tag):
        raise InputError(f"No {kind} '{object_id}' of yours here. Pick one from your list.")


def visible(visitor_id: str | None, kind: str, object_ids: Iterable[str], *, shared: bool = True) -> list[str]:
    """The ids this visitor may see, in their order."""
    return [i for i in object_ids if may_use(visitor_id, kind, i, shared=shared)]


# --- values the browser keeps but must not read --------------------------------------------------

def _fernet():
    from cryptography.fernet import Fernet

    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(_secret() + b"\0seal").digest()))


def seal(text: str) -> str:
    """Encrypt with the server's key (authenticated): the browser stores it and cannot read it."""
    return _fernet().encrypt(text.encode("utf-8")).decode("ascii")


def unseal(token: object) -> str | None:
    """The text `seal` sealed; None for anything this server did not seal (or a changed secret)."""
    from cryptography.fernet import InvalidToken

    if not isinstance(token, str):
        return None
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError, UnicodeError):
        return None
