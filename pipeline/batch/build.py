"""Build a batch: the request file (one `/v1/chat/completions` body per line, written streamed) and its
record. Every body is made by the function the interactive path sends with (`teacher.chat_body` +
`generate.steps.request_messages`; `evaluate.runner.item_body`), so a batch asks exactly what a run
one request at a time would.

custom_id maps each line back: `gen-<seed>-<index>` is request number `index` of the generation (its
seeded topic/difficulty picks and, for paraphrase, source example `index mod len(sources)`);
`eval-<item>-<target>` is benchmark item `item` asked of target number `target`.

Where a batch differs from a run one by one (decided here, said in the UI): the "do not repeat"
sample of earlier examples in each prompt is drawn from the draft as it is when the batch is built
(a batch cannot see its own replies); every usable example is kept at collect time, also beyond
`n` (the extra ~10% of requests that cover parse/duplicate losses were paid for).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from pipeline import atomic
from pipeline.batch.costs import BatchEstimate, Tally
from pipeline.batch.records import BatchRecord, Part, new_id, save_batch
from pipeline.errors import InputError, ProviderError, explain
from pipeline.evaluate.bench import BenchItem
from pipeline.evaluate.runner import Target, item_body, judge_body
from pipeline.generate import prompts, steps
from pipeline.generate.config import GenerationConfig
from pipeline.generate.costing import requests_needed
from pipeline.generate.parse import ParseFailure, parse_answer
from pipeline.generate.runner import RECENT_KEEP
from pipeline.generate.store import RunFiles, load_existing
from pipeline.generate.tasks import effective
from pipeline.generate.teacher import chat_body, reply_of
from pipeline.generate.templates import Setup, Template, Variable, request_schema, resolve_variables

URL = "/v1/chat/completions"
#: A judge's verdict is one word (CORRECT / INCORRECT): a few tokens expected, judge_body's cap at most.
JUDGE_REPLY_TOKENS = 4


def request_line(custom_id: str, body: dict[str, Any]) -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": URL, "body": body}, ensure_ascii=False) + "\n"


def template_to_json(template: Template) -> dict[str, Any]:
    return dataclasses.asdict(template)


def template_from_json(raw: dict[str, Any]) -> Template:
    return Template(**{**raw, "variables": {k: Variable(**v) for k, v in raw.get("variables", {}).items()},
                       "setup": Setup(**raw["setup"]) if raw.get("setup") else None,
                       "balanced": tuple(raw.get("balanced", ()))})


# -- generation ------------------------------------------------------------------------------------
def _setup(t: Template, variables: dict[str, str], config: GenerationConfig, client: Any) -> dict[str, str]:
    """The custom template's first call, made at once (every request of the batch carries its answer):
    the same request the interactive run's setup sends, through a sync client."""
    if t.setup is None:
        return {}
    body = chat_body(config.model, prompts.setup_messages(t, variables), temperature=config.temperature,
                     max_tokens=config.max_tokens or t.max_tokens, schema=t.setup.schema, name=f"{t.name}_setup")
    try:
        reply = reply_of(client.chat.completions.create(**body))
    except Exception as exc:  # the endpoint's refusal, said in words
        raise ProviderError(f"The teacher could not write the task's system prompt ({explain(exc)}). Write it "
                            "yourself, or try again.") from exc
    parsed = parse_answer(reply.text, t.setup.schema, finish_reason=reply.finish_reason)
    if isinstance(parsed, ParseFailure):
        raise ProviderError(f"The teacher's system prompt for this task did not parse ({parsed.reason}). Write "
                            "the system prompt yourself, or use a stronger teacher.")
    return {k: str(parsed[k]).strip() for k in t.setup.schema.get("properties", {})}


