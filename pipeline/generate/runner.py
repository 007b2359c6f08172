"""A generation run: build prompt -> call the teacher -> parse -> dedupe -> check -> append, concurrently.

`concurrency` workers share one event loop. A worker claims the examples its next call should yield
only while `written + claimed < n`, so the run never asks for more than it needs and never writes an
example twice; when a call fails or yields nothing, its claim is released and another worker takes it.
Cancel (a threading.Event, so a UI thread or a signal can set it) is polled every 50 ms and cancels the
workers' tasks, which aborts their HTTP requests at once; everything written stays written.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from pipeline.errors import DistillError, ProviderError, explain
from pipeline.generate import prompts, steps
from pipeline.generate.checking import check_example
from pipeline.generate.config import GenerationConfig
from pipeline.generate.costing import CostMeter
from pipeline.generate.dedup import Deduper
from pipeline.generate.parse import ParseFailure, parse_answer
from pipeline.generate.plan import provenance, route_sigint
from pipeline.generate.status import RunStatus
from pipeline.generate.store import RunFiles, load_existing
from pipeline.generate.tasks import effective, write_sidecars
from pipeline.generate.teacher import CallFailed, Teacher
from pipeline.generate.templates import request_schema, resolve_variables

RECENT_KEEP = 200  # earlier examples the prompt sample is drawn from (a bounded window)


ProgressFn = Callable[[RunStatus], None]


def run_generation(config: GenerationConfig, client: Any, *, on_progress: ProgressFn | None = None,
                   cancel: threading.Event | None = None, check_client: Any = None) -> RunStatus:
    """Run to completion (or cancel / budget / failure) and return the final status. Blocking."""
    return asyncio.run(generate(config, client, on_progress=on_progress, cancel=cancel, check_client=check_client))


async def generate(config: GenerationConfig, client: Any, *, on_progress: ProgressFn | None = None,
                   cancel: threading.Event | None = None, check_client: Any = None) -> RunStatus:
    run = _Run(config, client, on_progress, cancel or threading.Event(), check_client)
    return await run.execute()


class _Run:
    def __init__(self, config: GenerationConfig, client: Any, on_progress: ProgressFn | None,
                 cancel: threading.Event, check_client: Any) -> None:
        t = config.template
        if t.source and not config.sources:
            raise DistillError(f"Template '{t.name}' rewrites existing examples: add some to the draft or "
                               "give a source file first.")
        self.c, self.cancel, self.on_progress = config, cancel, on_progress
        self.files = RunFiles(config.out)
        existing = load_existing(config.out)
        self.state = self.files.load_state()
        self.variables = resolve_variables(t, {**self.state.get("setup_outputs", {}), **config.variables})
        t = effective(t, self.variables)  # a task template's schema from the user's labels/schema/tools
        write_sidecars(t, self.variables, config.out)
        self.status = RunStatus(requested=config.n, out=str(config.out), failures_out=str(self.files.failed_path),
                                written=len(existing), concurrency_limit=config.concurrency)
        self.meter = CostMeter(config.model, config.budget_usd)
        self.status.cost_known = self.meter.priced
        self.teacher = Teacher(client, config.model, temperature=config.temperature,
                               concurrency=config.concurrency, policy=config.retry)
        self.checker = None
        if config.check and t.checkable:
            self.checker = Teacher(check_client or client, config.check_model or config.model,
                                   concurrency=config.concurrency, policy=config.retry)
            self.checker.stats = self.teacher.stats  # one retry budget and one count for the run
        self.dedup = Deduper(config.near_duplicate_threshold)
        for ex in existing + (config.sources or []) + (config.avoid or []):
            self.dedup.add(ex)
        self.recent = ((config.avoid or []) + existing)[-RECENT_KEEP:]
        self.t = t
        self.max_tokens = config.max_tokens or t.max_tokens
        self.schema = request_schema(t, config.per_request(self.variables))
        self.next_index = int(self.state.get("requests_made", 0))
        self.claimed = 0
        self.stop_reason: str | None = None
        self.cond = asyncio.Condition()
        self.tasks: list[asyncio.Future] = []
        self.started = time.monotonic()
        self.max_failures = config.max_failures if config.max_failures is not None else max(10, 2 * config.n)

    # -- the run ---------------------------------------------------------------------------------
    async def execute(self) -> RunStatus:
        started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        restore = route_sigint(self.cancel)
        try:
            if not self.status.complete:
                watcher = asyncio.create_task(self._watch())
                await self._guarded(self._setup())
                if self.stop_reason is None:
                    workers = [asyncio.create_task(self._guarded(self._worker()))
                               for _ in range(self.c.concurrency)]
                    await asyncio.gather(*workers, return_exceptions=True)
                watcher.cancel()
        finally:
            restore()
        self._finish(started_at)
        return self.status

    async def _guarded(self, coro: Any) -> None:
        """Run one task; an error stops the whole run with a readable message instead of escaping."""
        task = asyncio.ensure_future(coro)
        self.tasks.append(task)
        try:
            await task
        except asyncio.CancelledError:
            pass  # cancelled by the watcher: the run is stopping, what is written stays written
        except Exception as exc:  # recorded as the run's failure and shown; the run stops cleanly
            self._fail(exc)
            async with self.cond:
                self.cond.notify_all()

    async def _setup(self) -> None:
        """The custom template's first call: the teacher writes the examples' system prompt."""
        setup = self.t.setup
        wanted = list(setup.schema.get("properties", {})) if setup else []
        if not setup or all(str(self.variables.get(k, "")).strip() for k in wanted):
            return
        messages = prompts.setup_messages(self.t, self.variables)
        reply = await self.teacher.complete(messages, schema=setup.schema, name=f"{self.t.name}_setup",
                                            max_tokens=self.max_tokens)
        self.meter.settle(0.0, messages, reply.text, reply.input_tokens, reply.output_tokens)
        parsed = parse_answer(reply.text, setup.schema, finish_reason=reply.finish_reason)
        if isinstance(parsed, ParseFailure):
            self._record_failure("setup", -1, parsed.reason, parsed.raw)
            raise ProviderError(f"The teacher's system prompt for this task did not parse ({parsed.reason}). "
                                "Write the system prompt yourself, or use a stronger teacher.")
        outputs = {k: str(parsed[k]).strip() for k in wanted}
        self.variables.update(outputs)
        self.state["setup_outputs"] = outputs  # a resumed run keeps the same system prompt

    async def _worker(self) -> None:
        per_request = self.c.per_request(self.variables)
        while True:
            async with self.cond:
                await self.cond.wait_for(lambda: self._done() or self.status.written + self.claimed < self.c.n)
                if self._done():
                    return
                claim = min(per_request, self.c.n - self.status.written - self.claimed)
                self.claimed += claim
                index, self.next_index = self.next_index, self.next_index + 1
                self.status.in_flight += 1
            try:
                await self._request(index)
            finally:
                async with self.cond:
                    self.claimed -= claim
                    self.status.in_flight -= 1
                    self.cond.notify_all()
            self._emit()

    def _done(self) -> bool:
        if self.stop_reason is None and self._failures() >= self.max_failures:
            self.stop_reason = "failed"
            self.status.message = (f"Stopped after {self._failures()} unusable replies; the teacher is not "
                                   f"following the template. Try a stronger teacher model. "
                                   f"Details in {self.files.failed_path.name}.")
        return self.stop_reason is not None or self.status.written >= self.c.n

    def _failures(self) -> int:
        s = self.status
        return s.failed_parse + s.duplicates_dropped + s.check_dropped + s.failed_calls

    async def _request(self, index: int) -> None:
        source = steps.source_for(self.t, self.c.sources, index)
        messages = steps.request_messages(self.t, self.variables, seed=self.c.seed, index=index,
                                          recent=self.recent, sources=self.c.sources,
                                          sample_size=self.c.sample_size)
        check_worst = self.meter.price(self.max_tokens + 300, self.max_tokens, self.c.check_model) \
            if self.checker else 0.0
        held = self.meter.try_hold(messages, self.max_tokens, extra=check_worst)
        if held is None:
            self._stop_for_budget()
            return
        try:
            reply = await self.teacher.complete(messages, schema=self.schema, name=self.t.name,
                                                max_tokens=self.max_tokens,
                                                seed=self.c.seed + index if self.c.sampling_seed else None)
        except CallFailed as exc:
            self.meter.release(held)
            self.status.failed_calls += 1
            self._record_failure("call", index, str(exc), "")
            return
        except BaseException:
            self.meter.release(held)
            raise
        self.meter.settle(held - check_worst, messages, reply.text, reply.input_tokens, reply.output_tokens)
        built, unusable = steps.examples_from_reply(self.t, self.variables, reply, source)
        if unusable is not None:  # kept with its reason for review, not written
            self._record_failure("parse", index, unusable.reason, unusable.raw)
        if not built:
            self.meter.release(check_worst)
            self.status.failed_parse += 1
            return
        for example, final in built:
            if self.status.written >= self.c.n:
                break
            await self._keep(index, example, final, check_worst)
            check_worst = 0.0  # the hold covered one check; later items are checked unheld
        self.meter.release(check_worst)

    async def _keep(self, index: int, example: dict, final: str | None, check_hold: float) -> None:
        if reason := self.dedup.duplicate_reason(example):
            self.meter.release(check_hold)
            self.status.duplicates_dropped += 1
            self._record_failure("duplicate", index, reason, "", example)
            return
        if self.checker is None or final is None:
            self.meter.release(check_hold)
        else:
            agree, theirs, reply = await check_example(self.checker, example, final, max_tokens=self.max_tokens)
            self.meter.settle(check_hold, [], reply.text, reply.input_tokens, reply.output_tokens,
                              self.c.check_model)
            if not agree:
                self.status.check_dropped += 1
                self._record_failure("check", index, f"final answers disagree: {final!r} vs checker "
                                     f"{theirs!r}", reply.text, example)
                return
            # Another worker may have filled the run or written a near twin while we waited.
            if self.status.written >= self.c.n:
                return
            if reason := self.dedup.duplicate_reason(example):
                self.status.duplicates_dropped += 1
                self._record_failure("duplicate", index, reason, "", example)
                return
        self.files.write_example(example, final, {"template": self.t.name, "request": index})
        self.dedup.add(example)
        self.recent = (self.recent + [example])[-RECENT_KEEP:]
        self.status.written += 1
        self.status.new += 1
        self.status.new_examples.append(example)

    def _record_failure(self, kind: str, index: int, reason: str, raw: str, example: dict | None = None) -> None:
        record = {"kind": kind, "template": self.t.name, "request": index, "reason": reason, "raw": raw,
                  "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if example is not None:
            record["example"] = example
        self.files.write_failure(record)
        self.status.new_failures.append(record)

    def _stop_for_budget(self) -> None:
        if self.stop_reason is None:
            self.stop_reason = "budget"
            self.status.message = (f"Stopped before going over the budget of ${self.c.budget_usd:.4f} "
                                   f"(spent ${self.meter.spent:.4f}). Raise the budget to make the rest.")

    def _fail(self, exc: BaseException) -> None:
        if self.stop_reason is None:
            self.stop_reason = "failed"
            self.status.message = explain(exc)

    # -- cancel, progress, provenance --------------------------------------------------------------
    async def _watch(self) -> None:
        last = 0.0
        while True:
            if self.cancel.is_set() and self.stop_reason is None:
                self.stop_reason = "cancelled"
                self.status.message = "Stopped by the user; every finished example is kept."
            if self.stop_reason in ("cancelled", "failed"):
                for task in self.tasks:
                    task.cancel()
                return
            if time.monotonic() - last >= 0.5:  # retries happen between examples: show them too
                self._emit()
                last = time.monotonic()
            await asyncio.sleep(0.05)

    def _sync_counts(self) -> None:
        s, st = self.status, self.teacher.stats
        s.retries, s.rate_limited = st.retries, st.rate_limited
        s.cost_usd, s.input_tokens, s.output_tokens = self.meter.spent, self.meter.input_tokens, self.meter.output_tokens
        s.concurrency_limit = int(self.teacher.limiter.limit)
        s.structured_output = self.teacher.mode
        s.elapsed_s = round(time.monotonic() - self.started, 3)

    def _emit(self) -> None:
        if self.on_progress is not None:
            self._sync_counts()
            self.on_progress(self.status.snapshot())

    def _finish(self, started_at: str) -> None:
        self._sync_counts()
        s = self.status
        s.state = self.stop_reason or "done"
        if s.state == "done" and not s.complete:
            s.state = "failed"
        if s.state == "done":
            s.message = s.message or f"Done: {s.summary()}."
        self.state["requests_made"] = self.next_index
        self.state.setdefault("runs", []).append(provenance(self.c, self.variables, s, self.teacher, started_at))
        self.files.save_state(self.state)
        self._emit_final()

    def _emit_final(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.status.snapshot())
