"""Handlers of the Fine-tune tab, in the wiring convention (components/wiring.py): parameters are
component names, results `{name: value}`, so these stay plain functions that tests can call.

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
from components.wiring import outputs
from pipeline import drafts, ownership, workspace
from pipeline.dataset.groups import split_line
from pipeline.endpoints import LOCAL_MODEL, RoleChoice, SessionSettings, make_client, role, shared_endpoint
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

SOURCES = ("Current dataset draft", "Upload a file")
SPLIT_SEED = 42


def fine_tuning_endpoints(settings: SessionSettings) -> list[str]:
    return [n for n, e in settings.endpoints().items() if "fine_tuning" in e.capabilities]


def default_endpoint(settings: SessionSettings) -> str:
    """The base role's endpoint when it can fine-tune, else the first that can (local always can)."""
    names = fine_tuning_endpoints(settings)
    base = role(settings, "base").endpoint
    return base if base in names else (names[0] if names else "local")


def initial_base_models(settings: SessionSettings) -> list[str]:
    """What the model list shows before the page has loaded the endpoint's own (no network call)."""
    base = role(settings, "base")
    return [base.model] if base.endpoint == default_endpoint(settings) else [LOCAL_MODEL]


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


@outputs("model_dd")
def list_base_models(settings: SessionSettings, endpoint_dd: str, model_dd: str | None = None) -> dict[str, Any]:
    """The endpoint's fine-tunable models; the one shown stays if offered, else the base role's."""
    client = make_client(settings, endpoint_dd)
    models = offered_base_models(client, openai_hosted=_hosted(settings, endpoint_dd, client))
    return {"model_dd": gr.Dropdown(choices=models, value=_pick_model(settings, endpoint_dd, model_dd, models),
                                    allow_custom_value=True)}


def _pick_model(settings: SessionSettings, endpoint: str, current: str | None, models: list[str]) -> str | None:
    """The visitor's pick if the endpoint offers it, else the base role's model there, else the first."""
    base = role(settings, "base")
    for wanted in (current, base.model if base.endpoint == endpoint else None):
        if wanted and wanted in models:
            return wanted
    if base.endpoint == endpoint and base.model:
        return base.model  # a model the list does not show (an alias, a deployment) is still the visitor's
    return models[0] if models else current


@outputs("endpoint_dd", "model_dd", "base_seen")
def follow_settings(settings: SessionSettings, endpoint_dd: str | None, base_seen: list | None) -> dict[str, Any]:
    """Settings changed (any tab): the endpoint list is the visitor's now; when the base role changed,
    the pickers move to it (a pick made here is not undone by an unrelated change)."""
    names = fine_tuning_endpoints(settings)
    base = role(settings, "base")
    moved = list(base_seen or []) != [base.endpoint, base.model]
    out: dict[str, Any] = {"base_seen": [base.endpoint, base.model]}
    if moved and base.endpoint in names:
        out |= {"endpoint_dd": gr.Dropdown(choices=names, value=base.endpoint),
                "model_dd": gr.Dropdown(choices=[base.model], value=base.model, allow_custom_value=True)}
    else:
        keep = endpoint_dd if endpoint_dd in names else default_endpoint(settings)
        out["endpoint_dd"] = gr.Dropdown(choices=names, value=keep)
    return out


def _auto_epochs(settings: SessionSettings, endpoint: str) -> Callable[[int], int] | None:
    return settings.endpoint(endpoint).provider.auto_epochs()


@outputs("preflight_md")
def check_run(settings: SessionSettings, visitor: str | None, source_radio: str, upload_file: str | None,
              split_sl: float, endpoint_dd: str, model_dd: str, epochs_box: str) -> dict[str, Any]:
    client = make_client(settings, endpoint_dd)
    train, validation, problems = _examples(visitor, source_radio, upload_file, split_sl)
    pre = check_and_preflight(client, train, model_dd, validation=validation, n_epochs=epochs_box,
                              openai_hosted=_hosted(settings, endpoint_dd, client), read_problems=problems,
                              auto_epochs=_auto_epochs(settings, endpoint_dd),
                              threshold_usd=settings.confirm_above_usd)
    lines = pre.summary_lines()
    if validation:  # the split keeps rewordings of one lesson together (issue 15): say how it went
        lines.insert(1, split_line(train, validation))
    return {"preflight_md": "\n".join(f"- {line}" for line in lines)}


