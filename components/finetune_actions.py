"""Handlers of the Fine-tune tab. Each returns a dict keyed by component *name*; the tab maps names
to its components (components/finetune.py), so these stay plain functions that tests can call.

The job lives on the provider; the tab only keeps `watch` = {job_id, endpoint, snapshot, next_poll_at}
in gr.State and polls from a gr.Timer. A refresh or a restart loses nothing: `reattach` finds the
visitor's jobs again from the browser's list (gr.BrowserState), the workspace record and the provider.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import gradio as gr

from components.errors import warn
from components.finetune_view import (
    badge_html,
    checkpoints_frame,
    events_frame,
    job_choice,
    loss_chart,
    progress_markdown,
    table_frame,
)
from pipeline import drafts
from pipeline.endpoints import (
    LOCAL_MODEL,
    RoleChoice,
    SessionSettings,
    has_openai_key,
    make_client,
    shared_endpoint,
)
from pipeline.errors import InputError
from pipeline.finetune import jobs as ft
from pipeline.finetune.preflight import ConfirmationNeeded, offered_base_models
from pipeline.finetune.records import (
    check_job,
    claim_model,
    claim_started,
    known_jobs,
    record_job,
    recorded_jobs,
    remember,
    visitor_tag,
)
from pipeline.finetune.session import check_and_preflight, load_examples, start_job
from pipeline.finetune.snippet import usage_snippet
from pipeline.finetune.split import training_split
from pipeline.finetune.watch import BASE_POLL_S, JobSnapshot, watch_job
from pipeline.models import openai_fine_tunable_models

SOURCES = ("Current dataset draft", "Upload a file")
SPLIT_SEED = 42


def fine_tuning_endpoints(settings: SessionSettings) -> list[str]:
    return [n for n, e in settings.endpoints().items() if "fine_tuning" in e.capabilities]


def default_endpoint(settings: SessionSettings) -> str:
    return "openai" if has_openai_key(settings) else "local"


def initial_base_models(settings: SessionSettings) -> list[str]:
    """What the model list shows before the page has loaded the endpoint's own (no network call)."""
    return openai_fine_tunable_models() if default_endpoint(settings) == "openai" else [LOCAL_MODEL]


def _shared(settings: SessionSettings, endpoint: str) -> bool:
    return shared_endpoint(settings, settings.endpoint(endpoint))


def _check_job(settings: SessionSettings, visitor: str | None, endpoint: str, job_id: str) -> None:
    """Only the visitor's own jobs, by the server's records (never the browser's list)."""
    check_job(make_client(settings, endpoint), visitor, job_id, shared=_shared(settings, endpoint))


def _hosted(settings: SessionSettings, endpoint: str, client: Any) -> bool:
    return settings.endpoint(endpoint).provider.uses_openai_catalogue(client.base_url)


def _examples(visitor: str | None, source: str, file: str | None, split: float) -> tuple[list, list, list]:
    """(training, validation, reading problems) from the chosen source, split with a fixed seed."""
    problems: list = []
    if source == SOURCES[1]:
        if not file:
            raise InputError("Upload a training file first, or choose the current dataset draft.")
        read = load_examples(Path(file))
        examples, problems = read.examples, read.problems
    else:
        examples = drafts.load_draft(visitor or "")
        if not examples:
            raise InputError("Your dataset draft is empty. Build one in the Generate or Dataset tab, "
                             "or upload a file here.")
    train, validation, note = training_split(examples, split or 0, seed=SPLIT_SEED)
    if note:  # shown with the preflight's warnings, so the user sees why validation is smaller
        problems = [*problems, {"line": None, "code": "validation_split_lowered", "message": note,
                                "severity": "warning"}]
    return train, validation, problems


def list_base_models(settings: SessionSettings, endpoint: str) -> dict[str, Any]:
    client = make_client(settings, endpoint)
    models = offered_base_models(client, openai_hosted=_hosted(settings, endpoint, client))
    return {"model_dd": gr.Dropdown(choices=models, value=models[0] if models else None)}


