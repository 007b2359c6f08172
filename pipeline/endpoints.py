"""Endpoints (base URL + key source + capabilities), keys, and which model plays which role.

One registry every tab uses. Endpoint kinds and their rules are in `pipeline.providers` (one class
per kind; `endpoint.provider` answers). Settings belong to one visitor and live in their Gradio session (`SessionSettings`), never
in module globals; keys typed in the UI stay in that object and are never written anywhere.

Key lookup order (simonw/llm's): typed in this session -> environment / Space secret -> clear error.
Model lists, connection tests, the newest fine-tuned model and `client_for_role` (which looks that
model up) live in `pipeline.model_lists`, which builds on this module.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline import config, ownership
from pipeline.errors import ConfigError, InputError, MissingKeyError
from pipeline.finetune.preflight import confirm_threshold_usd
from pipeline.providers import CAPABILITIES, EndpointKind, kind_of

ROLES = ("teacher", "base", "fine_tuned", "judge")
ROLE_LABELS = {"teacher": "Teacher", "base": "Base student", "fine_tuned": "Fine-tuned student",
               "judge": "Judge"}


@dataclass(frozen=True)
class Endpoint:
    name: str
    kind: str
    base_url: str | None = None
    #: Environment variable (or Space secret) the key is read from when none was typed.
    key_env: str | None = None
    api_version: str | None = None
    #: May carry credentials (Azure's api-key header...): treated like a key, never shown back.
    default_headers: dict[str, str] = field(default_factory=dict, repr=False)
    capabilities: frozenset[str] = frozenset(("chat", "model_listing"))
    builtin: bool = False

    @property
    def provider(self) -> type[EndpointKind]:
        kind = kind_of(self.kind)
        if kind is None:
            raise ConfigError(f"Endpoint '{self.name}' has an unknown kind '{self.kind}'.")
        return kind

    @property
    def is_local(self) -> bool:
        """The app's embedded backend: decided by the kind, never by a model's name."""
        return self.provider.is_local

    @property
    def needs_key(self) -> bool:
        return not self.is_local

    def can(self, capability: str) -> bool:
        return capability in self.capabilities


LOCAL = Endpoint("local", "local", capabilities=frozenset(CAPABILITIES), builtin=True)
OPENAI = Endpoint("openai", "openai", base_url=os.environ.get("OPENAI_BASE_URL") or None,
                  key_env="OPENAI_API_KEY", capabilities=frozenset(CAPABILITIES), builtin=True)

#: Sensible OpenAI models per role when an OpenAI key is configured: a current GPT-4-class teacher,
#: a small fine-tunable snapshot as the base (the fine-tuned role falls back to it).
OPENAI_ROLE_DEFAULTS = {"teacher": "gpt-4.1", "base": "gpt-4.1-mini-2025-04-14",
                        "fine_tuned": "gpt-4.1-mini-2025-04-14", "judge": "gpt-4.1-mini"}
LOCAL_MODEL = "SmolLM2-135M-Instruct"  # the id the embedded backend serves its base model under
HF_TOKEN_ENV = "HF_TOKEN"


@dataclass(frozen=True)
class RoleChoice:
    endpoint: str
    model: str


@dataclass
class SessionSettings:
    """One visitor's endpoints, typed keys, role choices and budgets (kept in gr.State, never on disk).

    Handlers that change settings should return `settings.copy()` changed, not the same object:
    gr.State notices a change (and the status line refreshes) only when the object is new.
    """

    custom_endpoints: dict[str, Endpoint] = field(default_factory=dict)
    typed_keys: dict[str, str] = field(default_factory=dict, repr=False)
    hf_token: str | None = field(default=None, repr=False)
    roles: dict[str, RoleChoice] = field(default_factory=dict)
    #: Default spending cap (USD) for one generation run.
    budget_usd: float = 5.0
    #: A fine-tune estimated above this (USD) asks for confirmation before it starts; the same default
    #: as the CLI's and README's (DISTILL_FINETUNE_CONFIRM_USD, else $5).
    confirm_above_usd: float = field(default_factory=confirm_threshold_usd)
    #: Remember custom endpoints in this visitor's browser (gr.BrowserState); keys only if remember_keys.
    remember: bool = False
    remember_keys: bool = False
    #: The visitor's tag (pipeline.finetune.records.visitor_tag), set on page load: on an endpoint every
    #: visitor shares, model pickers hide the fine-tuned models other visitors' jobs made.
    owner: str = ""
    #: Per-session caches (pipeline.model_lists): endpoint name -> ModelList / newest fine-tuned id.
    model_cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    fine_tuned_cache: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __repr__(self) -> str:  # keys must never reach a log line through repr()
        return f"SessionSettings(endpoints={list(self.endpoints())}, roles={self.roles})"

    __str__ = __repr__

    def copy(self) -> SessionSettings:
        """A new object with its own dicts (the caches are shared: they describe the same endpoints)."""
        return replace(self, custom_endpoints=dict(self.custom_endpoints),
                       typed_keys=dict(self.typed_keys), roles=dict(self.roles))

    def endpoints(self) -> dict[str, Endpoint]:
        builtins = {LOCAL.name: LOCAL, OPENAI.name: openai_endpoint()}
        return {**builtins, **self.custom_endpoints}

    def endpoint(self, name: str) -> Endpoint:
        try:
            return self.endpoints()[name]
        except KeyError:
            raise ConfigError(f"There is no endpoint named '{name}'. Add it in the Settings tab.") from None

    def secrets(self) -> list[str]:
        """Every credential this session knows (for scrubbing messages), longest first."""
        found = [*self.typed_keys.values(), self.hf_token or ""]
        for endpoint in self.endpoints().values():
            found += list(endpoint.default_headers.values())
            if endpoint.key_env and env_key_allowed(endpoint):
                found.append(os.environ.get(endpoint.key_env, ""))
        return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def openai_endpoint() -> Endpoint:
    """OpenAI's built-in endpoint; OPENAI_BASE_URL is read at call time so a Space secret applies."""
    return replace(OPENAI, base_url=os.environ.get("OPENAI_BASE_URL") or None)


