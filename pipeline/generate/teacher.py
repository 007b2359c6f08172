"""One teacher call: structured output with fallbacks, our own retries, and an adaptive concurrency cap.

The SDK's own retries are switched off (`max_retries=0`) so that every retry is ours: counted,
bounded for the whole run, and visible in the progress. 429, 5xx, 408/409, timeouts and connection
errors are retried with exponential backoff and full jitter, waiting at least what `Retry-After`
(or `retry-after-ms`) asks. When 429s keep coming the concurrency cap halves and then climbs back one
slot at a time as calls succeed (AIMD, as TCP does), so a run slows down instead of hammering.

Structured output: `response_format` json_schema (strict) first; an endpoint that refuses it with a
400/422 is asked with `json_object`, then with no response_format (the schema is in the prompt
either way), and the run remembers the mode that worked.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import ProviderError, explain, retry_after_seconds

MODES = ("json_schema", "json_object", "plain")


@dataclass
class RetryPolicy:
    max_attempts: int = 6          # per call, the first try included
    max_total_retries: int = 200   # for the whole run; past it the run stops
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0  # a longer Retry-After is honoured up to this
    timeout: float = 120.0          # seconds per HTTP request


@dataclass
class CallStats:
    """Shared by every call of a run (one event loop, so no locks are needed)."""

    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    timeouts: int = 0
    failed_calls: int = 0
    fallbacks: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Reply:
    text: str
    input_tokens: int | None
    output_tokens: int | None
    finish_reason: str | None


class RetriesExhausted(ProviderError):
    """The run used up its retry budget: the endpoint keeps failing."""


class CallFailed(Exception):
    """One call failed after its attempts; the run goes on with other calls."""


class AdaptiveLimiter:
    """A concurrency cap that halves when 429s keep coming and grows back additively on success."""

    def __init__(self, limit: int, *, window: int = 10, trigger: int = 3) -> None:
        self.max_limit = max(1, limit)
        self.limit = float(self.max_limit)
        self.active = 0
        self.slowdowns = 0
        self._recent: deque[bool] = deque(maxlen=window)  # True = answered 429
        self._trigger = trigger
        self._cond = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.active < int(self.limit))
            self.active += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self.active -= 1
            self._cond.notify_all()

    def record(self, rate_limited: bool) -> None:
        self._recent.append(rate_limited)
        if rate_limited and sum(self._recent) >= self._trigger:
            self.limit = max(1.0, self.limit / 2)
            self.slowdowns += 1
            self._recent.clear()
        elif not rate_limited:
            self.limit = min(float(self.max_limit), self.limit + 1 / self.limit)


def _retryable(exc: BaseException) -> bool:
    import openai  # in each function, not at the top: the SDK's types cost ~1 s of the app's first page

    if isinstance(exc, openai.RateLimitError):
        return _code(exc) != "insufficient_quota"  # no wait fixes an empty account
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or exc.status_code in (408, 409)
    return isinstance(exc, openai.APIConnectionError)  # includes APITimeoutError


def _code(exc: BaseException) -> str | None:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        return inner.get("code") if isinstance(inner, dict) else None
    return None


def _refuses_format(exc: BaseException) -> bool:
    import openai

    return isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError)


def response_format(mode: str, schema: dict[str, Any], name: str) -> dict[str, Any] | None:
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def chat_body(model: str, messages: list[dict], *, temperature: float, max_tokens: int | None = None,
              schema: dict[str, Any] | None = None, name: str = "answer", mode: str = "json_schema",
              seed: int | None = None) -> dict[str, Any]:
    """The body of one teacher request: what the interactive run sends, and each line of a batch file."""
    body: dict[str, Any] = {"model": model, "messages": messages, "temperature": temperature}
    if max_tokens:
        body["max_tokens"] = max_tokens
    if seed is not None:
        body["seed"] = seed
    if schema is not None and (fmt := response_format(mode, schema, name)):
        body["response_format"] = fmt
    return body


class Teacher:
    """Calls one model on one endpoint for a whole run; holds the run's mode, stats and limiter."""

    def __init__(self, client: Any, model: str, *, temperature: float = 0.9, concurrency: int = 8,
                 policy: RetryPolicy | None = None, mode: str = "json_schema",
                 rng: random.Random | None = None) -> None:
        self.policy = policy or RetryPolicy()
        # Our retries only; the SDK's would be invisible and uncounted.
        self.client = client.with_options(max_retries=0, timeout=self.policy.timeout)
        self.model = model
        self.temperature = temperature
        self.mode = mode
        self.stats = CallStats()
        self.limiter = AdaptiveLimiter(concurrency)
        self._rng = rng or random.Random()
        self.sleep = asyncio.sleep  # tests replace it to see the delays chosen

    async def complete(self, messages: list[dict], *, schema: dict[str, Any] | None = None,
                       name: str = "answer", max_tokens: int | None = None,
                       temperature: float | None = None, seed: int | None = None) -> Reply:
        import openai

        attempt = 0
        while True:
            mode = self.mode if schema is not None else "plain"
            kwargs = chat_body(self.model, messages, temperature=self.temperature if temperature is None
                               else temperature, max_tokens=max_tokens, schema=schema, name=name, mode=mode,
                               seed=seed)
            try:
                async with self.limiter:
                    resp = await self.client.chat.completions.create(**kwargs)
            except openai.APIError as exc:
                if schema is not None and mode != "plain" and _refuses_format(exc):
                    self._downgrade(mode, exc)
                    continue
                if not _retryable(exc):
                    raise ProviderError(explain(exc)) from exc
                attempt += 1
                await self._back_off(exc, attempt)
                continue
            self.limiter.record(False)
            return reply_of(resp)

    def _downgrade(self, mode: str, exc: BaseException) -> None:
        if self.mode == mode:  # several calls may fail at once; step down once
            self.mode = MODES[MODES.index(mode) + 1]
            self.stats.fallbacks.append(f"{mode} refused ({getattr(exc, 'status_code', '?')}); using {self.mode}")

    async def _back_off(self, exc: BaseException, attempt: int) -> None:
        import openai

        stats, policy = self.stats, self.policy
        limited = isinstance(exc, openai.RateLimitError)
        self.limiter.record(limited)
        if limited:
            stats.rate_limited += 1
        elif isinstance(exc, openai.APITimeoutError):
            stats.timeouts += 1
        elif isinstance(exc, openai.APIStatusError):
            stats.server_errors += 1
        if attempt >= policy.max_attempts:
            stats.failed_calls += 1
            raise CallFailed(explain(exc)) from exc
        if stats.retries >= policy.max_total_retries:
            raise RetriesExhausted(f"Gave up after {stats.retries} retries in this run; the endpoint keeps "
                                   f"failing ({explain(exc)}). Lower the concurrency or try again later.") from exc
        stats.retries += 1
        # Full jitter keeps many failed calls from coming back in lockstep.
        delay = self._rng.uniform(0, min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1)))
        asked = retry_after_seconds(exc)
        if asked is not None:
            delay = max(delay, min(asked, policy.max_retry_after))
        await self.sleep(delay)


def reply_of(resp: Any) -> Reply:
    """A Reply from a chat completion (the SDK's object, or one validated from a batch output line)."""
    choice = resp.choices[0] if getattr(resp, "choices", None) else None
    message = getattr(choice, "message", None)
    text = getattr(message, "content", None) or getattr(message, "refusal", None) or ""
    usage = getattr(resp, "usage", None)
    return Reply(text=text,
                 input_tokens=getattr(usage, "prompt_tokens", None) if usage else None,
                 output_tokens=getattr(usage, "completion_tokens", None) if usage else None,
                 finish_reason=getattr(choice, "finish_reason", None))