def build_generation(config: GenerationConfig, *, visitor: str | None, endpoint: str,
                     title: str | None = None, client: Any = None) -> BatchRecord:
    """Write the request file of a generation and record it (state "built": nothing is sent yet). A
    custom template whose system prompt the teacher writes needs `client` (a sync client for the
    endpoint): that one call is made now."""
    t = config.template
    if t.source and not config.sources:
        raise InputError(f"Template '{t.name}' rewrites existing examples: add some to the draft or give a "
                         "source file first.")
    files = RunFiles(config.out)
    state = files.load_state()
    existing = load_existing(config.out)
    variables = resolve_variables(t, {**state.get("setup_outputs", {}), **config.variables})
    t = effective(t, variables)
    wanted = list(t.setup.schema.get("properties", {})) if t.setup else []
    if t.setup and not all(str(variables.get(k, "")).strip() for k in wanted):
        if client is None:
            raise InputError("Batch mode needs the task's system prompt written down: fill it in the form, or "
                             "build the batch with the endpoint at hand so the teacher writes it first.")
        outputs = _setup(t, variables, config, client)
        variables.update(outputs)
        state["setup_outputs"] = outputs  # a later run or batch keeps the same system prompt
    remaining = config.n - len(existing)
    if remaining <= 0:
        raise InputError(f"{config.out.name} already holds {len(existing)} examples (asked: {config.n}). "
                         "Ask for more, or pick another output file.")
    per_request = config.per_request(variables)
    count = requests_needed(remaining, per_request)
    start = int(state.get("requests_made", 0))  # fresh request numbers: other seeds than earlier runs
    recent = ((config.avoid or []) + existing)[-RECENT_KEEP:]
    schema = request_schema(t, per_request)
    max_tokens = config.max_tokens or t.max_tokens
    record = BatchRecord(
        id=new_id("gen"), kind="generate", endpoint=endpoint, visitor=visitor, created_at=time.time(),
        title=title or f"{count} requests · template {t.name} · {config.model} -> {config.out.name}",
        requests=count, parts=[Part(model=config.model, first_line=0, lines=count)],
        plan={"template": template_to_json(config.template), "variables": variables, "seed": config.seed,
              "n": config.n, "out": str(config.out), "first_index": start, "model": config.model,
              "near_duplicate_threshold": config.near_duplicate_threshold, "has_sources": bool(config.sources),
              "per_request": per_request, "max_tokens": max_tokens,
              "check": {"model": config.check_model or config.model} if config.check and t.checkable else None})
    record.folder.mkdir(parents=True, exist_ok=True)
    if t.source and config.sources:
        atomic.write_lines(record.folder / "sources.jsonl",
                     (json.dumps(s, ensure_ascii=False) + "\n" for s in config.sources))
    tally = Tally()

    def lines() -> Iterator[str]:
        for index in range(start, start + count):
            messages = steps.request_messages(t, variables, seed=config.seed, index=index, recent=recent,
                                              sources=config.sources, sample_size=config.sample_size)
            tally.add(config.model, messages, t.expected_output_tokens, max_tokens)
            body = chat_body(config.model, messages, temperature=config.temperature, max_tokens=max_tokens,
                             schema=schema, name=t.name)
            yield request_line(f"gen-{config.seed}-{index}", body)

    atomic.write_lines(record.requests_path, lines())
    if record.plan["check"]:  # one check per example, sent as a second batch once the replies are in
        per = count * per_request
        tally.add_counts(record.plan["check"]["model"], per, (t.expected_output_tokens + 50) * per,
                         t.expected_output_tokens * per, max_tokens * per)
    record.estimate = tally.estimate().to_json()
    state["requests_made"] = start + count  # a later run or batch draws other seeds
    files.save_state(state)
    save_batch(record)
    return record


# -- evaluation ------------------------------------------------------------------------------------
def target_to_json(t: Target) -> dict[str, Any]:
    return {"model": t.model, "label": t.label, "role": t.role, "shots": list(t.shots)}


