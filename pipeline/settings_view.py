"""Settings as people see them (status line, endpoints table, workspace usage) and as a browser keeps
them (gr.BrowserState payload). Nothing here shows a key: only where it comes from.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pipeline import ownership, workspace
from pipeline.endpoint_edit import save_endpoint, set_budgets, set_hf_token, set_key
from pipeline.endpoints import (
    ROLE_LABELS,
    ROLES,
    EndpointKind,
    RoleChoice,
    SessionSettings,
    find_key,
    fine_tuned_stands_in,
    has_openai_key,
    key_source,
    role,
)
from pipeline.errors import DistillError

log = logging.getLogger("distill.endpoints")
BROWSER_FORMAT = 1


def status_line(settings: SessionSettings) -> str:
    """One Markdown line: which backend plays each role, and what works without a key."""
    parts, problems, used = [], [], []
    endpoints = settings.endpoints()
    for name in ROLES:
        choice = role(settings, name)
        endpoint = endpoints.get(choice.endpoint)
        where = "local" if endpoint is None or endpoint.is_local else choice.endpoint
        if name == "fine_tuned" and fine_tuned_stands_in(settings):
            parts.append(f"**{ROLE_LABELS[name]}** none yet (the base stands in)")
            continue
        parts.append(f"**{ROLE_LABELS[name]}** {where} · `{choice.model}`")
        if endpoint is not None and not endpoint.is_local:
            used.append(endpoint)
        if endpoint is not None and endpoint.needs_key and not find_key(settings, endpoint):
            problems.append(f"'{choice.endpoint}' has no key")
    if problems:
        tail = "⚠ " + "; ".join(sorted(set(problems))) + " — add it in Settings."
    elif used:  # the header names what the roles use, not only OpenAI's built-in endpoint
        keys = {("OpenAI" if e.name == "openai" else f"'{e.name}'"): key_source(settings, e) for e in used}
        tail = "; ".join(f"{n} key: {src}" for n, src in keys.items()) + "."
    elif not has_openai_key(settings):
        tail = ("No OpenAI key: everything runs on the built-in local model (chat, generation, "
                "fine-tuning, evaluation); add a key in Settings for a GPT-4-class teacher.")
    else:
        tail = (f"OpenAI key: {key_source(settings, endpoints['openai'])}; every role runs on the built-in "
                "local model (choose OpenAI models in Settings > Roles).")
    return " | ".join(parts) + f"  \n{tail}"


def endpoint_rows(settings: SessionSettings) -> list[list[str]]:
    """Name, kind, base URL, key source, capabilities, models known: one row per endpoint."""
    rows = []
    for endpoint in settings.endpoints().values():
        kind = EndpointKind.registry.get(endpoint.kind)
        cached = settings.model_cache.get(endpoint.name)
        models = "" if cached is None else (f"{len(cached.models)}" + (" (last fetch failed)" if cached.error else ""))
        url = endpoint.base_url or ("api.openai.com" if endpoint.kind == "openai" else "loopback, started on use")
        rows.append([endpoint.name + (" (built-in)" if endpoint.builtin else ""),
                     kind.label if kind else endpoint.kind, url, key_source(settings, endpoint),
                     ", ".join(sorted(endpoint.capabilities)), models])
    return rows


ENDPOINT_COLUMNS = ["Endpoint", "Kind", "Base URL", "Key", "Capabilities", "Models"]


def workspace_summary(visitor_id: str | None) -> str:
    """Where runtime files live and how much disk they take (this visitor's and everyone's)."""
    root = workspace.home()
    total = workspace.disk_usage_bytes(root)
    mine = ""
    if visitor_id:
        try:
            mine = f" — yours: {_size(workspace.disk_usage_bytes(workspace.visitor_dir(visitor_id)))}"
        except DistillError:
            mine = ""
    return (f"Workspace: `{root}` (set `DISTILL_HOME` to move it). Used: {_size(total)}{mine}. "
            f"Free on that disk: {_size(workspace.free_bytes(root))}.")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def to_browser(settings: SessionSettings) -> dict[str, Any] | None:
    """What this visitor's browser keeps (gr.BrowserState), or None to keep nothing.

    Endpoints without their keys and headers unless the visitor ticked "remember keys": the server
    never stores any of it, the browser does. Keys and headers are sealed with the server's key
    (pipeline.ownership.seal): the browser keeps them but neither it nor anyone reading its storage
    can read them, and only this server can open them again.
    """
    if not settings.remember:
        return None
    with_keys = settings.remember_keys
    endpoints = [{"name": e.name, "kind": e.kind, "base_url": e.base_url or "", "key_env": e.key_env or "",
                  "api_version": e.api_version or "", "capabilities": sorted(e.capabilities)}
                 for e in settings.custom_endpoints.values()]
    data: dict[str, Any] = {
        "format": BROWSER_FORMAT, "remember_keys": with_keys, "endpoints": endpoints,
        "roles": {name: [c.endpoint, c.model] for name, c in settings.roles.items()},
        "budget_usd": settings.budget_usd, "confirm_above_usd": settings.confirm_above_usd,
    }
    if with_keys:
        headers = {e.name: "\n".join(f"{k}: {v}" for k, v in e.default_headers.items())
                   for e in settings.custom_endpoints.values()}
        data["sealed"] = ownership.seal(json.dumps({"keys": dict(settings.typed_keys), "headers": headers,
                                                    "hf_token": settings.hf_token or ""}))
    return data


def _unsealed(data: dict[str, Any]) -> dict[str, Any]:
    """The keys part of a browser copy; empty when this server did not seal it (a changed secret,
    an edited copy, or one from before keys were sealed: the visitor types their keys again)."""
    text = ownership.unseal(data.get("sealed"))
    try:
        secret = json.loads(text) if text else {}
    except ValueError:
        return {}
    return secret if isinstance(secret, dict) else {}


def from_browser(settings: SessionSettings, data: Any) -> tuple[SessionSettings, int]:
    """Settings restored from the browser's copy, checked like anything typed; (settings, skipped)."""
    if not isinstance(data, dict) or data.get("format") != BROWSER_FORMAT:
        return settings, 0
    new, skipped = settings.copy(), 0
    new.remember, new.remember_keys = True, bool(data.get("remember_keys"))
    secret = _unsealed(data)
    keys = secret.get("keys") if isinstance(secret.get("keys"), dict) else {}
    headers = secret.get("headers") if isinstance(secret.get("headers"), dict) else {}
    for item in data.get("endpoints") or []:
        try:
            fields = {k: str(item.get(k) or "") for k in ("name", "kind", "base_url", "key_env", "api_version")}
            fields["headers"] = str(headers.get(fields["name"]) or "")
            caps = [str(c) for c in item.get("capabilities") or []]
            new = save_endpoint(new, **fields, capabilities=caps, key=str(keys.get(fields["name"]) or ""))
        except (DistillError, AttributeError, TypeError):
            skipped += 1
    try:
        if isinstance(keys.get("openai"), str):
            new = set_key(new, "openai", keys["openai"])
        if isinstance(secret.get("hf_token"), str):
            new = set_hf_token(new, secret["hf_token"])
        new = set_budgets(new, data.get("budget_usd", new.budget_usd),
                          data.get("confirm_above_usd", new.confirm_above_usd))
    except (DistillError, TypeError, ValueError):
        skipped += 1
    endpoints = new.endpoints()
    roles = data.get("roles") if isinstance(data.get("roles"), dict) else {}
    for name, pair in roles.items():
        if name in ROLES and isinstance(pair, list) and len(pair) == 2 and pair[0] in endpoints \
                and isinstance(pair[1], str) and pair[1].strip():
            new.roles[name] = RoleChoice(pair[0], pair[1].strip())
        else:
            skipped += 1
    if skipped:
        log.info("skipped %d unusable remembered settings", skipped)
    return new, skipped
