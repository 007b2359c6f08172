"""Turn a finished batch's results files into what the interactive path makes of its replies: examples
(structured parse, build_examples, dedupe) or scored answers (scoring -> runner.build_results).

Pure computation from the files on disk: collect.py makes applying it exactly-once. Every request
of the request file ends up in exactly one place: an example kept, a reason it was not (parse,
duplicate), or a failure (the provider's error, a non-200 status, no result line at all).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pipeline.batch.build import template_from_json
from pipeline.batch.costs import batch_cost_usd
from pipeline.batch.records import BatchRecord
from pipeline.batch.results import ResultLine, iter_results
from pipeline.evaluate.bench import BenchItem
from pipeline.evaluate.runner import (
    Answer,
    Target,
    build_results,
    item_body,
    judge_failed,
    reply_parts,
    score_reply,
)
from pipeline.generate import steps
from pipeline.generate.dedup import Deduper
from pipeline.generate.tasks import effective
from pipeline.generate.teacher import reply_of


@dataclass
class Gathered:
    #: generation: {"custom_id", "example", "final"} in request order
    examples: list[dict] = field(default_factory=list)
    #: {"custom_id", "kind": "error" | "status" | "parse" | "duplicate" | "missing", "reason", ...}
    failures: list[dict] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    results: dict | None = None  # eval: the scoreboard


def request_ids(record: BatchRecord) -> list[str]:
    """custom_ids of the request file, in order (streamed)."""
    with record.requests_path.open(encoding="utf-8") as fh:
        return [json.loads(line)["custom_id"] for line in fh if line.strip()]


def result_files(record: BatchRecord) -> list:
    folder = record.folder
    return sorted(folder.glob("output-*.jsonl")) + sorted(folder.glob("errors-*.jsonl")) + \
        sorted(folder.glob("imported-*.jsonl"))


def results_by_id(record: BatchRecord) -> Iterator[tuple[str, ResultLine]]:
    """Every result line with a custom_id of this batch; a good line beats an error line of the same id
    (a retried request can appear in both) and each id is given once."""
    seen_ok: set[str] = set()
    errors: dict[str, ResultLine] = {}
    for path in result_files(record):
        for _, line in iter_results(path):
            if line.custom_id is None:
                continue
            if line.ok and line.custom_id not in seen_ok:
                seen_ok.add(line.custom_id)
                yield line.custom_id, line
            elif not line.ok:
                errors.setdefault(line.custom_id, line)
    for cid, line in errors.items():
        if cid not in seen_ok:
            yield cid, line


def _failure(cid: str, line: ResultLine) -> dict:
    kind = "status" if line.status_code not in (None, 200) else "error"
    return {"custom_id": cid, "kind": kind, "reason": line.reason or "failed"}


def _tally(g: Gathered, model: str, line: ResultLine) -> tuple[int, int]:
    usage = line.completion.usage if line.completion is not None else None
    tin, tout = (usage.prompt_tokens, usage.completion_tokens) if usage is not None else (0, 0)
    g.input_tokens += tin
    g.output_tokens += tout
    cost = batch_cost_usd(model, tin, tout)
    g.cost_usd = None if cost is None or g.cost_usd is None else round(g.cost_usd + cost, 8)
    return tin, tout


def gather_generation(record: BatchRecord, *, dedup_against: list[dict]) -> Gathered:
    plan = record.plan
    variables = plan["variables"]
    t = effective(template_from_json(plan["template"]), variables)
    sources = None
    if plan.get("has_sources") and (record.folder / "sources.jsonl").exists():
        sources = [json.loads(x) for x in (record.folder / "sources.jsonl").open(encoding="utf-8") if x.strip()]
    dedup = Deduper(plan.get("near_duplicate_threshold", 92.0))
    for ex in dedup_against + (sources or []):
        dedup.add(ex)
    g = Gathered()
    by_id = dict(results_by_id(record))
    for cid in request_ids(record):
        line = by_id.get(cid)
        if line is None:
            g.failures.append({"custom_id": cid, "kind": "missing", "reason": "no result line for this request"})
            continue
        if not line.ok:
            g.failures.append(_failure(cid, line))
            continue
        _tally(g, record.parts[0].model, line)
        index = int(cid.rsplit("-", 1)[1])
        built, unusable = steps.examples_from_reply(t, variables, reply_of(line.completion),
                                                    steps.source_for(t, sources, index))
        if unusable is not None:
            g.failures.append({"custom_id": cid, "kind": "parse", "reason": unusable.reason, "raw": unusable.raw})
        for example, final in built:
            if reason := dedup.duplicate_reason(example):
                g.failures.append({"custom_id": cid, "kind": "duplicate", "reason": reason, "example": example})
                continue
            dedup.add(example)
            g.examples.append({"custom_id": cid, "example": example, "final": final})
    return g


def _items_targets(plan: dict[str, Any]) -> tuple[list[BenchItem], list[Target]]:
    items = [BenchItem(**{**raw, "labels": tuple(raw.get("labels", ()))}) for raw in plan["items"]]
    targets = [Target(t["model"], None, label=t["label"], role=t["role"], shots=tuple(t["shots"]))
               for t in plan["targets"]]
    return items, targets


def gather_evaluation(record: BatchRecord) -> Gathered:
    plan = record.plan
    items, targets = _items_targets(plan)
    by_index = {i.index: i for i in items}
    g = Gathered()
    by_id = dict(results_by_id(record))
    answers: list[Answer] = []
    for cid in request_ids(record):
        _, item_no, target_no = cid.split("-")
        item, target = by_index[int(item_no)], targets[int(target_no)]
        line = by_id.get(cid)
        if line is None or not line.ok:
            failure = (_failure(cid, line) if line is not None else
                       {"custom_id": cid, "kind": "missing", "reason": "no result line for this request"})
            g.failures.append(failure)
            answers.append(Answer(item.index, target.name, "", False, "error", None, 0, 0, error=failure["reason"]))
            continue
        _tally(g, target.model, line)
        messages = item_body(item, target, plan["temperature"], plan["max_tokens"])["messages"]
        text, tin, tout, message = reply_parts(line.completion, target.model, messages)
        if item.scoring == "judge":  # graded by the judge batch (judging.py): its verdict, as interactively
            answer = _judged(g, plan, cid, by_id, item, target, text, message, tin, tout)
        else:
            answer = score_reply(item, target, None, text, message, None, tin, tout)
        answer.cost_usd = batch_cost_usd(target.model, tin, tout)  # what this batch cost, not one by one
        answers.append(answer)
    settings = {"concurrency": None, "temperature": plan["temperature"], "max_tokens": plan["max_tokens"],
                **plan.get("settings", {}), "batch": record.id, "batch_cost_usd": g.cost_usd}
    judge = Target(plan["judge"]["model"], None, label="judge") if plan.get("judge") else None
    g.results = build_results(plan["name"], items, targets, answers, judge=judge, settings=settings)
    return g


def _judged(g: Gathered, plan: dict[str, Any], cid: str, by_id: dict[str, ResultLine], item: BenchItem,
            target: Target, text: str, message: Any, tin: int, tout: int) -> Answer:
    """A judge-scored answer scored from its judge request's result line (a failure is listed, kind "judge")."""
    jid = "jdg-" + cid.split("-", 1)[1]
    line = by_id.get(jid)
    if line is None or not line.ok:
        reason = line.reason if line is not None else "no result line for the judge request"
        g.failures.append({"custom_id": cid, "kind": "judge", "reason": f"the judge failed: {reason}"})
        return judge_failed(item, target, text, None, tin, tout, reason or "failed")
    model = plan["judge"]["model"]
    jin, jout = _tally(g, model, line)
    jtext = reply_parts(line.completion, model, [])[0]
    return score_reply(item, target, None, text, message, None, tin, tout,
                       judgement=(jtext, batch_cost_usd(model, jin, jout)))
