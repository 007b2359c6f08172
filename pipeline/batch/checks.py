"""Answer checks in batch mode: a second, smaller batch that solves each kept example again.

When a generation batch asked for checks (`config.check` on a verifiable template) and has finished,
the first collect writes the candidates it would keep (parsed, deduplicated) to
`check-candidates.json` and sends one check request per candidate with a final answer, as a new part
of the same record (`check-requests.jsonl`; each body is the interactive check's own:
`checking.check_messages`, temperature 0, the run's max_tokens). The collect after that one keeps a
candidate only when the checker's final answer agrees (`checking.answers_agree`), as a run one by
one does; a disagreement or a failed check request is listed with its reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipeline import atomic
from pipeline.batch import phases
from pipeline.batch.build import request_line
from pipeline.batch.gather import Gathered, _tally, gather_generation, results_by_id
from pipeline.batch.records import BatchRecord
from pipeline.generate.checking import answers_agree, check_messages, extract_final_answer
from pipeline.generate.teacher import chat_body, reply_of

CHECK_FILE = "check-requests.jsonl"
CANDIDATES = "check-candidates.json"


def wanted(record: BatchRecord) -> bool:
    return record.kind == "generate" and bool(record.plan.get("check"))


def sent(record: BatchRecord) -> bool:
    return phases.sent(record, CHECK_FILE)


def send(record: BatchRecord, client: Any, dedup_against: list[dict]) -> int:
    """Write the candidates and submit their checks; returns how many checks were sent (0: nothing to
    check, the check part is marked done without a provider batch)."""
    g = gather_generation(record, dedup_against=dedup_against)
    atomic.write_json(record.folder / CANDIDATES, {"examples": g.examples, "failures": g.failures,
                                                   "input_tokens": g.input_tokens, "output_tokens": g.output_tokens,
                                                   "cost_usd": g.cost_usd}, indent=None)
    model = record.plan["check"]["model"]

    def lines() -> Iterator[str]:
        for i, e in enumerate(g.examples):
            if e["final"] is not None:
                body = chat_body(model, check_messages(e["example"]), temperature=0.0,
                                 max_tokens=record.plan["max_tokens"])
                yield request_line(f"chk-{i}", body)
    return phases.add_phase(record, client, CHECK_FILE, model, lines())


def apply(record: BatchRecord) -> Gathered:
    """The candidates whose checks agree; the others become failures of kind "check"."""
    raw = atomic.read_json(record.folder / CANDIDATES)
    g = Gathered(failures=list(raw["failures"]), input_tokens=raw["input_tokens"],
                 output_tokens=raw["output_tokens"], cost_usd=raw["cost_usd"])
    by_id = {cid: line for cid, line in results_by_id(record) if cid.startswith("chk-")}
    model = record.plan["check"]["model"]
    for i, e in enumerate(raw["examples"]):
        if e["final"] is None:
            g.examples.append(e)
            continue
        line = by_id.get(f"chk-{i}")
        if line is None or not line.ok:
            reason = line.reason if line is not None else "no result line for the check"
            g.failures.append({"custom_id": e["custom_id"], "kind": "check", "example": e["example"],
                               "reason": f"the answer check failed: {reason}"})
            continue
        _tally(g, model, line)
        theirs = extract_final_answer(reply_of(line.completion).text)
        if answers_agree(e["final"], theirs):
            g.examples.append(e)
        else:
            g.failures.append({"custom_id": e["custom_id"], "kind": "check", "example": e["example"],
                               "reason": f"final answers disagree: {e['final']!r} vs checker {theirs!r}"})
    return g
