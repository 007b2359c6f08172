"""Watch a job: one call returns a snapshot of everything the tab and the CLI show.

The job lives on the provider, so watching is just polling: the caller passes the previous snapshot
back in, and only new events are fetched. A network problem (connection, timeout, 5xx, 429) does not
raise: the snapshot comes back with `warning` set and `next_poll_s()` grown (exponential backoff,
or the provider's Retry-After), and the caller polls again. Errors that polling again cannot fix
(401, 404) do raise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pipeline.errors import explain, retry_after_seconds
from pipeline.finetune import jobs as ft
from pipeline.finetune.metrics import rows_from_csv, rows_from_events, total_steps_from_events

BASE_POLL_S = 3.0
MAX_POLL_S = 60.0


def transient_errors() -> tuple[type[Exception], ...]:
    """Problems that waiting fixes: keep the watcher alive through them. (openai imported here, not at
    the top: its types cost ~1 s of the app's first page.)"""
    import openai

    return openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError


@dataclass
class JobSnapshot:
    job_id: str
    status: str = "unknown"
    base_model: str | None = None
    #: The job has a validation file (its loss series shows once the provider reports it).
    has_validation: bool = False
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    created_at: int | None = None
    finished_at: int | None = None
    step: int | None = None
    total_steps: int | None = None
    elapsed_s: float | None = None
    remaining_s: float | None = None
    #: Oldest first: {id, created_at, level, type, message, data}.
    events: list[dict[str, Any]] = field(default_factory=list)
    #: Rows of pipeline.finetune.metrics (step, train_loss, valid_loss, accuracy, valid_accuracy).
    metrics: list[dict[str, Any]] = field(default_factory=list)
    #: {id, step, model, train_loss, valid_loss, created_at}
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    #: The provider's reason when the job failed.
    error: str | None = None
    #: Set when this poll could not reach the provider; the rest is the last known state.
    warning: str | None = None
    failures: int = 0
    retry_after_s: float | None = None
    #: Jobs ahead of this one on the endpoint while it waits (shared local backend queue).
    queue_ahead: int | None = None
    results_read: bool = False

    @property
    def finished(self) -> bool:
        return self.status in ft.TERMINAL

    def next_poll_s(self, base: float = BASE_POLL_S) -> float:
        """Seconds to wait before the next poll: backoff after failures, never below Retry-After."""
        delay = min(MAX_POLL_S, base * 2 ** self.failures)
        return max(delay, self.retry_after_s or 0.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSnapshot:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _event_dict(event: Any) -> dict[str, Any]:
    data = getattr(event, "data", None)
    return {"id": event.id, "created_at": event.created_at, "level": getattr(event, "level", "info"),
            "type": getattr(event, "type", None) or "message", "message": event.message,
            "data": data if isinstance(data, dict) else None}


def _checkpoint_dict(ckpt: Any) -> dict[str, Any]:
    metrics = ckpt.metrics
    return {"id": ckpt.id, "step": ckpt.step_number, "model": ckpt.fine_tuned_model_checkpoint,
            "train_loss": getattr(metrics, "train_loss", None),
            "valid_loss": getattr(metrics, "valid_loss", None) or getattr(metrics, "full_valid_loss", None),
            "created_at": ckpt.created_at}


def _queue_ahead(client: Any, job: Any) -> int | None:
    """How many jobs the provider will run before this one, when it is waiting.

    A backend may say so itself (`queue_position`, 1 = next); otherwise count the active jobs
    created before this one in the provider's list (the embedded backend runs one at a time).
    """
    if job.status not in ("queued", "validating_files"):
        return None
    extra = getattr(job, "model_extra", None) or {}
    if isinstance(extra.get("queue_position"), int):
        return max(0, extra["queue_position"] - 1)
    ahead = [j for j in ft.list_jobs(client, limit=100)
             if j.id != job.id and j.status in ft.ACTIVE and j.created_at <= job.created_at]
    return len(ahead)


def _timing(snap: JobSnapshot, job: Any, now: float) -> tuple[float | None, float | None]:
    if not snap.created_at:
        return None, None
    elapsed = max(0.0, (snap.finished_at or now) - snap.created_at)
    if snap.finished:
        return elapsed, 0.0
    estimated_finish = getattr(job, "estimated_finish", None)
    if estimated_finish:
        return elapsed, max(0.0, estimated_finish - now)
    metric_events = [e for e in snap.events if e["type"] == "metrics" and (e["data"] or {}).get("step")]
    if len(metric_events) < 2 or not snap.total_steps or snap.step is None:
        return elapsed, None
    first, last = metric_events[0], metric_events[-1]
    steps = last["data"]["step"] - first["data"]["step"]
    if steps <= 0:
        return elapsed, None
    per_step = (last["created_at"] - first["created_at"]) / steps
    return elapsed, max(0.0, per_step * (snap.total_steps - snap.step))


def watch_job(client: Any, job_id: str, previous: JobSnapshot | None = None, *,
              now: float | None = None) -> JobSnapshot:
    """Poll the provider once and return the job's new snapshot (see the module docstring)."""
    snap = replace(previous) if previous else JobSnapshot(job_id)
    snap.events, snap.metrics = list(snap.events), list(snap.metrics)
    try:
        job = ft.retrieve_job(client, job_id)
        seen = {e["id"] for e in snap.events}
        snap.events += [_event_dict(e) for e in ft.new_events(client, job_id, seen)]
        snap.status, snap.base_model = job.status, job.model
        snap.has_validation = bool(getattr(job, "validation_file", None))
        snap.fine_tuned_model, snap.trained_tokens = job.fine_tuned_model, job.trained_tokens
        snap.created_at, snap.finished_at = job.created_at, job.finished_at
        snap.error = ft.job_error_message(job)
        snap.metrics = rows_from_events(snap.events)
        if job.status in ("running", "succeeded"):
            snap.checkpoints = [_checkpoint_dict(c) for c in ft.list_checkpoints(client, job_id)]
        if job.status == "succeeded" and not snap.results_read:
            text = ft.result_csv(client, job)
            if text:  # the result file has every step; events may have been sampled
                snap.metrics = _merge_rows(rows_from_csv(text), snap.metrics)
            snap.results_read = True
        snap.queue_ahead = _queue_ahead(client, job)
    except transient_errors() as exc:
        snap.failures += 1
        snap.retry_after_s = retry_after_seconds(exc)
        snap.warning = f"{explain(exc)} Still watching: next try in {snap.next_poll_s():.0f} s."
        return snap
    snap.warning, snap.failures, snap.retry_after_s = None, 0, None
    snap.total_steps = total_steps_from_events(snap.events) or snap.total_steps
    steps = [r["step"] for r in snap.metrics]
    snap.step = max(steps) if steps else snap.step
    if snap.status == "succeeded" and snap.total_steps:
        snap.step = snap.total_steps
    snap.elapsed_s, snap.remaining_s = _timing(snap, job, time.time() if now is None else now)
    return snap


def follow_job(client: Any, job_id: str, *, poll_s: float = BASE_POLL_S,
               on_snapshot: Callable[[JobSnapshot], None] | None = None,
               stop: threading.Event | None = None) -> JobSnapshot:
    """Poll until the job ends (or `stop` is set): the one way to follow a job. The CLI and the Start
    tab's demo block in it; the Fine-tune tab's timer asks the same `next_poll_s` between ticks, so all
    three back off alike after failures and never poll sooner than the provider's Retry-After.

    Returns the last snapshot; it is not `finished` only when `stop` was set (the caller cancels)."""
    snap: JobSnapshot | None = None
    while True:
        snap = watch_job(client, job_id, snap)
        if on_snapshot is not None:
            on_snapshot(snap)
        if snap.finished:
            return snap
        delay = snap.next_poll_s(poll_s)
        if stop is None:
            time.sleep(delay)
        elif stop.wait(delay):  # wakes at once when stopped
            return snap


def _merge_rows(primary: list[dict[str, Any]], extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_step = {r["step"]: dict(r) for r in extra}
    for row in primary:
        merged = by_step.setdefault(row["step"], dict(row))
        merged.update({k: v for k, v in row.items() if v is not None})
    return [by_step[s] for s in sorted(by_step)]


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def progress_facts(snap: JobSnapshot) -> list[str]:
    """Step/total, elapsed, time left and queue place, as short phrases (those that are known)."""
    facts = []
    if snap.total_steps:
        facts.append(f"step {snap.step or 0}/{snap.total_steps}")
    if snap.elapsed_s is not None:
        facts.append(f"elapsed {format_duration(snap.elapsed_s)}")
    if snap.remaining_s is not None and not snap.finished:
        facts.append(f"about {format_duration(snap.remaining_s)} left")
    if snap.queue_ahead is not None:
        facts.append(f"{snap.queue_ahead} job(s) ahead in the queue" if snap.queue_ahead else "next in the queue")
    return facts


def progress_line(snap: JobSnapshot) -> str:
    """One human line: status, step/total, elapsed, remaining, queue place."""
    return ", ".join([f"{snap.job_id}: {snap.status}", *progress_facts(snap)])
