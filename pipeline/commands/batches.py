"""`python -m pipeline batches list|show|cancel|collect|retry|export|import ...`: batches made with
`generate --batch` / `eval --batch`, kept in the workspace (`<workspace>/batches/`), so they can be
followed and collected after a day away.

- `batches list`: every batch with its state and request counts (no endpoint is asked).
- `batches show ID`: asks the endpoint for news (unless --no-refresh) and prints the batch.
- `batches cancel ID`: asks the endpoint to stop it; what finished stays collectable.
- `batches collect ID [--wait]`: takes the results in exactly once (examples into the run's --out
  file; an evaluation's scoreboard printed and kept). --wait follows it to the end first.
- `batches retry ID`: the failed requests of a collected batch, as a new smaller batch, submitted.
- `batches export ID [--to FILE]`: the request file, to run elsewhere (vllm run-batch, Azure OpenAI).
- `batches import ID FILE`: a results file written elsewhere; then `collect` (no endpoint needed).

Give the same endpoint flags (or variables) as when the batch was made; `show` prints which one that
was. --json prints one object (the batch's record; `collect` adds `collected`). Exit 0 when it
worked, 1 when the endpoint refused or requests failed, 2 bad usage, an unknown id, or a batch still
running (`collect` without --wait).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

from pipeline import batch
from pipeline.commands import add_endpoint_flags, emit_json, openai_client, progress
from pipeline.commands.batchflow import add_wait_flags, follow_hint, print_report, wait_and_collect
from pipeline.errors import InputError


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("batches", help="list, follow, collect, retry, export or import batches",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="every batch, newest first")
    for name, text in (("show", "one batch (asks the endpoint for news)"), ("cancel", "stop a batch"),
                       ("collect", "take a finished batch's results in, once"),
                       ("retry", "resubmit the failed requests as a new batch"),
                       ("export", "copy the request file out"), ("import", "take in a results file from elsewhere")):
        one = sub.add_parser(name, help=text)
        one.add_argument("batch_id")
        if name == "show":
            one.add_argument("--no-refresh", action="store_true", help="print the record without asking the endpoint")
        if name == "collect":
            add_wait_flags(one)
        if name == "export":
            one.add_argument("--to", type=Path, help="where to copy the request file (default: print its path)")
        if name == "import":
            one.add_argument("file", type=Path, help="the results JSONL (output or error file)")
    for action in sub.choices.values():
        if action.prog.split()[-1] in ("show", "cancel", "collect", "retry"):
            add_endpoint_flags(action)
        action.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=run)


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts)) if ts else "-"


def print_record(record: batch.BatchRecord) -> None:
    print(record.describe())
    print(f"  {record.title}")
    print(f"  endpoint: {record.endpoint} · created {_when(record.created_at)}"
          + (f" · retry of {record.retry_of}" if record.retry_of else ""))
    for part in record.parts:
        print(f"  {part.model}: {part.batch_id or '(not submitted)'} {part.status} "
              f"{part.counts.get('completed', 0)}/{part.counts.get('total', 0)} done, {part.counts.get('failed', 0)} failed")
        for error in part.errors[:3]:
            print(f"    {error}")
    print(f"  cost: {batch.estimate_cost(record).describe()}")


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        records = batch.list_batches(None)
        if args.json:
            emit_json({"batches": [r.to_json() for r in records]})
        elif not records:
            print("No batches yet. Make one with `python -m pipeline generate ... --batch` or `eval ... --batch`.")
        for r in [] if args.json else records:
            print(r.describe() + f"  · {r.title}")
        return 0
    record = batch.load_batch(None, args.batch_id)
    out: dict[str, Any] = {}
    report: batch.CollectReport | None = None
    if args.action == "export":
        path = batch.request_file(record)
        if args.to:
            shutil.copyfile(path, args.to)
            path = args.to
        out = {"requests_file": str(path), "requests": record.requests}
        if not args.json:
            print(path)
    elif args.action == "import":
        record = batch.import_results(record, args.file)
        progress(f"Imported {args.file.name}: {record.counts()['completed']} results, {record.counts()['failed']} "
                 f"failed. Take them in: python -m pipeline batches collect {record.id}")
    elif args.action == "collect" and not args.wait and not batch.needs_endpoint(record):
        report = batch.collect(record)
    else:
        client = openai_client(args, max_retries=2)
        if args.action == "show" and not args.no_refresh and not record.finished():
            record = batch.refresh(record, client)
        elif args.action == "cancel":
            record = batch.cancel(record, client)
        elif args.action == "retry":
            record = batch.submit(batch.retry_failed(record), client)
            progress(f"Submitted {record.id} ({record.requests} requests). {follow_hint(record)}")
        elif args.action == "collect":
            if not args.wait and not (record := batch.refresh(record, client)).finished():
                raise InputError(f"Batch {record.id} has not finished ({record.describe()}); "
                                 "collect it later, or add --wait to follow it.")
            report = wait_and_collect(record, client, args.poll) if args.wait else batch.collect(record, client)
    code = 0
    if report is not None:
        record = batch.load_batch(None, record.id)
        out = {"collected": report.to_json(), **({"results": report.results} if report.results else {})}
        code = 1 if report.failed else 0
        if not args.json:
            print_report(report)
    if args.json:
        emit_json({"batch": record.to_json(), **out})
    elif args.action not in ("export", "collect"):
        print_record(record)
    return code