START_OUTPUTS = ("watch_state", "recent_jobs", "confirm_row", "confirm_md", "timer", "status_html", "preflight_md")


@outputs(*START_OUTPUTS)
def start_run(settings: SessionSettings, visitor: str | None, recent_jobs: list | None, source_radio: str,
              upload_file: str | None, split_sl: float, endpoint_dd: str, model_dd: str, epochs_box: str,
              batch_box: str, lr_box: str, seed_num: float | None, suffix_box: str,
              confirmed: bool = False) -> dict[str, Any]:
    """Start, unless the cost is above the threshold: then ask (the confirm row) first. The confirm
    button is wired with `confirmed` = True (a gr.State): the visitor accepted the estimated cost."""
    endpoint, model = endpoint_dd, model_dd  # short names for the many uses below
    if ownership.multi_user():  # a job no verified visitor owns would be nobody's: refuse it up front
        workspace.visitor_dir(visitor or "")
    client = make_client(settings, endpoint)
    train, validation, problems = _examples(visitor, source_radio, upload_file, split_sl)
    try:
        started = start_job(client, train, model, validation=validation, read_problems=problems,
                            n_epochs=epochs_box, batch_size=batch_box, auto_epochs=_auto_epochs(settings, endpoint),
                            learning_rate_multiplier=lr_box, suffix=suffix_box, confirmed=confirmed,
                            threshold_usd=settings.confirm_above_usd,
                            seed=int(seed_num) if seed_num not in (None, "") else None,
                            metadata=settings.endpoint(endpoint).provider.job_metadata(
                                visitor_tag(visitor) if visitor else None),
                            openai_hosted=_hosted(settings, endpoint, client),
                            name=Path(upload_file).stem if source_radio == SOURCES[1] and upload_file else "draft")
    except ConfirmationNeeded as exc:
        return {"confirm_md": f"**{exc}**", "confirm_row": gr.Row(visible=True)}
    job = started.job
    claim_started(visitor, started)
    if visitor:
        record_job(visitor, job.id, endpoint=endpoint, base_model=model, suffix=suffix_box or None,
                   status=job.status, estimated_cost_usd=started.preflight.estimated_cost_usd)
    watch = {"job_id": job.id, "endpoint": endpoint, "snapshot": None, "next_poll_at": 0.0}
    gr.Info(f"Started job {job.id}.")
    return {"watch_state": watch, "recent_jobs": remember(recent_jobs, job.id, endpoint),
            "confirm_row": gr.Row(visible=False), "timer": gr.Timer(active=True),
            "status_html": badge_html(job.status),
            "preflight_md": "\n".join(f"- {line}" for line in started.preflight.summary_lines())}


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


POLL_OUTPUTS = ("watch_state", "status_html", "progress_md", "loss_plot", "metrics_df", "events_df",
                "checkpoints_df", "cancel_btn", "timer", "settings", "jobs_dd")


@outputs(*POLL_OUTPUTS)
def poll_job(settings: SessionSettings, visitor: str | None, watch_state: dict | None,
             smooth_chk: bool, recent_jobs: list | None = None) -> dict[str, Any]:
    """One timer tick: poll when due (backoff after network errors), stop the timer at the end."""
    watch, smoothing, recent = watch_state, smooth_chk, recent_jobs
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