def _auto_epochs(settings: SessionSettings, endpoint: str) -> Callable[[int], int] | None:
    return settings.endpoint(endpoint).provider.auto_epochs()


def check_run(settings: SessionSettings, visitor: str | None, source: str, file: str | None,
              split: float, endpoint: str, model: str, epochs: str) -> dict[str, Any]:
    client = make_client(settings, endpoint)
    train, validation, problems = _examples(visitor, source, file, split)
    pre = check_and_preflight(client, train, model, validation=validation, n_epochs=epochs,
                              openai_hosted=_hosted(settings, endpoint, client), read_problems=problems,
                              auto_epochs=_auto_epochs(settings, endpoint))
    return {"preflight_md": "\n".join(f"- {line}" for line in pre.summary_lines())}


def _start(confirmed: bool, settings: SessionSettings, visitor: str | None, recent: list | None,
           source: str, file: str | None, split: float, endpoint: str, model: str, epochs: str,
           batch: str, lr: str, seed: float | None, suffix: str) -> dict[str, Any]:
    client = make_client(settings, endpoint)
    train, validation, problems = _examples(visitor, source, file, split)
    try:
        started = start_job(client, train, model, validation=validation, read_problems=problems,
                            n_epochs=epochs, batch_size=batch, auto_epochs=_auto_epochs(settings, endpoint),
                            learning_rate_multiplier=lr, suffix=suffix, confirmed=confirmed,
                            seed=int(seed) if seed not in (None, "") else None,
                            metadata=settings.endpoint(endpoint).provider.job_metadata(
                                visitor_tag(visitor) if visitor else None),
                            openai_hosted=_hosted(settings, endpoint, client),
                            name=Path(file).stem if source == SOURCES[1] and file else "draft")
    except ConfirmationNeeded as exc:
        return {"confirm_md": f"**{exc}**", "confirm_row": gr.Row(visible=True)}
    job = started.job
    claim_started(visitor, started)
    if visitor:
        record_job(visitor, job.id, endpoint=endpoint, base_model=model, suffix=suffix or None,
                   status=job.status, estimated_cost_usd=started.preflight.estimated_cost_usd)
    watch = {"job_id": job.id, "endpoint": endpoint, "snapshot": None, "next_poll_at": 0.0}
    gr.Info(f"Started job {job.id}.")
    return {"watch_state": watch, "recent_jobs": remember(recent, job.id, endpoint),
            "confirm_row": gr.Row(visible=False), "timer": gr.Timer(active=True),
            "status_html": badge_html(job.status),
            "preflight_md": "\n".join(f"- {line}" for line in started.preflight.summary_lines())}


def start_run(settings: SessionSettings, visitor: str | None, recent: list | None, source: str,
              file: str | None, split: float, endpoint: str, model: str, epochs: str, batch: str, lr: str,
              seed: float | None, suffix: str) -> dict[str, Any]:
    """Start, unless the cost is above the threshold: then ask (the confirm row) first."""
    return _start(False, settings, visitor, recent, source, file, split, endpoint, model, epochs, batch,
                  lr, seed, suffix)


def start_confirmed(settings: SessionSettings, visitor: str | None, recent: list | None, source: str,
                    file: str | None, split: float, endpoint: str, model: str, epochs: str, batch: str,
                    lr: str, seed: float | None, suffix: str) -> dict[str, Any]:
    """Start after the visitor accepted the estimated cost."""
    return _start(True, settings, visitor, recent, source, file, split, endpoint, model, epochs, batch,
                  lr, seed, suffix)


def _snippet(settings: SessionSettings, endpoint: str, client: Any, snap: JobSnapshot) -> str | None:
    if snap.status != "succeeded" or not snap.fine_tuned_model:
        return None
    where = settings.endpoint(endpoint)
    base_url = where.base_url if where.kind == "azure" else str(client.base_url)
    return usage_snippet(snap.fine_tuned_model, kind=where.kind, base_url=base_url,
                         key_env=where.key_env, api_version=where.api_version)


