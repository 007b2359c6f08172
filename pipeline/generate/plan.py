"""Around a run: the estimate shown before it starts, its provenance record, and Ctrl-C handling."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pipeline.generate import prompts
from pipeline.generate.costing import Estimate, estimate, requests_needed
from pipeline.generate.store import load_existing
from pipeline.generate.templates import resolve_variables

if TYPE_CHECKING:
    from pipeline.generate.runner import GenerationConfig
    from pipeline.generate.status import RunStatus
    from pipeline.generate.teacher import Teacher


def estimate_run(config: GenerationConfig) -> Estimate:
    """What the rest of the run should cost: the calls still needed (a resumed run counts only what is
    missing), a full-size sample of earlier examples in each prompt, setup and answer-check calls."""
    t = config.template
    variables = resolve_variables(t, config.variables)
    remaining = max(0, config.n - len(load_existing(config.out)))
    per_request = config.per_request(variables)
    # Make the prompt as long as it will get: a full sample of maximum-length earlier examples.
    filler = [{"messages": [{"role": "user", "content": "x " * (prompts.SAMPLE_CHARS // 2)}]}] * config.sample_size
    source = config.sources[0] if t.source and config.sources else None
    if t.source and source is None:
        source = {"messages": [{"role": "user", "content": "a typical question"},
                               {"role": "assistant", "content": "a typical answer"}]}
    setup_needed = t.setup is not None and not all(
        str(variables.get(k, "")).strip() for k in t.setup.schema.get("properties", {}))
    if setup_needed:  # the real prompt will carry the teacher's system prompt; count a typical one
        variables = {**variables, **{k: "x " * 60 for k in t.setup.schema.get("properties", {})}}
    sample = prompts.build_messages(t, variables, seed=config.seed, index=0, earlier=filler, source=source,
                                    sample_size=config.sample_size)
    requests = requests_needed(remaining, per_request)
    checks = remaining if config.check and t.checkable else 0
    return estimate(config.model, sample, requests=requests, expected_output_tokens=t.expected_output_tokens,
                    max_tokens=config.max_tokens or t.max_tokens, extra_calls=int(setup_needed and remaining > 0),
                    check_calls=checks)

def provenance(c: GenerationConfig, variables: dict[str, str], s: RunStatus, teacher: Teacher,
               started_at: str) -> dict[str, Any]:
    """What the dataset card reports about one run (no keys: the endpoint is named, not its secret)."""
    return {
        "template": c.template.name, "teacher": c.model, "endpoint": c.endpoint,
        "params": {"n": c.n, "concurrency": c.concurrency, "temperature": c.temperature, "seed": c.seed,
                   "budget_usd": c.budget_usd, "check": c.check, "check_model": c.check_model,
                   "max_tokens": c.max_tokens or c.template.max_tokens,
                   "near_duplicate_threshold": c.near_duplicate_threshold},
        "variables": {k: v if len(v) <= 500 else v[:500] + "..." for k, v in variables.items()},
        "structured_output": teacher.mode, "fallbacks": teacher.stats.fallbacks,
        "counts": {k: getattr(s, k) for k in ("requested", "written", "new", "failed_parse", "duplicates_dropped",
                                              "check_dropped", "failed_calls", "retries", "rate_limited")},
        "cost_usd": round(s.cost_usd, 6), "input_tokens": s.input_tokens, "output_tokens": s.output_tokens,
        "state": s.state, "started": started_at,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def route_sigint(cancel: threading.Event) -> Callable[[], None]:
    """In the main thread (the CLI), Ctrl-C becomes a clean cancel that keeps what is written."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, cancel.set)
        return lambda: loop.remove_signal_handler(signal.SIGINT)
    return lambda: None
