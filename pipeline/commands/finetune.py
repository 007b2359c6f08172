"""`python -m pipeline finetune PATH --model BASE [--validation PATH] [--epochs N] [--suffix S]
[--base-url URL] [--api-key KEY] [--wait] [--json]`

Preflight (validation, tokens, cost), upload, create the job; with --wait, follow it to the end
with progress on stderr. --json prints one object: job_id, status, fine_tuned_model,
trained_tokens, error (plus the preflight figures). Exit 0 succeeded (or created, without --wait),
1 failed / cancelled / provider error, 2 bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import openai

from pipeline.commands import add_endpoint_flags, cli_provider, emit_json, openai_client, progress
from pipeline.errors import DistillError, explain
from pipeline.finetune.preflight import DEFAULT_CONFIRM_USD
from pipeline.finetune.session import start_job
from pipeline.finetune.watch import JobSnapshot, follow_job, progress_line


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("finetune", help="start (and optionally follow) a fine-tuning job")
    p.add_argument("path", help="training data (chat JSONL, or any format the Dataset tab reads)")
    p.add_argument("--model", required=True, help="base model to fine-tune")
    p.add_argument("--validation", help="validation data file")
    p.add_argument("--epochs", default="auto", help="number of epochs, or 'auto' (default)")
    p.add_argument("--batch-size", default="auto", help="batch size, or 'auto' (default)")
    p.add_argument("--lr-multiplier", default="auto", help="learning rate multiplier, or 'auto'")
    p.add_argument("--seed", type=int, help="seed for a reproducible job")
    p.add_argument("--suffix", help="up to 64 characters added to the fine-tuned model's name")
    add_endpoint_flags(p)
    p.add_argument("--wait", action="store_true", help="follow the job until it ends (progress on stderr)")
    p.add_argument("--poll", type=float, default=5.0, help="seconds between status checks with --wait")
    p.add_argument("--yes", action="store_true", help="go ahead when the estimated cost is above "
                   f"the confirmation threshold ($DISTILL_FINETUNE_CONFIRM_USD, default ${DEFAULT_CONFIRM_USD:g})")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=run)


def _result(job_id: str | None, status: str, *, model: str | None = None,
            fine_tuned_model: str | None = None, trained_tokens: int | None = None,
            error: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"job_id": job_id, "status": status, "model": model, "fine_tuned_model": fine_tuned_model,
            "trained_tokens": trained_tokens, "error": error, **extra}


def _finish(args: argparse.Namespace, result: dict[str, Any], code: int) -> int:
    if args.json:
        emit_json(result)
    elif result.get("job_id"):
        print(result["fine_tuned_model"] or result["job_id"])
    if result.get("error"):
        progress(f"error: {result['error']}")
    return code


def _follow(client: Any, job_id: str, poll_s: float) -> JobSnapshot:
    """Poll until the job ends, printing new events and a progress line when it changes."""
    shown = {"events": 0, "line": ""}

    def show(snap: JobSnapshot) -> None:
        if snap.warning:
            progress(f"warning: {snap.warning}")
        for event in snap.events[shown["events"]:]:
            progress(f"  {event['message']}")
        shown["events"] = len(snap.events)
        line = progress_line(snap)
        if line != shown["line"] and not snap.warning:
            progress(line)
            shown["line"] = line

    return follow_job(client, job_id, poll_s=poll_s, on_snapshot=show)


def run(args: argparse.Namespace) -> int:
    job_id: str | None = None
    try:
        client = openai_client(args)
        started = start_job(
            client, Path(args.path), args.model, validation_path=Path(args.validation) if args.validation else None,
            n_epochs=args.epochs, batch_size=args.batch_size, learning_rate_multiplier=args.lr_multiplier,
            suffix=args.suffix, seed=args.seed, confirmed=args.yes, on_progress=progress,
            auto_epochs=cli_provider(args).auto_epochs())
        job_id = started.job.id
        figures = {"estimated_cost_usd": started.preflight.estimated_cost_usd,
                   "n_epochs": started.preflight.n_epochs,
                   "billing_tokens_per_epoch": started.preflight.billing_tokens_per_epoch}
        if not args.wait:
            return _finish(args, _result(job_id, started.job.status, model=args.model, **figures), 0)
        try:
            snap = _follow(client, job_id, args.poll)
        except KeyboardInterrupt:
            progress(f"Stopped watching. The job goes on at the provider: {job_id}")
            return _finish(args, _result(job_id, "watching_stopped", model=args.model, **figures), 1)
        result = _result(job_id, snap.status, model=args.model, fine_tuned_model=snap.fine_tuned_model,
                         trained_tokens=snap.trained_tokens, error=snap.error,
                         final_metrics=snap.metrics[-1] if snap.metrics else None, **figures)
        return _finish(args, result, 0 if snap.status == "succeeded" else 1)
    except DistillError as exc:
        return _finish(args, _result(job_id, "not_started" if job_id is None else "error",
                                     model=args.model, error=str(exc)), exc.exit_code)
    except openai.OpenAIError as exc:
        return _finish(args, _result(job_id, "not_started" if job_id is None else "error",
                                     model=args.model, error=explain(exc)), 1)
