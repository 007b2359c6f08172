"""Which jobs belong to which visitor: a small record in their workspace, plus the provider's list.

The browser keeps recent job ids too (gr.BrowserState), but that list is the client's: it only
says which jobs to show first, never which ones the visitor may see. What a visitor may see and act
on comes from the server's records (pipeline.ownership): who created each job, file and model.
Jobs started elsewhere (the CLI, OpenAI's dashboard) come from the provider's own list, and are
shown only where the app has one user or the endpoint is the visitor's own account.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from pipeline import atomic, ownership, workspace
from pipeline.ownership import visitor_tag
from pipeline.providers import OWNER_META_KEY

META_KEY = OWNER_META_KEY  # job metadata key of the owner's tag (pipeline.providers)
__all__ = ["META_KEY", "visitor_tag", "record_job", "recorded_jobs", "remember", "known_jobs",
           "check_job", "claim_started", "claim_model", "check_model"]
_CHECKPOINT = re.compile(r":ckpt-step-\d+$")


def _path(visitor_id: str) -> Path:
    return workspace.visitor_dir(visitor_id, "finetune") / "jobs.json"


def _read(path: Path) -> dict[str, dict[str, Any]]:
    return atomic.read_json(path, {})


def record_job(visitor_id: str, job_id: str, **fields: Any) -> dict[str, Any]:
    """Create or update the visitor's record of a job (endpoint, base_model, status, ...)."""
    path = _path(visitor_id)
    with atomic.locked(path):
        records = _read(path)
        record = records.setdefault(job_id, {"job_id": job_id, "recorded_at": int(time.time())})
        record.update({k: v for k, v in fields.items() if v is not None})
        atomic.write_json(path, records)
    return record


def recorded_jobs(visitor_id: str) -> list[dict[str, Any]]:
    """The visitor's recorded jobs, newest first."""
    records = _read(_path(visitor_id))
    return sorted(records.values(), key=lambda r: r.get("recorded_at", 0), reverse=True)


def remember(recent: list[dict[str, Any]] | None, job_id: str, endpoint: str,
             keep: int = 20) -> list[dict[str, Any]]:
    """The browser's list of recent jobs with this one first (what gr.BrowserState stores)."""
    rest = [r for r in (recent or []) if isinstance(r, dict) and r.get("job_id") != job_id]
    return [{"job_id": job_id, "endpoint": endpoint}, *rest][:keep]


def claim_started(visitor_id: str | None, started: Any) -> None:
    """The server's record that this visitor made the job and its uploaded files (pipeline.session.Started)."""
    ownership.claim(visitor_id, "job", started.job.id)
    for file_id in (started.training_file, started.validation_file):
        ownership.claim(visitor_id, "file", file_id)


def _tag(job: Any) -> str | None:
    return (getattr(job, "metadata", None) or {}).get(META_KEY)


def check_job(client: Any, visitor_id: str | None, job_id: str, *, shared: bool) -> None:
    """Refuse a job this visitor may not see or act on (InputError, as for an id that does not exist).

    From the server's record; for a job made before the record existed, the visitor tag the app
    itself put in the job's metadata when it created it."""
    if not ownership.isolated(shared) or ownership.owner_tag("job", job_id) is not None:
        ownership.require(visitor_id, "job", job_id, shared=shared)
        return
    import openai  # here, not at the top: the SDK's types cost ~1 s of the app's first page

    from pipeline.finetune.jobs import retrieve_job

    try:
        tag = _tag(retrieve_job(client, job_id))
    except openai.NotFoundError:
        tag = None
    ownership.require(visitor_id, "job", job_id, shared=shared, tag=tag)


def claim_model(visitor_id: str | None, job_id: str, model: str | None) -> None:
    """A finished job's model belongs to whoever made the job (never to a mere watcher of it)."""
    if visitor_id and model and ownership.owner_tag("job", job_id) == visitor_tag(visitor_id):
        ownership.claim(visitor_id, "model", model)


def check_model(client: Any, visitor_id: str | None, model: str, *, shared: bool) -> None:
    """Refuse a fine-tuned model (or one of its checkpoints) that another visitor's job made, or that
    no visitor made (the operator's), where the endpoint is shared. Base models are everyone's."""
    if not ownership.isolated(shared) or not model.startswith("ft:"):
        return
    made = _CHECKPOINT.sub("", model)
    if ownership.owner_tag("model", made) is None and visitor_id:
        # Not recorded yet (the job ended while no page watched it): ask the provider about the
        # visitor's own jobs, and record what they made.
        import openai

        from pipeline.finetune.jobs import retrieve_job

        for job_id in ownership.owned(visitor_id, "job"):
            try:
                job = retrieve_job(client, job_id)
            except openai.OpenAIError:
                continue
            claim_model(visitor_id, job_id, job.fine_tuned_model)
    ownership.require(visitor_id, "model", made, shared=shared)


def known_jobs(client: Any, endpoint: str, visitor_id: str | None,
               recent: list[dict[str, Any]] | None, *, shared: bool) -> list[dict[str, Any]]:
    """Jobs this visitor can re-open on one endpoint, newest first: `{job_id, status, model, ...}`.

    From the provider's list (all of them where nothing is isolated; only this visitor's where the
    app has several users and the endpoint is `shared`: pipeline.ownership.isolated) plus the ids
    the server's records (and, where nothing is isolated, the browser) remember, which the
    provider's first page may no longer show.
    """
    import openai

    from pipeline.finetune.jobs import list_jobs, retrieve_job

    isolated = ownership.isolated(shared)
    # The browser's list only where nothing is hidden anyway (one user, or the visitor's own account).
    mine = set() if isolated else {r["job_id"] for r in (recent or [])
                                   if isinstance(r, dict) and isinstance(r.get("job_id"), str)
                                   and r.get("endpoint") == endpoint}
    if visitor_id:
        mine |= {r["job_id"] for r in recorded_jobs(visitor_id) if r.get("endpoint") == endpoint}
        mine |= ownership.owned(visitor_id, "job") if isolated else set()
    mine = set(ownership.visible(visitor_id, "job", mine, shared=shared)) if isolated else mine
    found: dict[str, Any] = {}
    for job in list_jobs(client, limit=50):
        if job.id in mine or ownership.may_use(visitor_id, "job", job.id, shared=shared, tag=_tag(job)):
            found[job.id] = job
    for job_id in mine - set(found):
        try:
            found[job_id] = retrieve_job(client, job_id)
        except openai.NotFoundError:  # a job the provider forgot is simply not listed
            continue
    rows = [{"job_id": j.id, "status": j.status, "model": j.model, "fine_tuned_model": j.fine_tuned_model,
             "created_at": j.created_at} for j in found.values()]
    return sorted(rows, key=lambda r: r["created_at"] or 0, reverse=True)
