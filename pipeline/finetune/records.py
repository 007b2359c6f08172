"""Which jobs belong to which visitor: a small record in their workspace, plus the provider's list.

The browser keeps recent job ids too (gr.BrowserState), but a visitor who clears their browser or
opens another one still finds their jobs here; and jobs started elsewhere (the CLI, OpenAI's
dashboard) come from the provider's own list. On the shared local backend the provider's list holds
every visitor's jobs, so only jobs tagged with this visitor's tag (job metadata) are shown there.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import openai

from pipeline import workspace
from pipeline.providers import OWNER_META_KEY

META_KEY = OWNER_META_KEY  # job metadata key of the owner's tag (pipeline.providers)
_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


def visitor_tag(visitor_id: str) -> str:
    """A stable tag for job metadata that does not reveal the visitor's id (it names their folder)."""
    return hashlib.sha256(visitor_id.encode("utf-8")).hexdigest()[:16]


def _path(visitor_id: str) -> Path:
    return workspace.visitor_dir(visitor_id, "finetune") / "jobs.json"


def _read(path: Path) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def record_job(visitor_id: str, job_id: str, **fields: Any) -> dict[str, Any]:
    """Create or update the visitor's record of a job (endpoint, base_model, status, ...)."""
    path = _path(visitor_id)
    with _locks[str(path)]:
        records = _read(path)
        record = records.setdefault(job_id, {"job_id": job_id, "recorded_at": int(time.time())})
        record.update({k: v for k, v in fields.items() if v is not None})
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(records, fh, indent=1)
        os.replace(tmp, path)
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


def known_jobs(client: Any, endpoint: str, visitor_id: str | None,
               recent: list[dict[str, Any]] | None, *, shared: bool) -> list[dict[str, Any]]:
    """Jobs this visitor can re-open on one endpoint, newest first: `{job_id, status, model, ...}`.

    From the provider's list (all of them on a private endpoint; only this visitor's tagged ones on
    a `shared` one) plus the ids the browser and the workspace remember, which the provider's first
    page may no longer show.
    """
    from pipeline.finetune.jobs import list_jobs, retrieve_job

    mine = {r["job_id"] for r in (recent or []) if isinstance(r, dict) and r.get("endpoint") == endpoint}
    if visitor_id:
        mine |= {r["job_id"] for r in recorded_jobs(visitor_id) if r.get("endpoint") == endpoint}
    tag = visitor_tag(visitor_id) if visitor_id else None
    found: dict[str, Any] = {}
    for job in list_jobs(client, limit=50):
        tagged = (job.metadata or {}).get(META_KEY) == tag if tag else False
        if job.id in mine or tagged or not shared:
            found[job.id] = job
    for job_id in mine - set(found):
        try:
            found[job_id] = retrieve_job(client, job_id)
        except openai.NotFoundError:  # a job the provider forgot is simply not listed
            continue
    rows = [{"job_id": j.id, "status": j.status, "model": j.model, "fine_tuned_model": j.fine_tuned_model,
             "created_at": j.created_at} for j in found.values()]
    return sorted(rows, key=lambda r: r["created_at"] or 0, reverse=True)