def _render(watch: dict, snap: JobSnapshot, smoothing: bool, snippet: str | None = None) -> dict[str, Any]:
    return {"watch_state": watch, "status_html": badge_html(snap.status),
            "progress_md": progress_markdown(snap, snippet),
            "loss_plot": loss_chart(snap, smoothing), "metrics_df": table_frame(snap),
            "events_df": events_frame(snap), "checkpoints_df": checkpoints_frame(snap),
            "cancel_btn": gr.Button(interactive=not snap.finished)}


def poll_job(settings: SessionSettings, visitor: str | None, watch: dict | None,
             smoothing: bool, recent: list | None = None) -> dict[str, Any]:
    """One timer tick: poll when due (backoff after network errors), stop the timer at the end."""
    if not watch:
        return {"timer": gr.Timer(active=False)}
    if time.time() < watch.get("next_poll_at", 0.0):
        return {"watch_state": watch}  # not due yet (backoff): nothing changes
    previous = JobSnapshot.from_dict(watch["snapshot"]) if watch.get("snapshot") else None
    client = make_client(settings, watch["endpoint"])
    snap = watch_job(client, watch["job_id"], previous)
    if snap.warning and snap.failures == 1:
        gr.Warning(snap.warning)
    watch = {**watch, "snapshot": snap.to_dict(), "next_poll_at": time.time() + snap.next_poll_s(BASE_POLL_S)}
    out = _render(watch, snap, smoothing, _snippet(settings, watch["endpoint"], client, snap))
    if snap.finished:
        out["timer"] = gr.Timer(active=False)
        was = previous.status if previous else None
        if snap.status == "succeeded" and snap.fine_tuned_model and (
                was != "succeeded" or "fine_tuned" not in settings.roles):
            # A new object, not a mutation: gradio spots State changes by hash, and a dataclass
            # hashes by id, so only a new object fires settings.change (the Chat tab follows it).
            out["settings"] = replace(settings, roles={
                **settings.roles, "fine_tuned": RoleChoice(watch["endpoint"], snap.fine_tuned_model)})
            if was is not None:
                gr.Info(f"Job succeeded: {snap.fine_tuned_model} is now the Chat tab's fine-tuned model.")
        if visitor:
            record_job(visitor, snap.job_id, status=snap.status, fine_tuned_model=snap.fine_tuned_model)
            claim_model(visitor, snap.job_id, snap.fine_tuned_model)
        if previous is not None and not previous.finished:
            out |= _jobs_list_quietly(settings, visitor, recent, watch)  # its entry says the new status
    return out


def _jobs_list_quietly(settings: SessionSettings, visitor: str | None, recent: list | None,
                       watch: dict) -> dict[str, Any]:
    """The job list with the watched job selected; nothing if the provider cannot list jobs now
    (the list is a convenience: the ↻ Jobs button says what went wrong)."""
    try:
        listed = refresh_jobs(settings, visitor, recent, watch["endpoint"])["jobs_dd"]
    except Exception:  # noqa: BLE001 - see the docstring
        return {}
    return {"jobs_dd": gr.Dropdown(choices=listed.choices, value=watch["job_id"])}


def follow_jobs(settings: SessionSettings, visitor: str | None, recent: list | None, endpoint: str,
                watch: dict | None, smoothing: bool) -> dict[str, Any]:
    """A job started elsewhere in this session (the Start tab's demo) joins the list, and when this
    tab is watching nothing, or a job that has ended, it watches the new one at once."""
    out = refresh_jobs(settings, visitor, recent, endpoint)
    newest = next((r for r in recent or [] if isinstance(r, dict) and r.get("endpoint") == endpoint), None)
    snap = watch.get("snapshot") if watch else None
    idle = not watch or (snap is not None and snap.get("status") in ft.TERMINAL)
    if newest and idle and (not watch or watch["job_id"] != newest["job_id"]):
        _check_job(settings, visitor, endpoint, newest["job_id"])  # the browser's list names it: check
        new_watch = {"job_id": newest["job_id"], "endpoint": endpoint, "snapshot": None, "next_poll_at": 0.0}
        out |= poll_job(settings, visitor, new_watch, smoothing)
        out.setdefault("timer", gr.Timer(active=True))  # poll_job stops it when the job has ended
        out["jobs_dd"] = gr.Dropdown(choices=out["jobs_dd"].choices, value=newest["job_id"])
    return out


