"""`python -m pipeline jobs list|show|cancel|wait ...`: fine-tuning jobs that already exist.

- `jobs list [--limit N]`: the provider's most recent jobs, newest first.
- `jobs show JOB_ID`: one job with its events, metrics and checkpoints.
- `jobs cancel JOB_ID`: ask the provider to stop it.
- `jobs wait JOB_ID [--poll S]`: follow it to the end (progress on stderr), as `finetune --wait` does.

--json prints one object: `jobs` (a list) for `list`; for the others the job's job_id, status,
model, fine_tuned_model, trained_tokens, error (`show`/`wait` add events, metrics, checkpoints).
Exit 0 when it worked (`wait`: the job succeeded), 1 when the provider refused or the job failed or
was cancelled, 2 bad usage or an unknown job id.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

import openai

from pipeline.commands import add_endpoint_flags, emit_json, openai_client, progress
from pipeline.commands.finetune import _follow  # the same follower as `finetune --wait`
from pipeline.errors import explain
from pipeline.finetune import jobs as ft
from pipeline.finetune.watch import JobSnapshot, watch_job


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("jobs", help="list, show, cancel or wait for fine-tuning jobs",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="the most recent jobs, newest first")
    listing.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    for name, helptext in (("show", "one job with its events and metrics"), ("cancel", "stop a job"),
                           ("wait", "follow a job until it ends")):
        one = sub.add_parser(name, help=helptext)
        one.add_argument("job_id")
        if name == "wait":
            one.add_argument("--poll", type=float, default=5.0, help="seconds between status checks")
    for action in sub.choices.values():
        add_endpoint_flags(action)
        action.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=run)


def job_dict(job: Any) -> dict[str, Any]:
    """The keys `finetune --json` uses, plus when it was created and finished."""
    return {"job_id": job.id, "status": job.status, "model": job.model,
            "fine_tuned_model": job.fine_tuned_model, "trained_tokens": job.trained_tokens,
            "error": ft.job_error_message(job), "created_at": job.created_at,
            "finished_at": job.finished_at}


def snapshot_dict(snap: JobSnapshot) -> dict[str, Any]:
    return {"job_id": snap.job_id, "status": snap.status, "model": snap.base_model,
            "fine_tuned_model": snap.fine_tuned_model, "trained_tokens": snap.trained_tokens,
            "error": snap.error, "created_at": snap.created_at, "finished_at": snap.finished_at,
            "events": snap.events, "metrics": snap.metrics, "checkpoints": snap.checkpoints}


def _when(ts: int | None) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if ts else "-"


def _print_job(job: dict[str, Any]) -> None:
    print(f"{job['job_id']}  {job['status']:<16} {job['model']}  created {_when(job['created_at'])}")
    if job["fine_tuned_model"]:
        print(f"  fine-tuned model: {job['fine_tuned_model']}")
    if job["error"]:
        print(f"  {job['error']}")


def run(args: argparse.Namespace) -> int:
    client = openai_client(args)
    try:
        if args.action == "list":
            if args.limit < 1:
                progress("error: --limit must be at least 1.")
                return 2
            listed = [job_dict(j) for j in ft.list_jobs(client, limit=args.limit)]
            if args.json:
                emit_json({"jobs": listed})
            elif not listed:
                print("No fine-tuning jobs yet. Start one with `python -m pipeline finetune PATH --model M`.")
            for job in [] if args.json else listed:
                _print_job(job)
            return 0
        if args.action == "cancel":
            out = job_dict(ft.cancel_job(client, args.job_id))
            code = 0
        elif args.action == "show":
            out, code = snapshot_dict(watch_job(client, args.job_id)), 0
        else:
            try:
                snap = _follow(client, args.job_id, args.poll)
            except KeyboardInterrupt:
                progress(f"Stopped watching. The job goes on at the provider: {args.job_id}")
                return 1
            out = snapshot_dict(snap)
            code = 0 if snap.status == "succeeded" else 1
    except openai.NotFoundError as exc:
        return _fail(args, f"No job {args.job_id!r} at this endpoint ({explain(exc)}). "
                     "See `python -m pipeline jobs list`.", 2)
    except openai.OpenAIError as exc:
        return _fail(args, explain(exc), 1)
    if args.json:
        emit_json(out)
    else:
        _print_job(out)
        for event in out.get("events", [])[-5:] if args.action == "show" else []:
            print(f"  {_when(event['created_at'])}  {event['message']}")
    return code


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    if args.json:
        emit_json({"job_id": getattr(args, "job_id", None), "status": "error", "error": message})
    progress(f"error: {message}")
    return code
