"""Requests that leave and results that come back another way: retry the failed requests as a new,
smaller batch; export the request file (to run with `vllm run-batch`, Azure OpenAI, ...); import the
results file such a run wrote (checked line by line with the one parser before it is taken)."""

from __future__ import annotations

import copy
import json
import shutil
import time
from pathlib import Path

from pipeline import atomic
from pipeline.batch.collect import failed_requests
from pipeline.batch.gather import request_ids, results_by_id
from pipeline.batch.records import BatchRecord, Part, new_id, save_batch
from pipeline.batch.results import iter_results
from pipeline.errors import InputError

RETRYABLE = ("error", "status", "missing", "parse")  # a duplicate would only come back a duplicate
MAX_PROBLEMS_SHOWN = 5


def retry_failed(record: BatchRecord) -> BatchRecord:
    """A new built record holding only the requests that failed (the same bodies, so the same custom_ids);
    collect the original first, so every failure is known. Submit it as any other."""
    if record.state != "collected":
        raise InputError(f"Collect batch {record.id} first: its failed requests are known once its results are in.")
    wanted = {f["custom_id"] for f in failed_requests(record) if f["kind"] in RETRYABLE}
    if not wanted:
        raise InputError(f"No request of batch {record.id} failed: there is nothing to retry.")
    retry = BatchRecord(id=new_id(record.id.split("-")[0]), kind=record.kind, title=f"retry of {len(wanted)} failed · {record.title}",
                        endpoint=record.endpoint, visitor=record.visitor, created_at=time.time(), requests=0,
                        parts=[], plan=copy.deepcopy(record.plan), retry_of=record.id)
    retry.folder.mkdir(parents=True, exist_ok=True)
    if (record.folder / "sources.jsonl").exists():
        shutil.copyfile(record.folder / "sources.jsonl", retry.folder / "sources.jsonl")
    by_model: dict[str, list[str]] = {}
    with record.requests_path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip() and json.loads(line)["custom_id"] in wanted:
                by_model.setdefault(json.loads(line)["body"].get("model", ""), []).append(line)

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as out:
            for lines in by_model.values():
                out.writelines(lines)
    atomic.write_with(retry.requests_path, write)
    first = 0
    for model, lines in by_model.items():
        retry.parts.append(Part(model=model, first_line=first, lines=len(lines)))
        first += len(lines)
    retry.requests = first
    share = first / max(1, record.requests)
    retry.estimate = {k: (round(v * share, 8) if isinstance(v, float) else round(v * share) if
                          isinstance(v, int) and not isinstance(v, bool) else v) for k, v in record.estimate.items()}
    retry.estimate["requests"] = first
    save_batch(retry)
    return retry


def request_file(record: BatchRecord) -> Path:
    """The request JSONL to run elsewhere (OpenAI's batch input format, which vLLM and Azure read too)."""
    if not record.requests_path.exists():
        raise InputError(f"The request file of batch {record.id} is missing from {record.folder}.")
    return record.requests_path


def import_results(record: BatchRecord, path: str | Path) -> BatchRecord:
    """Take a results file written elsewhere (OpenAI, Azure OpenAI, vLLM run-batch output or error file).
    Every line must parse and name a request of this batch; then the batch counts as completed and is
    collected as usual. Importing more files (output, then errors) adds to what is known."""
    if record.state == "collected":
        raise InputError(f"Batch {record.id} is already collected; its results are in.")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No results file at {path}.")
    ids = set(request_ids(record))
    problems, count = [], 0
    for number, line in iter_results(path):
        count += 1
        if line.custom_id is None:
            problems.append(f"line {number}: {line.reason or 'no custom_id'}")
        elif line.custom_id not in ids:
            problems.append(f"line {number}: custom_id {line.custom_id!r} is not a request of this batch")
    if problems or not count:
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN]) or "the file has no result lines"
        more = f" (and {len(problems) - MAX_PROBLEMS_SHOWN} more)" if len(problems) > MAX_PROBLEMS_SHOWN else ""
        raise InputError(f"{path.name} is not a results file of batch {record.id}: {shown}{more}. Import the "
                         "output (or error) file the engine wrote for this batch's request file.")
    n = len(list(record.folder.glob("imported-*.jsonl")))
    shutil.copyfile(path, record.folder / f"imported-{n}.jsonl")
    known = [line.ok for _, line in results_by_id(record)]  # over every file imported so far
    for part in record.parts:
        part.status, part.downloaded = "completed", True
        part.counts = {"total": 0, "completed": 0, "failed": 0}
    record.parts[0].counts = {"total": record.requests, "completed": sum(known), "failed": len(known) - sum(known)}
    record.state = "completed"
    save_batch(record)
    return record
