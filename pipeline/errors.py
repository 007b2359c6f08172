"""The errors Distill Studio shows to people.

Every message says what went wrong *and what to do about it*; the UI shows `str(error)` as it is
and the CLI prints it on stderr. Keep secrets out of messages: never format a key into one.
"""

from __future__ import annotations

import re


class DistillError(Exception):
    """Base class: a problem the user can act on. `str(e)` is the message to show."""

    #: CLI exit code when this error ends a command (2 = bad usage or unreadable input).
    exit_code: int = 1


class InputError(DistillError):
    """The user's input (a file, a field, a flag) cannot be used as given."""

    exit_code = 2


class UnreadableFileError(InputError):
    """A file could not be read at all (missing, binary, wrong format)."""


class ConfigError(DistillError):
    """Settings are missing or inconsistent: no key, unknown endpoint, unknown role."""

    exit_code = 2


class MissingKeyError(ConfigError):
    """No API key was found for an endpoint that needs one."""


class ProviderError(DistillError):
    """The model provider refused or failed a request; the message explains the provider's answer."""


class BudgetExceededError(DistillError):
    """A run stopped because going on would have spent more than the budget allows."""


class CancelledError(DistillError):
    """The user stopped the work; what was finished is kept."""


def explain(exc: BaseException, *, host: str | None = None, model: str | None = None,
            timeout_s: float | None = None, listing: bool = False) -> str:
    """A message for any error a user may meet, openai's included, that says what to do. The one
    translation of provider errors: the tabs, the CLI and Settings' connection test all use it.

    The provider's own text is kept where it helps (a 400 names the bad field) but never for a 401,
    whose text can carry part of the key. Context sharpens the words: `host` (where the call went),
    `model` (the model asked for), `timeout_s`, `listing` (the call listed models: a 404 then means
    a wrong base URL, not a missing model).
    """
    if isinstance(exc, DistillError):
        return str(exc)
    import openai  # local import: errors.py stays importable without the SDK

    where = host or "the endpoint"
    if isinstance(exc, openai.AuthenticationError):
        return (f"Invalid key: {where} refused it (401). Type the key again in Settings, or fix the "
                "environment variable it comes from.")
    if isinstance(exc, openai.PermissionDeniedError):
        what = f"model '{model}'" if model else "this resource"
        return f"No access: the key is valid but may not use {what} (403): {_provider_text(exc)}"
    if isinstance(exc, openai.RateLimitError):
        if _provider_code(exc) == "insufficient_quota":
            return "The account is out of quota or over its billing limit (429 insufficient_quota). Add credit or raise the limit with the provider."
        retry = retry_after_seconds(exc)
        wait = f" The provider asks to wait {retry:.0f} s." if retry else ""
        return f"Rate limited by the provider (429).{wait} Lower the concurrency or try again shortly."
    if _provider_code(exc) in _BILLING_CODES:
        return "The account is out of quota or over its billing limit. Add credit or raise the limit with the provider."
    if isinstance(exc, openai.NotFoundError):
        if model:
            return f"No access to model '{model}': {where} does not serve it to this key (404)."
        if listing:
            return (f"Not found (404) at {where}: check the base URL (OpenAI-compatible servers usually "
                    "end in /v1).")
        return f"Not found (404): {_provider_text(exc)} Check the model or job id, and that this endpoint serves it."
    if isinstance(exc, openai.APITimeoutError):
        within = f" within {timeout_s:.0f} s" if timeout_s else " in time"
        return f"Network unreachable: no answer from {where}{within}. Check that it is running, or raise the timeout."
    if isinstance(exc, openai.APIConnectionError):
        return (f"Network unreachable: could not connect to {where}. Check the base URL in the Settings "
                "tab and that the server is running.")
    if isinstance(exc, openai.BadRequestError):
        param = _provider_body(exc).get("param")
        if param == "model" or _provider_code(exc) == "model_not_available":
            return (f"The provider cannot use that model here (400): {_provider_text(exc)} "
                    "Pick one of the models this endpoint offers.")
        if param in ("file", "training_file", "validation_file") or re.search(
                r"\b(file|jsonl)\b", _provider_text(exc), re.IGNORECASE):
            return (f"The provider refused the file (400): {_provider_text(exc)} "
                    "Fix the data (the Dataset tab checks every line) and try again.")
    if isinstance(exc, openai.APIStatusError):
        return f"The provider answered {exc.status_code}: {_provider_text(exc)}"
    if isinstance(exc, openai.OpenAIError):
        return f"OpenAI client error: {exc}"
    return f"Unexpected error ({type(exc).__name__}): {exc}. Please report it with what you were doing."


def retry_after_seconds(source: object) -> float | None:
    """How long a provider asks to wait, from an error (its response) or a response's headers:
    `retry-after-ms` (OpenAI's), else `Retry-After` in seconds or as an HTTP date. None when it does
    not say (or says something unreadable); never negative."""
    import math
    import time
    from email.utils import parsedate_to_datetime

    headers = getattr(getattr(source, "response", None), "headers", None) if isinstance(source, BaseException) \
        else getattr(source, "headers", source)
    if headers is None or not hasattr(headers, "get"):
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if not value:
            continue
        try:
            seconds = float(value) / scale
        except (TypeError, ValueError):
            if scale != 1.0:
                continue
            try:  # an HTTP date
                seconds = parsedate_to_datetime(str(value)).timestamp() - time.time()
            except (TypeError, ValueError, IndexError, OverflowError):
                return None
        return max(0.0, seconds) if math.isfinite(seconds) else None
    return None


#: Error codes meaning "no money left" whatever the status (429 insufficient_quota, 400 billing limit).
_BILLING_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"})


def _provider_body(exc: object) -> dict:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        return body.get("error", body) if isinstance(body.get("error", body), dict) else body
    return {}


def _provider_code(exc: object) -> str | None:
    return _provider_body(exc).get("code")


def _provider_text(exc: object) -> str:
    return str(_provider_body(exc).get("message") or getattr(exc, "message", "") or exc).strip()
