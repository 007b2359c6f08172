"""What `generate --batch`, `eval --batch` and `batches` share: submitting a built batch, following it
to the end and collecting it, and saying how to follow it later."""

from __future__ import annotations

from typing import Any

from pipeline import batch
from pipeline.commands import emit_json, progress
from pipeline.commands.scoreboard import print_table


def add_wait_flags(parser: Any) -> None:
    parser.add_argument("--wait", action="store_true", help="follow the batch until it finishes, then collect")
    parser.add_argument("--poll", type=float, default=10.0, help="seconds between status checks (default 10)")


def follow_hint(record: batch.BatchRecord) -> str:
    return (f"Follow it: python -m pipeline batches show {record.id}   ·   take the results in when done: "
            f"python -m pipeline batches collect {record.id} --wait   (same endpoint flags)")


def submit_and_follow(record: batch.BatchRecord, client: Any, args: Any) -> batch.CollectReport | None:
    """Say what the built batch costs, submit it and say how to follow it. Without --wait, print its
    id (its record with --json) and return None: the command is done. With --wait, follow it to the
    end and return what collecting it took in."""
    progress(f"Batch cost: {batch.estimate_cost(record).describe()}.")
    record = batch.submit(record, client)
    progress(f"Submitted batch {record.id} ({record.requests} requests). {follow_hint(record)}")
    if not args.wait:
        if args.json:
            emit_json({"batch": record.to_json()})
        else:
            print(record.id)
        return None
    return wait_and_collect(record, client, args.poll)


def wait_and_collect(record: batch.BatchRecord, client: Any, poll: float) -> batch.CollectReport:
    def show(r: batch.BatchRecord) -> None:
        c = r.counts()
        progress(f"[{r.id}] {r.state}: {c['completed']}/{c['total']} done, {c['failed']} failed")
    while True:
        try:
            record = batch.wait(record, client, poll=poll, on_update=show)
        except KeyboardInterrupt:
            progress(f"Stopped following. The batch goes on at the endpoint: {follow_hint(record)}")
            raise
        report = batch.collect(record, client)
        if not report.waiting:  # answer checks or the judge go out as a second batch: follow that one too
            return report
        progress(report.message)
        record = batch.load_batch(record.visitor, record.id)


def print_report(report: batch.CollectReport) -> None:
    if report.results:
        print_table(report.results, False)
    print(report.message)
    failed = report.failed + report.unparsed
    if failed:
        print(f"  {failed} request(s) gave nothing: `python -m pipeline batches retry ID` sends them again.")


