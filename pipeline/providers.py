"""Provider rules, one object per endpoint kind (local, OpenAI, Azure, OpenAI-compatible).

Tabs and the CLI ask the endpoint's kind, never `kind == "local"` or the model's name, and never import
`pipeline.local` to learn a rule: how to build a client, what a new endpoint of the kind supports,
whether it is the built-in local backend, its rule for n_epochs "auto", whether every visitor of the
app reaches the same account through it, how jobs are tagged with their owner and filtered, and where
its prices come from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar
from urllib.parse import urlparse

from pipeline import ownership
from pipeline.local.dataset import resolved_auto_epochs

CAPABILITIES = ("chat", "structured_output", "fine_tuning", "model_listing")
DEFAULT_AZURE_API_VERSION = "2024-10-21"
#: Job metadata key holding the visitor's tag (pipeline.finetune.records.visitor_tag), never their id.
OWNER_META_KEY = "distill_visitor"


def openai_hosted(base_url: Any) -> bool:
    """True for OpenAI's own API (no base URL, or api.openai.com)."""
    return not base_url or (urlparse(str(base_url)).hostname or "").endswith("api.openai.com")


class EndpointKind:
    """The rules of one kind of provider. Subclasses register themselves by `name`."""

    name: ClassVar[str]
    label: ClassVar[str]
    #: What a new endpoint of this kind is assumed to support until the visitor says otherwise. An
    #: OpenAI-compatible server brought by a visitor is assumed to do what OpenAI does (they untick
    #: what it lacks): starting with fine-tuning unticked hid it from the Fine-tune tab.
    default_capabilities: ClassVar[frozenset[str]] = frozenset(CAPABILITIES)
    #: Kinds a visitor may add; the local backend exists once, built in.
    user_addable: ClassVar[bool] = True
    needs_base_url: ClassVar[bool] = True
    #: The embedded backend of this app (no key, free, served on loopback).
    is_local: ClassVar[bool] = False
    registry: ClassVar[dict[str, type[EndpointKind]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        EndpointKind.registry[cls.name] = cls

    @classmethod
    def client(cls, endpoint: Any, key: str, *, async_: bool = False, **opts: Any) -> Any:
        import openai  # here, not at the top: the SDK's types cost ~1 s of the app's first page

        klass = openai.AsyncOpenAI if async_ else openai.OpenAI
        return klass(api_key=key, base_url=endpoint.base_url or None,
                     default_headers=endpoint.default_headers or None, **opts)

    @classmethod
    def auto_epochs(cls) -> Callable[[int], int] | None:
        """The provider's own rule for n_epochs "auto" (for estimates); None: OpenAI's."""
        return None

    @classmethod
    def shared(cls, *, multi_user: bool, key_typed: bool) -> bool:
        """Does every visitor reach the same account here? Only when more than one person can reach the
        app, and then through a key the server holds (a key the visitor typed is their own account)."""
        return multi_user and not key_typed

    @classmethod
    def uses_openai_catalogue(cls, base_url: Any) -> bool:
        """Are models, fine-tunable snapshots and prices those of OpenAI's own API (data/*.json)?"""
        return False

    @classmethod
    def pricing(cls, base_url: Any) -> str:
        """Where cost estimates on this endpoint come from, in words."""
        if cls.uses_openai_catalogue(base_url):
            return "OpenAI's price list (data/pricing.json)"
        return "unknown: this provider's prices are not in data/pricing.json"

    @staticmethod
    def job_metadata(owner_tag: str | None) -> dict[str, str] | None:
        """Metadata every job a visitor starts carries, so a shared job list can be filtered."""
        return {OWNER_META_KEY: owner_tag} if owner_tag else None

    @staticmethod
    def job_owner(job: Any) -> str | None:
        """Whose job it is: the server's record (pipeline.ownership), else the tag the app put in the
        job's metadata when it created it; None when no visitor made it (the CLI, the operator)."""
        return ownership.owner_tag("job", job.id) or (getattr(job, "metadata", None) or {}).get(OWNER_META_KEY)

    @classmethod
    def visible_jobs(cls, jobs: Iterable[Any], owner_tag: str | None, *, shared: bool) -> list[Any]:
        """The jobs a visitor may see: all on an endpoint that is theirs alone, else only their own, by
        ownership.may_use's rule (read by tag: the session knows its visitor by tag)."""
        return [j for j in jobs if not shared or (bool(owner_tag) and cls.job_owner(j) == owner_tag)]


class OpenAIKind(EndpointKind):
    name = "openai"
    label = "OpenAI"
    needs_base_url = False  # api.openai.com unless a base URL is given

    @classmethod
    def uses_openai_catalogue(cls, base_url: Any) -> bool:
        return openai_hosted(base_url)


class CompatibleKind(EndpointKind):
    """vLLM, Ollama, llama.cpp server, LM Studio...: the plain OpenAI client with another base URL."""

    name = "compatible"
    label = "OpenAI-compatible"


class AzureKind(EndpointKind):
    name = "azure"
    label = "Azure OpenAI"
    # Azure's /models lists base models, not the deployment names chat calls take.
    default_capabilities = frozenset(("chat", "structured_output", "fine_tuning"))

    @classmethod
    def client(cls, endpoint: Any, key: str, *, async_: bool = False, **opts: Any) -> Any:
        import openai

        klass = openai.AsyncAzureOpenAI if async_ else openai.AzureOpenAI
        return klass(api_key=key, azure_endpoint=endpoint.base_url or "",
                     api_version=endpoint.api_version or DEFAULT_AZURE_API_VERSION,
                     default_headers=endpoint.default_headers or None, **opts)


class LocalKind(EndpointKind):
    """The embedded backend: started on first use on a loopback port with a random key."""

    name = "local"
    label = "Built-in local model"
    user_addable = False
    needs_base_url = False
    is_local = True

    @classmethod
    def client(cls, endpoint: Any, key: str, *, async_: bool = False, **opts: Any) -> Any:
        import openai

        from pipeline.local.runtime import ensure_local_backend  # starts torch: only when first used

        handle = ensure_local_backend()
        klass = openai.AsyncOpenAI if async_ else openai.OpenAI
        return klass(api_key=handle.api_key, base_url=handle.base_url, **opts)

    @classmethod
    def auto_epochs(cls) -> Callable[[int], int] | None:
        return resolved_auto_epochs

    @classmethod
    def shared(cls, *, multi_user: bool, key_typed: bool) -> bool:
        return multi_user  # one backend serves every visitor of the app

    @classmethod
    def pricing(cls, base_url: Any) -> str:
        return "free: runs on this machine"


def kind_of(name: str) -> type[EndpointKind] | None:
    return EndpointKind.registry.get(name)