def build_evaluation(name: str, items: Sequence[BenchItem], targets: Sequence[Target], *, visitor: str | None,
                     endpoint: str, temperature: float | None = 0.0, max_tokens: int = 512,
                     settings: dict | None = None, title: str | None = None,
                     judge: str | None = None) -> BatchRecord:
    """Write the request file asking every target every question; one part per model. `judge` (a model
    on the same endpoint) grades the judge-scored answers as a second batch once they are in (judging.py)."""
    judged = sum(i.scoring == "judge" for i in items)
    if judged and not judge:
        raise InputError("This benchmark has judge-scored questions: choose a judge model (--judge on the command "
                         "line, the judge picker in the Evaluate tab) on the same endpoint as the answers.")
    if not items or not targets:
        raise InputError("Nothing to ask: the batch needs at least one question and one model.")
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise InputError("The same model is listed twice; give each model once (or a different label).")
    by_model: dict[str, list[int]] = {}
    for number, t in enumerate(targets):
        by_model.setdefault(t.model, []).append(number)
    parts, first = [], 0
    for model, numbers in by_model.items():
        parts.append(Part(model=model, first_line=first, lines=len(numbers) * len(items)))
        first += len(numbers) * len(items)
    record = BatchRecord(
        id=new_id("eval"), kind="eval", endpoint=endpoint, visitor=visitor, created_at=time.time(),
        title=title or f"{len(items)} questions x {len(targets)} model(s) · {name}", requests=first, parts=parts,
        plan={"name": name, "items": [dataclasses.asdict(i) for i in items],
              "targets": [target_to_json(t) for t in targets], "temperature": temperature,
              "max_tokens": max_tokens, "settings": dict(settings or {}),
              "judge": {"model": judge} if judged else None})
    record.folder.mkdir(parents=True, exist_ok=True)
    tally = Tally()

    def lines() -> Iterator[str]:
        for numbers in by_model.values():
            for number in numbers:
                target = targets[number]
                for item in items:
                    body = item_body(item, target, temperature, max_tokens)
                    _count_answer(tally, target.model, body, max_tokens)
                    yield request_line(f"eval-{item.index}-{number}", body)

    atomic.write_lines(record.requests_path, lines())
    if judged and judge:
        _count_judge(tally, items, len(targets), judge, max_tokens)
    record.estimate = tally.estimate().to_json()
    save_batch(record)
    return record


def estimate_evaluation(items: Sequence[BenchItem], targets: Sequence[Target], *, max_tokens: int = 512,
                        temperature: float | None = 0.0, judge: str | None = None) -> BatchEstimate:
    """What `build_evaluation` will count for these requests, before anything is written (the Evaluate
    tab's preview): the same bodies and the same counting, the judge's second phase included."""
    tally = Tally()
    for target in targets:
        for item in items:
            _count_answer(tally, target.model, item_body(item, target, temperature, max_tokens), max_tokens)
    if judge and any(i.scoring == "judge" for i in items):
        _count_judge(tally, items, len(targets), judge, max_tokens)
    return tally.estimate()


def _count_answer(tally: Tally, model: str, body: dict[str, Any], max_tokens: int) -> None:
    # Benchmark answers are short: a quarter of max_tokens expected, max_tokens at worst.
    tally.add(model, body["messages"], max(1, max_tokens // 4), max_tokens)


def _count_judge(tally: Tally, items: Sequence[BenchItem], contestants: int, judge: str, max_tokens: int) -> None:
    """The judge's second phase, counted before the answers it grades exist: one request per
    judge-scored question and contestant, each the real judge body (question, reference, rules) plus
    an answer of the expected length, at the judge model's batch price."""
    answer = max(1, max_tokens // 4)
    for item in items:
        if item.scoring != "judge":
            continue
        body = judge_body(judge, item, "")
        for _ in range(contestants):
            tally.add(judge, body["messages"], JUDGE_REPLY_TOKENS, body["max_tokens"])
        tally.add_counts(judge, 0, answer * contestants, 0, 0)
