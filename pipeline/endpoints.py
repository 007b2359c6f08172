"""Endpoints (base URL + key source + capabilities), keys, and which model plays which role.

One registry every tab uses. Endpoint kinds are data plus a small class each (no if/elif per
provider). Settings belong to one visitor and live in their Gradio session (`SessionSettings`), never
in module globals; keys typed in the UI stay in that object and are never written anywhere.

Key lookup order (simonw/llm's): typed in this session -> environment / Space secret -> clear error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import openai

from pipeline.errors import ConfigError, MissingKeyError

ROLES = ("teacher", "base", "fine_tuned", "judge")
CAPABILITIES = ("chat", "structured_output", "fine_tuning", "model_listing")


class EndpointKind:
    """How to build a client for one kind of provider. Subclasses are registered by `name`."""

    name: ClassVar[str]
    registry: ClassVar[dict[str, type[EndpointKind]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        EndpointKind.registry[cls.name] = cls

    @classmethod
    def client(cls, endpoint: Endpoint, key: str, *, async_: bool = False, **opts: Any) -> Any:
        klass = openai.AsyncOpenAI if async_ else openai.OpenAI
        return klass(api_key=key, base_url=endpoint.base_url or None,
                     default_headers=endpoint.default_headers or None, **opts)


class OpenAIKind(EndpointKind):
    name = "openai"


class CompatibleKind(EndpointKind):
    """vLLM, Ollama, llama.cpp server, LM Studio...: the plain OpenAI client with another base URL."""

    name = "compatible"


class AzureKind(EndpointKind):
    name = "azure"

    @classmethod
    def client(cls, endpoint: Endpoint, key: str, *, async_: bool = False, **opts: Any) -> Any:
        klass = openai.AsyncAzureOpenAI if async_ else openai.AzureOpenAI
        return klass(api_key=key, azure_endpoint=endpoint.base_url or "",
                     api_version=endpoint.api_version or "2024-10-21",
                     default_headers=endpoint.default_headers or None, **opts)


class LocalKind(EndpointKind):
    """The embedded backend: started on first use on a loopback port with a random key."""

    name = "local"

    @classmethod
    def client(cls, endpoint: Endpoint, key: str, *, async_: bool = False, **opts: Any) -> Any:
        from pipeline.local.runtime import ensure_local_backend

        handle = ensure_local_backend()
        klass = openai.AsyncOpenAI if async_ else openai.OpenAI
        return klass(api_key=handle.api_key, base_url=handle.base_url, **opts)


@dataclass(frozen=True)
class Endpoint:
    name: str
    kind: str
    base_url: str | None = None
    #: Environment variable (or Space secret) the key is read from when none was typed.
    key_env: str | None = None
    api_version: str | None = None
    default_headers: dict[str, str] = field(default_factory=dict)
    capabilities: frozenset[str] = frozenset(("chat", "model_listing"))
    builtin: bool = False

    @property
    def needs_key(self) -> bool:
        return self.kind != "local"


LOCAL = Endpoint("local", "local", capabilities=frozenset(CAPABILITIES), builtin=True)
OPENAI = Endpoint("openai", "openai", base_url=os.environ.get("OPENAI_BASE_URL") or None,
                  key_env="OPENAI_API_KEY", capabilities=frozenset(CAPABILITIES), builtin=True)

#: Sensible OpenAI models per role when an OpenAI key is configured.
OPENAI_ROLE_DEFAULTS = {"teacher": "gpt-4.1", "base": "gpt-4.1-mini-2025-04-14",
                        "fine_tuned": "gpt-4.1-mini-2025-04-14", "judge": "gpt-4.1-mini"}
LOCAL_MODEL = "SmolLM2-135M-Instruct"  # the id the embedded backend serves its base model under


@dataclass(frozen=True)
class RoleChoice:
    endpoint: str
    model: str


@dataclass
class SessionSettings:
    """One visitor's endpoints, typed keys and role choices (kept in gr.State, never on disk)."""

    custom_endpoints: dict[str, Endpoint] = field(default_factory=dict)
    typed_keys: dict[str, str] = field(default_factory=dict, repr=False)
    roles: dict[str, RoleChoice] = field(default_factory=dict)

    def __repr__(self) -> str:  # keys must never reach a log line through repr()
        return f"SessionSettings(endpoints={list(self.endpoints())}, roles={self.roles})"

    def endpoints(self) -> dict[str, Endpoint]:
        builtins = {LOCAL.name: LOCAL, OPENAI.name: openai_endpoint()}
        return {**builtins, **self.custom_endpoints}

    def endpoint(self, name: str) -> Endpoint:
        try:
            return self.endpoints()[name]
        except KeyError:
            raise ConfigError(f"There is no endpoint named '{name}'. Add it in the Settings tab.") from None


def openai_endpoint() -> Endpoint:
    """OpenAI's built-in endpoint; OPENAI_BASE_URL is read at call time so a Space secret applies."""
    return replace(OPENAI, base_url=os.environ.get("OPENAI_BASE_URL") or None)


def find_key(settings: SessionSettings, endpoint: Endpoint) -> str | None:
    """The key for an endpoint: typed in this session, else its environment variable, else None."""
    typed = settings.typed_keys.get(endpoint.name)
    if typed:
        return typed
    return os.environ.get(endpoint.key_env) if endpoint.key_env else None


def require_key(settings: SessionSettings, endpoint: Endpoint) -> str:
    if not endpoint.needs_key:
        return "local"
    key = find_key(settings, endpoint)
    if key:
        return key
    where = f"set the {endpoint.key_env} environment variable (a Space secret on Hugging Face)" \
        if endpoint.key_env else "type it in the Settings tab"
    raise MissingKeyError(
        f"No API key for endpoint '{endpoint.name}'. Type one in the Settings tab, or {where}."
    )


def make_client(settings: SessionSettings, endpoint_name: str, *, async_: bool = False,
                **opts: Any) -> Any:
    """An `openai.OpenAI` (or Async/Azure) client for an endpoint, with the right key."""
    endpoint = settings.endpoint(endpoint_name)
    kind = EndpointKind.registry.get(endpoint.kind)
    if kind is None:
        raise ConfigError(f"Endpoint '{endpoint.name}' has an unknown kind '{endpoint.kind}'.")
    return kind.client(endpoint, require_key(settings, endpoint), async_=async_, **opts)


def has_openai_key(settings: SessionSettings) -> bool:
    return bool(find_key(settings, openai_endpoint()))


def default_role(settings: SessionSettings, role: str) -> RoleChoice:
    """With no OpenAI key every role uses the local backend; with one, OpenAI models."""
    if role not in ROLES:
        raise ConfigError(f"Unknown role '{role}'; roles are {', '.join(ROLES)}.")
    if has_openai_key(settings):
        return RoleChoice("openai", OPENAI_ROLE_DEFAULTS[role])
    return RoleChoice("local", LOCAL_MODEL)


def role(settings: SessionSettings, name: str) -> RoleChoice:
    return settings.roles.get(name) or default_role(settings, name)


def client_for_role(settings: SessionSettings, name: str, *, async_: bool = False,
                    **opts: Any) -> tuple[Any, str]:
    """(client, model id) for a role: what the Generate, Fine-tune, Chat and Evaluate tabs call."""
    choice = role(settings, name)
    return make_client(settings, choice.endpoint, async_=async_, **opts), choice.model
