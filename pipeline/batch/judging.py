"""The judge in batch mode: a second, smaller batch that grades the judge-scored answers.

An evaluation batch whose benchmark has judge-scored questions names its judge model at build time
(`plan["judge"]`). When the answers batch has finished, the first collect sends one judge request per
judge-scored answer that came back, as a new part of the same record (`judge-requests.jsonl`; each
body is the interactive judge call's own: `runner.judge_body`, custom_id `jdg-<item>-<target>`). The
collect after that one scores those answers from the judge's verdicts (`runner.score_reply` with the
judgement, i.e. `scoring.parse_judgement`), as a run one by one does. The judge batch goes to the same
endpoint as the answers (one record, one endpoint).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipeline.batch import phases
from pipeline.batch.build import request_line
from pipeline.batch.gather import _items_targets, request_ids, results_by_id
from pipeline.batch.records import BatchRecord
from pipeline.evaluate.runner import item_body, judge_body, reply_parts

JUDGE_FILE = "judge-requests.jsonl"


def judge_model(record: BatchRecord) -> str | None:
    return (record.plan.get("judge") or {}).get("model")


def wanted(record: BatchRecord) -> bool:
    return record.kind == "eval" and judge_model(record) is not None and \
        any(i.get("scoring") == "judge" for i in record.plan["items"])


def sent(record: BatchRecord) -> bool:
    return phases.sent(record, JUDGE_FILE)


def judge_id(answer_id: str) -> str:
    """`eval-<item>-<target>` -> `jdg-<item>-<target>`: the judge request of that answer."""
    return "jdg-" + answer_id.split("-", 1)[1]


def send(record: BatchRecord, client: Any) -> int:
    """Write and submit one judge request per judge-scored answer that came back; returns how many (0:
    nothing to judge, the part is marked done without a provider batch)."""
    plan, model = record.plan, judge_model(record)
    items, targets = _items_targets(plan)
    by_index = {i.index: i for i in items}
    by_id = dict(results_by_id(record))

    def lines() -> Iterator[str]:
        for cid in request_ids(record):
            _, item_no, target_no = cid.split("-")
            item, target, line = by_index[int(item_no)], targets[int(target_no)], by_id.get(cid)
            if item.scoring != "judge" or line is None or not line.ok:
                continue
            messages = item_body(item, target, plan["temperature"], plan["max_tokens"])["messages"]
            text = reply_parts(line.completion, target.model, messages)[0]
            yield request_line(judge_id(cid), judge_body(model, item, text))
    return phases.add_phase(record, client, JUDGE_FILE, model, lines())
