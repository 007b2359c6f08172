"""Changing a visitor's settings: add, edit, rename and remove endpoints, type keys, set budgets.

Every function returns a *new* SessionSettings (gr.State notices the change that way) and checks what
it is given as if it came from a stranger: on a public Space it does.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

from pipeline.endpoints import _ENV_NAME, Endpoint, RoleChoice, SessionSettings
from pipeline.errors import InputError
from pipeline.providers import CAPABILITIES, DEFAULT_AZURE_API_VERSION, EndpointKind

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,39}$")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
MAX_CUSTOM_ENDPOINTS = 20


def parse_headers(text: str) -> dict[str, str]:
    """`Name: value` lines -> dict. The error names the line number, never its value."""
    headers: dict[str, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not _HEADER.match(name.strip()) or not value.strip():
            raise InputError(f"Header line {number} is not 'Name: value'. Write one header a line.")
        headers[name.strip()] = value.strip()
    return headers


def _check_url(url: str, kind: type[EndpointKind]) -> str | None:
    url = (url or "").strip().rstrip("/")
    if not url:
        if kind.needs_base_url:
            raise InputError(f"A {kind.label} endpoint needs a base URL, e.g. http://127.0.0.1:8000/v1.")
        return None
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InputError("The base URL must start with http:// or https:// and name a host.")
    if parsed.username or parsed.password:
        raise InputError("Put the key in the key box, not in the URL: URLs get shown and logged.")
    return url


def save_endpoint(settings: SessionSettings, *, name: str, kind: str, base_url: str = "",
                  key: str = "", key_env: str = "", api_version: str = "", headers: str = "",
                  capabilities: list[str] | None = None, original_name: str | None = None,
                  forget_secrets: bool = False) -> SessionSettings:
    """Add a custom endpoint, or edit (and maybe rename) `original_name`.

    An empty key or header box keeps what the endpoint had: the UI never shows secrets back, so an
    empty box means "unchanged". `forget_secrets` drops the typed key and the headers.
    """
    name = (name or "").strip()
    endpoints = settings.endpoints()
    if original_name and original_name in endpoints and endpoints[original_name].builtin:
        raise InputError(f"'{original_name}' is built in: only its key can be typed (use Save key).")
    if not _NAME.match(name):
        raise InputError("Name the endpoint with letters, digits, spaces, '.', '_' or '-' (40 at most).")
    if name in endpoints and endpoints[name].builtin:
        raise InputError(f"'{name}' is the name of a built-in endpoint; choose another.")
    if name in settings.custom_endpoints and name != original_name:
        raise InputError(f"There is already an endpoint named '{name}'.")
    if original_name not in settings.custom_endpoints and len(settings.custom_endpoints) >= MAX_CUSTOM_ENDPOINTS:
        raise InputError(f"At most {MAX_CUSTOM_ENDPOINTS} custom endpoints; remove one first.")
    klass = EndpointKind.registry.get(kind)
    if klass is None or not klass.user_addable:
        choices = ", ".join(k for k, c in EndpointKind.registry.items() if c.user_addable)
        raise InputError(f"Unknown endpoint kind '{kind}'; choose one of {choices}.")
    key_env = (key_env or "").strip()
    if key_env and not _ENV_NAME.match(key_env):
        raise InputError("The environment variable name may hold A-Z, 0-9 and '_' (e.g. MY_SERVER_KEY).")
    caps = frozenset(capabilities) if capabilities is not None else klass.default_capabilities
    if unknown := caps - set(CAPABILITIES):
        raise InputError(f"Unknown capabilities: {', '.join(sorted(unknown))}.")
    old = settings.custom_endpoints.get(original_name or "")
    new_headers = parse_headers(headers)
    if not new_headers and old and not forget_secrets:
        new_headers = dict(old.default_headers)
    endpoint = Endpoint(
        name=name, kind=kind, base_url=_check_url(base_url, klass), key_env=key_env or None,
        api_version=(api_version or "").strip() or (DEFAULT_AZURE_API_VERSION if kind == "azure" else None),
        default_headers=new_headers, capabilities=caps,
    )
    new = _without(settings, original_name) if old else settings.copy()
    typed = (key or "").strip()
    if old and not typed and not forget_secrets:
        typed = settings.typed_keys.get(original_name or "", "")
    if typed:
        new.typed_keys[name] = typed
    new.custom_endpoints[name] = endpoint
    if old:  # an edited endpoint keeps its roles (a renamed one takes them along): only the visitor changes a role
        for role_name, choice in settings.roles.items():
            if choice.endpoint == original_name:
                new.roles[role_name] = RoleChoice(name, choice.model)
    new.model_cache.pop(name, None)
    new.fine_tuned_cache.pop(name, None)
    return new


def _without(settings: SessionSettings, name: str | None) -> SessionSettings:
    new = settings.copy()
    if not name:
        return new
    new.custom_endpoints.pop(name, None)
    new.typed_keys.pop(name, None)
    new.roles = {r: c for r, c in new.roles.items() if c.endpoint != name}
    new.model_cache.pop(name, None)
    new.fine_tuned_cache.pop(name, None)
    return new


def remove_endpoint(settings: SessionSettings, name: str) -> SessionSettings:
    """Drop a custom endpoint, its typed key and any role that used it (those fall back to defaults)."""
    endpoint = settings.endpoint(name)
    if endpoint.builtin:
        raise InputError(f"'{name}' is built in and cannot be removed; clear its key instead.")
    return _without(settings, name)


def set_key(settings: SessionSettings, endpoint_name: str, key: str) -> SessionSettings:
    """Type (or, with an empty string, forget) the key of any endpoint, built-ins included."""
    endpoint = settings.endpoint(endpoint_name)
    if not endpoint.needs_key:
        raise InputError(f"'{endpoint_name}' needs no key.")
    new = settings.copy()
    if (key or "").strip():
        new.typed_keys[endpoint_name] = key.strip()
    else:
        new.typed_keys.pop(endpoint_name, None)
    new.model_cache.pop(endpoint_name, None)
    new.fine_tuned_cache.pop(endpoint_name, None)
    return new


def set_hf_token(settings: SessionSettings, token: str) -> SessionSettings:
    new = settings.copy()
    new.hf_token = (token or "").strip() or None
    return new


def set_budgets(settings: SessionSettings, budget_usd: float | None,
                confirm_above_usd: float | None) -> SessionSettings:
    values = {"budget": budget_usd, "confirmation threshold": confirm_above_usd}
    for label, value in values.items():
        if value is None or not 0 <= float(value) <= 100_000:
            raise InputError(f"The {label} must be a number of dollars between 0 and 100000.")
    new = settings.copy()
    new.budget_usd = float(budget_usd)  # type: ignore[arg-type]
    new.confirm_above_usd = float(confirm_above_usd)  # type: ignore[arg-type]
    return new