@outputs(*POLL_OUTPUTS)
def follow_jobs(settings: SessionSettings, visitor: str | None, recent_jobs: list | None, endpoint_dd: str,
                watch_state: dict | None, smooth_chk: bool) -> dict[str, Any]:
    """A job started elsewhere in this session (the Start tab's demo) joins the list, and when this
    tab is watching nothing, or a job that has ended, it watches the new one at once."""
    recent, endpoint, watch, smoothing = recent_jobs, endpoint_dd, watch_state, smooth_chk
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


@outputs("loss_plot")
def redraw_chart(watch_state: dict | None, smooth_chk: bool) -> dict[str, Any]:
    snap = JobSnapshot.from_dict(watch_state["snapshot"]) if watch_state and watch_state.get("snapshot") else None
    return {"loss_plot": loss_chart(snap, smooth_chk)}


@outputs(*POLL_OUTPUTS, "recent_jobs")
def open_job(settings: SessionSettings, visitor: str | None, recent_jobs: list | None, endpoint_dd: str,
             jobs_dd: str | None) -> dict[str, Any]:
    """Watch a job picked from the list (poll at once: the timer's next tick does it)."""
    recent, endpoint, job_id = recent_jobs, endpoint_dd, jobs_dd
    if not job_id:
        raise InputError("Pick a job from the list first.")
    _check_job(settings, visitor, endpoint, job_id)
    watch = {"job_id": job_id, "endpoint": endpoint, "snapshot": None, "next_poll_at": 0.0}
    out = poll_job(settings, visitor, watch, False)
    out.setdefault("timer", gr.Timer(active=True))  # poll_job stops it when the job has ended
    return {**out, "recent_jobs": remember(recent, job_id, endpoint)}


@outputs("jobs_dd")
def refresh_jobs(settings: SessionSettings, visitor: str | None, recent_jobs: list | None,
                 endpoint_dd: str) -> dict[str, Any]:
    recent, endpoint = recent_jobs, endpoint_dd
    client = make_client(settings, endpoint)
    rows = known_jobs(client, endpoint, visitor, recent, shared=_shared(settings, endpoint))
    return {"jobs_dd": gr.Dropdown(choices=[job_choice(r) for r in rows],
                                   value=rows[0]["job_id"] if rows else None)}


@outputs("cancel_md", "cancel_row")
def ask_cancel(watch_state: dict | None) -> dict[str, Any]:
    if not watch_state:
        raise InputError("No job is being watched.")
    return {"cancel_md": f"Cancel job `{watch_state['job_id']}`? Training stops and cannot be resumed.",
            "cancel_row": gr.Row(visible=True)}


@outputs("cancel_row", "status_html", "watch_state", "timer")
def cancel_run(settings: SessionSettings, visitor: str | None, watch_state: dict | None) -> dict[str, Any]:
    watch = watch_state
    if not watch:
        raise InputError("No job is being watched.")
    _check_job(settings, visitor, watch["endpoint"], watch["job_id"])
    job = ft.cancel_job(make_client(settings, watch["endpoint"]), watch["job_id"])
    gr.Info(f"Job {job.id}: {job.status}.")
    return {"cancel_row": gr.Row(visible=False), "status_html": badge_html(job.status),
            "watch_state": {**watch, "next_poll_at": 0.0}, "timer": gr.Timer(active=True)}


@outputs("cancel_row")
def keep_running() -> dict[str, Any]:
    return {"cancel_row": gr.Row(visible=False)}


@outputs(*POLL_OUTPUTS, "recent_jobs", "endpoint_dd", "model_dd")
def reattach(settings: SessionSettings, visitor: str | None, recent_jobs: list | None) -> dict[str, Any]:
    """On page load: watch the visitor's latest unfinished job again, and list earlier ones."""
    recent = recent_jobs
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
        out |= list_base_models(settings, endpoint) | {
            "endpoint_dd": gr.Dropdown(choices=fine_tuning_endpoints(settings), value=endpoint)}
        out |= refresh_jobs(settings, visitor, recent, endpoint)
    except Exception as exc:  # same: an unreachable endpoint must not break the page load
        warn(exc)
    return out