# ---- keys -------------------------------------------------------------------------------------

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")


def env_key_allowed(endpoint: Endpoint) -> bool:
    """May this endpoint read its key from the server's environment?

    Built-ins always may (their base URL is the operator's too). A visitor's endpoint may on a
    private run; on a shared Space only variables the owner lists in DISTILL_SHARED_KEY_VARS, or a
    visitor could point a custom URL at the owner's OPENAI_API_KEY and receive it.
    """
    if endpoint.builtin or not endpoint.key_env:
        return True
    if not os.environ.get("SPACE_ID"):
        return True
    allowed = config.SHARED_KEY_VARS.get()
    return endpoint.key_env in allowed


def find_key(settings: SessionSettings, endpoint: Endpoint) -> str | None:
    """The key for an endpoint: typed in this session, else its environment variable, else None."""
    typed = settings.typed_keys.get(endpoint.name)
    if typed:
        return typed
    if endpoint.key_env and env_key_allowed(endpoint):
        return os.environ.get(endpoint.key_env) or None
    return None


def key_source(settings: SessionSettings, endpoint: Endpoint) -> str:
    """Where the key comes from, in words (never the key): for tables and the status line."""
    if not endpoint.needs_key:
        return "not needed"
    if settings.typed_keys.get(endpoint.name):
        return "typed (this session)"
    if endpoint.key_env and os.environ.get(endpoint.key_env):
        return f"${endpoint.key_env}" if env_key_allowed(endpoint) else f"${endpoint.key_env} (not shared)"
    return "missing"


def require_key(settings: SessionSettings, endpoint: Endpoint) -> str:
    if not endpoint.needs_key:
        return "local"
    key = find_key(settings, endpoint)
    if key:
        return key
    if endpoint.key_env and not env_key_allowed(endpoint):
        where = (f"on this shared Space ${endpoint.key_env} is used only if the owner lists it in "
                 f"{config.SHARED_KEY_VARS.name}")
    elif endpoint.key_env:
        where = f"set the {endpoint.key_env} environment variable (a Space secret on Hugging Face)"
    else:
        where = "give the endpoint an environment variable name and set that variable"
    raise MissingKeyError(
        f"No API key for endpoint '{endpoint.name}'. Type one in Settings > Endpoints, or {where}."
    )


def find_hf_token(settings: SessionSettings) -> str | None:
    """Hugging Face token: typed in this session, else $HF_TOKEN (a Space secret), else None."""
    return settings.hf_token or os.environ.get(HF_TOKEN_ENV) or None


