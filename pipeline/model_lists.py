"""What an endpoint offers: its model list (cached per session), a connection test, its newest
fine-tuned model. Failures come back as sentences that say what to do, never as tracebacks, and
never with a key in them (provider texts are scrubbed of every secret the session knows).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from pipeline import ownership
from pipeline.endpoints import Endpoint, SessionSettings, make_client, role, shared_endpoint
from pipeline.errors import DistillError, explain
from pipeline.finetune.records import check_model

log = logging.getLogger("distill.endpoints")

#: One cheap call should not hang a demo: no retries, a short timeout.
PROBE_TIMEOUT_S = 10.0
#: Jobs read to find whose fine-tuned models are whose (newest first); older ones are not looked at.
MAX_JOBS_SCANNED = 1000
#: Ids that are clearly not chat models (embeddings, audio, images, moderation): hidden from role pickers.
_NOT_CHAT = ("text-embedding", "tts", "whisper", "dall-e", "gpt-image", "omni-moderation",
             "text-moderation", "davinci", "babbage", "sora", "computer-use", "codex-mini")


@dataclass
class ModelList:
    models: list[str] = field(default_factory=list)
    #: Why the last fetch failed (the models are then the last good list), or None.
    error: str | None = None
    #: time.time() of the last good fetch; None if there never was one.
    fetched_at: float | None = None


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    message: str


class NotAModelList(Exception):
    """The endpoint answered 200 with something that is not an OpenAI model list."""


def redact(text: str, settings: SessionSettings) -> str:
    """Replace every secret the session knows by '***' (some providers echo part of a bad key)."""
    for secret in settings.secrets():
        text = text.replace(secret, "***")
    return text


def _host(endpoint: Endpoint) -> str:
    if endpoint.is_local:
        return "the built-in local backend"
    return urlparse(endpoint.base_url).netloc if endpoint.base_url else "api.openai.com"


def describe_failure(exc: BaseException, endpoint: Endpoint, settings: SessionSettings,
                     model: str | None = None) -> str:
    """A failed call in words: invalid key, no access to model, network unreachable, rate limited..."""
    if isinstance(exc, NotAModelList):
        text = (f"{_host(endpoint)} answered, but not with an OpenAI model list ({exc}). Check the "
                "base URL (OpenAI-compatible servers usually end in /v1).")
    else:  # the one translation of provider errors, with this call's context
        text = explain(exc, host=_host(endpoint), model=model, timeout_s=PROBE_TIMEOUT_S, listing=not model)
    return redact(text, settings)


def _probe_client(settings: SessionSettings, endpoint_name: str):
    return make_client(settings, endpoint_name, timeout=PROBE_TIMEOUT_S, max_retries=0)


def _parsed(raw) -> object:
    """The parsed body of a raw SDK response, or NotAModelList when the body is not JSON."""
    ctype = raw.headers.get("content-type", "")
    if "json" not in ctype:
        raise NotAModelList(f"got {ctype.split(';')[0] or 'a body without content type'}")
    try:
        return raw.parse()
    except (ValueError, TypeError) as exc:  # JSON that does not decode
        raise NotAModelList(f"undecodable JSON ({type(exc).__name__})") from exc


def _model_ids(client) -> list[str]:
    data = getattr(_parsed(client.models.with_raw_response.list()), "data", None)
    if not isinstance(data, list):
        raise NotAModelList(f"'data' is {type(data).__name__}, not a list")
    ids = [getattr(m, "id", None) for m in data]
    if any(not isinstance(i, str) or not i for i in ids):
        raise NotAModelList("an entry has no string 'id'")
    return sorted(set(ids))


def _check_model(client, model: str) -> None:
    found = _parsed(client.models.with_raw_response.retrieve(model))
    if getattr(found, "id", None) != model:
        raise NotAModelList(f"no model object for '{model}'")


def list_models(settings: SessionSettings, endpoint_name: str, *, refresh: bool = False) -> ModelList:
    """The endpoint's models, from its /models, cached in this visitor's session.

    A failure keeps the last good list and says why in `error`. Endpoints that cannot list models
    (Azure deployments) return an empty list and a hint to type the name.
    """
    cached: ModelList | None = settings.model_cache.get(endpoint_name)
    if cached is not None and not refresh:
        return cached
    endpoint = settings.endpoint(endpoint_name)
    if not endpoint.can("model_listing"):
        return ModelList(error=f"'{endpoint_name}' does not list its models: type the model "
                         "(or deployment) name.")
    try:
        ids = _visible_ids(_probe_client(settings, endpoint_name), settings, endpoint)
    except Exception as exc:  # every failure becomes words; the last good list stays
        log.warning("listing models of endpoint %s failed: %s", endpoint_name, type(exc).__name__)
        last = cached or ModelList()
        result = ModelList(list(last.models), describe_failure(exc, endpoint, settings), last.fetched_at)
    else:
        result = ModelList(ids, None, time.time())
    settings.model_cache[endpoint_name] = result
    return result


def check_model_use(settings: SessionSettings, visitor_id: str | None, endpoint_name: str, model: str) -> None:
    """Refuse a fine-tuned model another visitor made (or the operator: no visitor did), on an
    endpoint every visitor shares. Every handler that receives a model id from the client (Chat's
    panes, Evaluate's contestants) calls this: the pickers hiding it is not enough."""
    if not (model or "").startswith("ft:"):
        return
    if ownership.isolated(shared_endpoint(settings, settings.endpoint(endpoint_name))):
        check_model(make_client(settings, endpoint_name), visitor_id, model, shared=True)


def _visible_ids(client, settings: SessionSettings, endpoint: Endpoint) -> list[str]:
    """The endpoint's model ids this visitor may see: every id the model list and the connection test
    cache goes through here, so neither shows another visitor's fine-tuned models."""
    ids = _model_ids(client)
    if shared_endpoint(settings, endpoint) and endpoint.can("fine_tuning"):
        ids = _without_others_models(client, ids, endpoint, settings.owner)
    return ids


def _without_others_models(client, ids: list[str], endpoint: Endpoint, owner: str) -> list[str]:
    """Only the fine-tuned models of this visitor's own jobs (pipeline.ownership's rule, which Chat and
    Evaluate also apply when a model is used): not another visitor's, nor the operator's.

    If the jobs cannot be read, every fine-tuned id is hidden rather than risk showing another visitor's.
    """
    try:
        jobs = []
        for count, job in enumerate(client.fine_tuning.jobs.list(limit=100)):
            jobs.append(job)
            if count + 1 >= MAX_JOBS_SCANNED:
                break
    except Exception as exc:  # noqa: BLE001 - privacy first: no fine-tuned model is listed
        log.warning("listing fine-tuning jobs to filter models failed: %s", type(exc).__name__)
        return [i for i in ids if not i.startswith("ft:")]
    mine = {j.fine_tuned_model for j in endpoint.provider.visible_jobs(jobs, owner, shared=True) if j.fine_tuned_model}
    return [i for i in ids if not i.startswith("ft:") or i in mine or any(i.startswith(m + ":ckpt") for m in mine)]


def chat_models(models: list[str]) -> list[str]:
    """Drop ids that are plainly not chat models, for role pickers (the full list stays available)."""
    return [m for m in models if not m.lower().startswith(_NOT_CHAT)]


def test_connection(settings: SessionSettings, endpoint_name: str, model: str | None = None
                    ) -> ConnectionResult:
    """One cheap call (list models, or look up / ping `model`) and the outcome in words."""
    model = (model or "").strip() or None
    try:
        endpoint = settings.endpoint(endpoint_name)
    except DistillError as exc:
        return ConnectionResult(False, str(exc))
    try:
        client = _probe_client(settings, endpoint_name)
        if model and endpoint.can("model_listing"):
            _check_model(client, model)
            return ConnectionResult(True, f"OK: the key works and '{model}' is available on {_host(endpoint)}.")
        if model:  # no /models (Azure deployments): the smallest real request
            client.chat.completions.create(model=model, max_completion_tokens=1,
                                           messages=[{"role": "user", "content": "ping"}])
            return ConnectionResult(True, f"OK: '{model}' answered on {_host(endpoint)}.")
        if not endpoint.can("model_listing"):
            return ConnectionResult(False, f"Give a model (deployment) name to test '{endpoint_name}': "
                                    "it does not list its models.")
        ids = _visible_ids(client, settings, endpoint)
    except Exception as exc:  # the result is the words, whatever went wrong
        log.warning("connection test of endpoint %s failed: %s", endpoint_name, type(exc).__name__)
        return ConnectionResult(False, describe_failure(exc, endpoint, settings, model))
    settings.model_cache[endpoint_name] = ModelList(ids, None, time.time())
    return ConnectionResult(True, f"OK: connected to {_host(endpoint)}; {len(ids)} models available.")


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported into one


def newest_fine_tuned_model(settings: SessionSettings, *, job_ids: list[str] | None = None,
                            refresh: bool = False) -> str:
    """The newest succeeded fine-tuning job's model on the base role's endpoint, else the base model.

    `job_ids` limits the search to these jobs. On a shared endpoint (a Space's local backend or shared
    key, whose jobs list holds everyone's) other visitors' jobs are never picked. The answer is cached
    in the session; `default_role` reads the cache.
    """
    base = role(settings, "base")
    cache = settings.fine_tuned_cache
    if base.endpoint in cache and not refresh and job_ids is None:
        return cache[base.endpoint] or base.model
    endpoint = settings.endpoint(base.endpoint)
    if not endpoint.can("fine_tuning"):
        return base.model
    try:
        jobs = _probe_client(settings, base.endpoint).fine_tuning.jobs.list(limit=100).data
    except Exception as exc:  # the role falls back to the base model; the Fine-tune tab shows errors
        log.warning("listing fine-tuning jobs on %s failed: %s", base.endpoint, type(exc).__name__)
        return base.model
    wanted = set(job_ids) if job_ids is not None else None
    shared = shared_endpoint(settings, endpoint)
    done = [j for j in endpoint.provider.visible_jobs(jobs, settings.owner, shared=shared)
            if j.status == "succeeded" and j.fine_tuned_model and (wanted is None or j.id in wanted)]
    newest = max(done, key=lambda j: (j.finished_at or 0, j.created_at or 0), default=None)
    cache[base.endpoint] = newest.fine_tuned_model if newest else ""
    return cache[base.endpoint] or base.model


def client_for_role(settings: SessionSettings, name: str, *, async_: bool = False,
                    **opts: Any) -> tuple[Any, str]:
    """(client, model id) for a role; the fine-tuned role's model is looked up on first use."""
    if name == "fine_tuned" and name not in settings.roles:
        newest_fine_tuned_model(settings)  # fills the session cache default_role reads
    choice = role(settings, name)
    return make_client(settings, choice.endpoint, async_=async_, **opts), choice.model