def redraw_chart(watch: dict | None, smoothing: bool) -> dict[str, Any]:
    snap = JobSnapshot.from_dict(watch["snapshot"]) if watch and watch.get("snapshot") else None
    return {"loss_plot": loss_chart(snap, smoothing)}


def open_job(settings: SessionSettings, visitor: str | None, recent: list | None, endpoint: str,
             job_id: str | None) -> dict[str, Any]:
    """Watch a job picked from the list (poll at once: the timer's next tick does it)."""
    if not job_id:
        raise InputError("Pick a job from the list first.")
    _check_job(settings, visitor, endpoint, job_id)
    watch = {"job_id": job_id, "endpoint": endpoint, "snapshot": None, "next_poll_at": 0.0}
    out = poll_job(settings, visitor, watch, False)
    out.setdefault("timer", gr.Timer(active=True))  # poll_job stops it when the job has ended
    return {**out, "recent_jobs": remember(recent, job_id, endpoint)}


def refresh_jobs(settings: SessionSettings, visitor: str | None, recent: list | None,
                 endpoint: str) -> dict[str, Any]:
    client = make_client(settings, endpoint)
    rows = known_jobs(client, endpoint, visitor, recent, shared=_shared(settings, endpoint))
    return {"jobs_dd": gr.Dropdown(choices=[job_choice(r) for r in rows],
                                   value=rows[0]["job_id"] if rows else None)}


def ask_cancel(watch: dict | None) -> dict[str, Any]:
    if not watch:
        raise InputError("No job is being watched.")
    return {"cancel_md": f"Cancel job `{watch['job_id']}`? Training stops and cannot be resumed.",
            "cancel_row": gr.Row(visible=True)}


def cancel_run(settings: SessionSettings, visitor: str | None, watch: dict | None) -> dict[str, Any]:
    if not watch:
        raise InputError("No job is being watched.")
    _check_job(settings, visitor, watch["endpoint"], watch["job_id"])
    job = ft.cancel_job(make_client(settings, watch["endpoint"]), watch["job_id"])
    gr.Info(f"Job {job.id}: {job.status}.")
    return {"cancel_row": gr.Row(visible=False), "status_html": badge_html(job.status),
            "watch_state": {**watch, "next_poll_at": 0.0}, "timer": gr.Timer(active=True)}


def keep_running() -> dict[str, Any]:
    return {"cancel_row": gr.Row(visible=False)}


def reattach(settings: SessionSettings, visitor: str | None, recent: list | None) -> dict[str, Any]:
    """On page load: watch the visitor's latest unfinished job again, and list earlier ones."""
    candidates = [r for r in (recent or []) if isinstance(r, dict) and r.get("job_id")]
    if visitor:
        candidates += [{"job_id": r["job_id"], "endpoint": r.get("endpoint"), "status": r.get("status")}
                       for r in recorded_jobs(visitor)]
    out: dict[str, Any] = {}
    for row in candidates:
        if row.get("status") in ft.TERMINAL or not row.get("endpoint"):
            continue
        try:
            out = open_job(settings, visitor, recent, row["endpoint"], row["job_id"])
        except Exception as exc:  # the page must load even when a provider is down: say so and go on
            warn(exc)
            continue
        if out.get("status_html"):
            break
    try:
        endpoint = out.get("watch_state", {}).get("endpoint") or default_endpoint(settings)
        out |= list_base_models(settings, endpoint) | {"endpoint_dd": endpoint}
        out |= refresh_jobs(settings, visitor, recent, endpoint)
    except Exception as exc:  # same: an unreachable endpoint must not break the page load
        warn(exc)
    return out