def require_hf_token(settings: SessionSettings) -> str:
    token = find_hf_token(settings)
    if not token:
        raise MissingKeyError("No Hugging Face token. Type one in Settings > Hugging Face, or set the "
                              "HF_TOKEN environment variable (a Space secret on Hugging Face).")
    return token


def make_client(settings: SessionSettings, endpoint_name: str, *, async_: bool = False,
                **opts: Any) -> Any:
    """An `openai.OpenAI` (or Async/Azure) client for an endpoint, with the right key."""
    endpoint = settings.endpoint(endpoint_name)
    return endpoint.provider.client(endpoint, require_key(settings, endpoint), async_=async_, **opts)


def multi_user() -> bool:
    """Can more than one person reach this app? (pipeline.ownership.multi_user: a Space, a server
    bound beyond loopback, a share link, or DISTILL_MULTI_USER=1)"""
    return ownership.multi_user()


def shared_endpoint(settings: SessionSettings, endpoint: Endpoint) -> bool:
    """The one rule for "shared endpoint", for every tab: does every visitor of this app reach the same
    account (and so the same jobs and fine-tuned models) through this endpoint?"""
    return endpoint.provider.shared(multi_user=multi_user(), key_typed=bool(settings.typed_keys.get(endpoint.name)))


# ---- roles ------------------------------------------------------------------------------------

def has_openai_key(settings: SessionSettings) -> bool:
    return bool(find_key(settings, openai_endpoint()))


def default_role(settings: SessionSettings, role: str) -> RoleChoice:
    """With no OpenAI key every role uses the local backend; with one, OpenAI models.

    The fine-tuned role uses the newest succeeded job's model once `newest_fine_tuned_model` has
    looked it up this session (no network here: the status line calls this on every change).
    """
    if role not in ROLES:
        raise ConfigError(f"Unknown role '{role}'; roles are {', '.join(ROLES)}.")
    if role == "fine_tuned":
        base = settings.roles.get("base") or default_role(settings, "base")
        tuned = settings.fine_tuned_cache.get(base.endpoint)
        return RoleChoice(base.endpoint, tuned or base.model)
    if role == "judge" and "teacher" in settings.roles:
        # The visitor chose a teacher (their strongest model, on an endpoint they use): it judges too,
        # rather than a default model their endpoint may not serve.
        return settings.roles["teacher"]
    if has_openai_key(settings):
        return RoleChoice("openai", _listed_default(settings, role))
    return RoleChoice("local", LOCAL_MODEL)


def _listed_default(settings: SessionSettings, role: str) -> str:
    """OpenAI's default model for a role; for the judge, one the endpoint lists when its list is known
    (a server behind OPENAI_BASE_URL may not serve gpt-4.1-mini): the teacher's default, else the
    endpoint's first model."""
    model = OPENAI_ROLE_DEFAULTS[role]
    listed = getattr(settings.model_cache.get("openai"), "models", None)
    if role != "judge" or not listed or model in listed:
        return model
    teacher = OPENAI_ROLE_DEFAULTS["teacher"]
    return teacher if teacher in listed else listed[0]


def role(settings: SessionSettings, name: str) -> RoleChoice:
    return settings.roles.get(name) or default_role(settings, name)


def fine_tuned_stands_in(settings: SessionSettings) -> bool:
    """Known to have no fine-tuned model (looked up this session, none found): the base plays the part."""
    return "fine_tuned" not in settings.roles and settings.fine_tuned_cache.get(role(settings, "base").endpoint) == ""


def with_role(settings: SessionSettings, name: str, endpoint: str, model: str) -> SessionSettings:
    """A copy with one role assigned (e.g. the Fine-tune tab after a job succeeds)."""
    if name not in ROLES:
        raise ConfigError(f"Unknown role '{name}'; roles are {', '.join(ROLES)}.")
    settings.endpoint(endpoint)
    if not model.strip():
        raise InputError(f"Choose a model for the {ROLE_LABELS[name].lower()} role.")
    new = settings.copy()
    new.roles[name] = RoleChoice(endpoint, model.strip())
    return new


__all__ = ["ROLES", "CAPABILITIES", "LOCAL_MODEL", "Endpoint", "EndpointKind", "RoleChoice",
           "SessionSettings", "make_client", "role", "default_role", "find_key",
           "require_key", "key_source", "find_hf_token", "require_hf_token", "with_role"]
