"""Collect a finished batch EXACTLY ONCE: its examples appended to the run file and the draft once,
or its scoreboard kept once, whatever happens.

- Two collects at once (two tabs, the app and the CLI): the batch's lock (`atomic.locked`, a thread
  lock + flock) makes the second wait; it then finds `collected.json` and appends nothing.
- A crash mid-collect: what to append is computed once and written atomically to `pending.json`
  before anything is appended; a later collect resumes from it instead of recomputing. Appends are
  keyed by each example's content hash (`store.example_id`): an example of `pending.json` already in
  the file or the draft was put there by the collect that died (the pending list was deduplicated
  against both before it was written), so it is skipped, and nothing is lost or doubled.
- The marker `collected.json` (with the custom_ids appended) is written last, atomically.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline import atomic, drafts, workspace
from pipeline.batch import checks, gather, judging
from pipeline.batch.provider import refresh, submit
from pipeline.batch.records import BatchRecord, load_batch, save_batch
from pipeline.errors import InputError
from pipeline.generate.store import RunFiles, example_id, load_existing


@dataclass
class CollectReport:
    appended: int = 0
    duplicates: int = 0
    unparsed: int = 0
    failed: int = 0
    cost_usd: float | None = None
    results_path: str | None = None
    already: bool = False
    #: Answers that the check batch disagreed with (or whose check failed): not kept.
    check_dropped: int = 0
    #: This collect sent a follow-up batch (answer checks); collect again when it has finished.
    waiting: bool = False
    message: str = ""
    results: dict | None = None  # eval: the scoreboard (read from the batch folder, not kept in the marker)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "results"}


def _marker(record: BatchRecord) -> Path:
    return record.folder / "collected.json"


def _pending(record: BatchRecord) -> Path:
    return record.folder / "pending.json"


def collect(record: BatchRecord, client: Any = None) -> CollectReport:
    """Take a finished batch's results in, once. With a client, asks for news and downloads first.
    InputError while the batch is still running."""
    with atomic.locked(record.folder / "collect"):
        record = load_batch(record.visitor, record.id)  # what another collect may have done meanwhile
        if _marker(record).exists():
            return _already(record)
        if client is not None and (checks.sent(record) or judging.sent(record)) and any(p.status == "built" for p in record.parts):
            record = submit(record, client)  # the check batch of a collect that died before sending it
        if client is not None and not all(p.downloaded for p in record.parts if p.batch_id):
            record = refresh(record, client)
        if not record.finished():
            c = record.counts()
            raise InputError(f"Batch {record.id} is still {record.state} ({c['completed'] + c['failed']}/"
                             f"{c['total']} done); collect it when it has finished.")
        if checks.wanted(record) and not checks.sent(record) and not _pending(record).exists():
            if client is None:
                raise InputError(f"Batch {record.id} asked for answer checks, which go out as a second batch: "
                                 "collect it with its endpoint (the same endpoint flags).")
            sent = checks.send(record, client, _against(record))
            if sent:
                return CollectReport(waiting=True, message=f"Sent {sent} answer checks as a second batch of "
                                     f"{record.id}; collect again when it has finished.")
        if judging.wanted(record) and not judging.sent(record) and not _pending(record).exists():
            if client is None:
                raise InputError(f"Batch {record.id} has judge-scored questions, whose judge goes out as a second "
                                 "batch: collect it with its endpoint (the same endpoint flags).")
            sent = judging.send(record, client)
            if sent:
                return CollectReport(waiting=True, message=f"Sent {sent} answers to the judge "
                                     f"({judging.judge_model(record)}) as a second batch of {record.id}; "
                                     "collect again when it has finished.")
        pending = atomic.read_json(_pending(record))
        if pending is None:
            pending = _compute(record)
            atomic.write_json(_pending(record), pending, indent=None)
        report = _apply_generation(record, pending) if record.kind == "generate" else _apply_eval(record, pending)
        atomic.write_json(_marker(record), {**report.to_json(), "at": time.time(),
                                            "custom_ids": sorted({e["custom_id"] for e in pending.get("examples", [])})})
        record.state = "collected"
        record.collected = report.to_json()
        save_batch(record)
        _pending(record).unlink(missing_ok=True)
        return report


def needs_endpoint(record: BatchRecord) -> bool:
    """Whether collecting the record must reach its endpoint: a part not downloaded yet (or not even
    submitted), or a second phase (answer checks, the judge) still to send. Otherwise everything is on
    disk (downloaded or imported) and collect needs no client."""
    if record.state == "collected":
        return False
    due = (checks.wanted(record) and not checks.sent(record)) or (judging.wanted(record) and not judging.sent(record))
    return due or not all(p.downloaded for p in record.parts)


def _already(record: BatchRecord) -> CollectReport:
    raw = atomic.read_json(_marker(record), {})
    known = set(CollectReport.__dataclass_fields__)
    report = CollectReport(**{k: v for k, v in raw.items() if k in known})
    report.already = True
    report.message = f"Batch {record.id} was already collected; nothing was added again."
    report.results = atomic.read_json(record.folder / "results.json")
    return report


def _against(record: BatchRecord) -> list[dict]:
    """What new examples must not duplicate: the run file and the visitor's draft as they are now."""
    return load_existing(Path(record.plan["out"])) + (list(drafts.iter_draft(record.visitor)) if record.visitor else [])


def _compute(record: BatchRecord) -> dict[str, Any]:
    if record.kind == "generate":
        g = checks.apply(record) if checks.wanted(record) else \
            gather.gather_generation(record, dedup_against=_against(record))
    else:
        g = gather.gather_evaluation(record)
        atomic.write_json(record.folder / "results.json", g.results, indent=None)
    atomic.write_text(record.folder / "failed.jsonl", "".join(json.dumps(f, ensure_ascii=False) + "\n"
                                                               for f in g.failures))
    return {"examples": g.examples, "cost_usd": g.cost_usd, "input_tokens": g.input_tokens,
            "output_tokens": g.output_tokens, "stamp": time.strftime("%Y%m%d-%H%M%S", time.gmtime()),
            "counts": {k: sum(f["kind"] == k for f in g.failures)
                       for k in ("error", "status", "missing", "parse", "duplicate", "check", "judge")}}


def _apply_generation(record: BatchRecord, pending: dict[str, Any]) -> CollectReport:
    plan, examples = record.plan, pending["examples"]
    files = RunFiles(Path(plan["out"]))
    in_file = {example_id(ex) for ex in load_existing(files.out)}
    for e in examples:
        if example_id(e["example"]) not in in_file:
            index = int(e["custom_id"].rsplit("-", 1)[1])
            files.write_example(e["example"], e["final"], {"template": plan["template"]["name"], "request": index,
                                                           "batch": record.id})
    if not pending.get("failures_written"):
        for f in failed_requests(record):
            if f["kind"] in ("parse", "duplicate", "check"):  # kept for review beside the run, as one by one
                files.write_failure({**f, "template": plan["template"]["name"], "batch": record.id})
        pending["failures_written"] = True
        atomic.write_json(_pending(record), pending, indent=None)
    if record.visitor:
        in_draft = {example_id(json.loads(line)) for line in drafts.iter_draft_lines(record.visitor)}
        fresh = [e["example"] for e in examples if example_id(e["example"]) not in in_draft]
        if fresh:
            drafts.append_to_draft(record.visitor, fresh)  # as the interactive run appends
        if not pending.get("meta_written"):
            drafts.update_meta(record.visitor, generation=[_provenance(record, pending, len(examples))])
            pending["meta_written"] = True
            atomic.write_json(_pending(record), pending, indent=None)
    counts = pending["counts"]
    failed = counts["error"] + counts["status"] + counts["missing"]
    checked = counts.get("check", 0)
    report = CollectReport(appended=len(examples), duplicates=counts["duplicate"], unparsed=counts["parse"],
                           failed=failed, cost_usd=pending["cost_usd"], check_dropped=checked)
    report.message = (f"Collected {record.id}: {len(examples)} examples"
                      + (" added to the draft" if record.visitor else f" in {files.out}")
                      + f" ({counts['parse']} unparsed, {counts['duplicate']} duplicates dropped, "
                      + (f"{checked} dropped by the answer check, " if checks.wanted(record) else "")
                      + f"{failed} failed requests{'; retry them as a new batch' if failed else ''}).")
    return report


def _provenance(record: BatchRecord, pending: dict[str, Any], kept: int) -> dict[str, Any]:
    plan = record.plan
    return {"template": plan["template"]["name"], "teacher": plan["model"], "endpoint": record.endpoint,
            "batch": record.id, "params": {"n": plan["n"], "seed": plan["seed"]},
            "cost_usd": pending["cost_usd"], "input_tokens": pending["input_tokens"],
            "output_tokens": pending["output_tokens"], "added_to_draft": kept, "state": "done"}


def _apply_eval(record: BatchRecord, pending: dict[str, Any]) -> CollectReport:
    results = atomic.read_json(record.folder / "results.json")
    path = record.folder / "results.json"
    if record.visitor:  # kept with the visitor's runs, under a name fixed once: writing it twice is harmless
        stem = Path(results["benchmark"]).stem
        path = workspace.visitor_dir(record.visitor, "evals") / f"{pending['stamp']}-{record.id}-{stem}.json"
        atomic.write_json(path, results, indent=2)
    counts = pending["counts"]
    failed = counts["error"] + counts["status"] + counts["missing"]
    board = ", ".join(f"{r['label']} {r['correct']}/{r['total']}" for r in results["results"])
    return CollectReport(failed=failed, cost_usd=pending["cost_usd"], results_path=str(path), results=results,
                         message=f"Collected {record.id}: {board}" + (f" ({failed} requests failed)" if failed else ""))


def failed_requests(record: BatchRecord) -> list[dict]:
    """Requests that gave nothing, each with its reason: after collect, every kind (error, status,
    missing, parse, duplicate); before, what the downloaded files already say (error, status)."""
    path = record.folder / "failed.jsonl"
    if path.exists():
        return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [gather._failure(cid, line) for cid, line in gather.results_by_id(record) if not line.ok]
