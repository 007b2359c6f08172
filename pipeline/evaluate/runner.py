"""Run a benchmark against several models at once and keep the scoreboard.

All (model, question) calls share one set of worker threads, interleaved question by question, so the models
progress together and a slow one does not hold the others' results back. A failed call is kept as a
wrong answer with its error, and counted, never dropped.
"""

from __future__ import annotations

import queue
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.errors import CancelledError, ConfigError, explain
from pipeline.evaluate.bench import BenchItem, benchmark_hash
from pipeline.evaluate.costs import equivalent_cost_usd, equivalent_model
from pipeline.evaluate.fewshot import with_shots
from pipeline.evaluate.scoring import judge_messages, parse_judgement, score
from pipeline.evaluate.stats import wilson_interval
from pipeline.evaluate.tasks import TASK_SCORINGS, label_report, score_task, shown_answer
from pipeline.evaluate.verdict import comparisons, verdict_lines
from pipeline.tokens import count_messages, counter_for, usage_cost_usd

DEFAULT_CONCURRENCY = 4
DEFAULT_MAX_TOKENS = 512


@dataclass(frozen=True)
class Target:
    """A model to evaluate (or the judge): its id, a client for its endpoint, a display label."""

    model: str
    client: Any
    label: str = ""
    #: "base", "fine_tuned", "few_shot", "teacher" (or ""): what the verdict compares and how a free
    #: local model's tokens are priced on OpenAI.
    role: str = ""
    #: Few-shot turns put before each question (pipeline.evaluate.fewshot).
    shots: tuple[dict, ...] = ()

    @property
    def name(self) -> str:
        return self.label or self.model


@dataclass
class Answer:
    item: int
    model: str
    answer: str
    correct: bool
    verdict: str
    latency_s: float | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None = None
    error: str | None = None
    note: str = ""
    judge_cost_usd: float | None = None
    equivalent_cost_usd: float | None = None
    #: json_schema items: {field: right?} of the expected object's fields.
    fields: dict[str, bool] | None = None


def request_body(model: str, messages: list[dict], temperature: float | None, max_tokens: int,
                 tools: list | None = None) -> dict[str, Any]:
    """The body of one question's request: what the interactive run sends, and each line of a batch file."""
    body: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}
    if temperature is not None:
        body["temperature"] = temperature
    if tools:
        body["tools"] = tools
    return body


def item_body(item: BenchItem, target: Target, temperature: float | None, max_tokens: int) -> dict[str, Any]:
    """The request asking `target` one benchmark question (with its few-shot turns and tools)."""
    return request_body(target.model, with_shots(item.messages, target.shots), temperature, max_tokens, item.tools)


def reply_parts(resp: Any, model: str, messages: list[dict]) -> tuple[str, int, int, Any]:
    """(text, input tokens, output tokens, the reply's message) of a chat completion; a server without
    usage is counted with the model's tokenizer."""
    message = resp.choices[0].message if resp.choices else None
    text = (message.content or "") if message is not None else ""
    if resp.usage is not None:
        return text, resp.usage.prompt_tokens, resp.usage.completion_tokens, message
    counter = counter_for(model)  # a server without usage: estimate
    return text, count_messages(messages, counter), counter.count(text), message


def _call(target: Target, body: dict[str, Any]) -> tuple[str, float, int, int, Any]:
    """(text, latency, input tokens, output tokens, the reply's message: tool calls are read from it)."""
    started = time.perf_counter()
    resp = target.client.chat.completions.create(**body)
    latency = time.perf_counter() - started
    text, tin, tout, message = reply_parts(resp, target.model, body["messages"])
    return text, latency, tin, tout, message


def _answer_one(item: BenchItem, target: Target, judge: Target | None, temperature: float | None,
                max_tokens: int) -> Answer:
    try:
        text, latency, tin, tout, message = _call(target, item_body(item, target, temperature, max_tokens))
    except Exception as exc:  # one failed call is one wrong answer with its reason, not a failed run
        return Answer(item.index, target.name, "", False, "error", None, 0, 0, error=explain(exc))
    return score_reply(item, target, judge, text, message, latency, tin, tout)


def judge_body(judge_model: str, item: BenchItem, answer: str) -> dict[str, Any]:
    """The judge's request for one answer: the interactive call's body, and a judge batch's line."""
    return request_body(judge_model, judge_messages(item.messages, item.expected, answer), 0.0, 16)


def score_reply(item: BenchItem, target: Target, judge: Target | None, text: str, message: Any,
                latency: float | None, tin: int, tout: int,
                judgement: tuple[str, float | None] | None = None) -> Answer:
    """Score one reply (interactive or from a batch's results file) into the scoreboard's Answer.
    `judgement` (the judge's reply text and its cost) is a judge batch's verdict: no judge call then."""
    costs = {"cost_usd": usage_cost_usd(target.model, tin, tout),
             "equivalent_cost_usd": equivalent_cost_usd(target.model, target.role, tin, tout)}
    if item.scoring in TASK_SCORINGS:
        t = score_task(item, text, message)
        return Answer(item.index, target.name, shown_answer(text, message), t.correct, t.extracted, latency, tin,
                      tout, note=t.note, fields=t.fields or None, **costs)
    if item.scoring != "judge":
        v = score(item.scoring, text, item.expected)
        return Answer(item.index, target.name, text, v.correct, v.extracted, latency, tin, tout, note=v.note, **costs)
    if judgement is not None:
        jtext, judge_cost = judgement
    else:
        if judge is None:  # run_benchmark checks this up front; a direct caller gets the same message
            raise ConfigError("Judge-scored questions need a judge model: choose one for the judge role in Settings.")
        try:
            jtext, _, jin, jout, _ = _call(judge, judge_body(judge.model, item, text))
        except Exception as exc:
            return judge_failed(item, target, text, latency, tin, tout, explain(exc))
        judge_cost = usage_cost_usd(judge.model, jin, jout)
    v = parse_judgement(jtext)
    return Answer(item.index, target.name, text, v.correct, v.extracted, latency, tin, tout,
                  note=v.note, judge_cost_usd=judge_cost, **costs)


def judge_failed(item: BenchItem, target: Target, text: str, latency: float | None, tin: int, tout: int,
                 reason: str) -> Answer:
    """A judge-scored answer whose judge call failed: wrong, with the reason (interactive or batch)."""
    costs = {"cost_usd": usage_cost_usd(target.model, tin, tout),
             "equivalent_cost_usd": equivalent_cost_usd(target.model, target.role, tin, tout)}
    return Answer(item.index, target.name, text, False, "judge error", latency, tin, tout,
                  error=f"The judge failed: {reason}", **costs)


def iter_answers(items: Sequence[BenchItem], targets: Sequence[Target], *, judge: Target | None = None,
                 concurrency: int = DEFAULT_CONCURRENCY, temperature: float | None = 0.0,
                 max_tokens: int = DEFAULT_MAX_TOKENS,
                 cancel: threading.Event | None = None) -> Iterator[Answer]:
    """Yield answers as they complete. Closing the generator or setting `cancel` stops new calls."""
    if any(i.scoring == "judge" for i in items) and judge is None:
        raise ConfigError("This benchmark has judge-scored questions: choose a judge model "
                          "(--judge on the command line, the judge picker in the Evaluate tab).")
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise ConfigError("The same model is listed twice; give each model once (or a different label).")
    pairs: queue.Queue[tuple[BenchItem, Target]] = queue.Queue()
    for item in items:
        for t in targets:
            pairs.put((item, t))
    total = pairs.qsize()
    done: queue.Queue[Answer] = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            try:
                item, target = pairs.get_nowait()
            except queue.Empty:
                return
            try:
                done.put(_answer_one(item, target, judge, temperature, max_tokens))
            except Exception as exc:  # a scoring bug must not hang the run: the answer records it
                done.put(Answer(item.index, target.name, "", False, "error", None, 0, 0, error=explain(exc)))

    # Daemon threads, not a ThreadPoolExecutor: Ctrl-C or a closed page must not wait for calls in
    # flight (a local model can take minutes), and the executor's exit hook joins its workers.
    for n in range(min(max(1, concurrency), total)):
        threading.Thread(target=work, name=f"eval-{n}", daemon=True).start()
    try:
        for _ in range(total):
            while True:
                if cancel is not None and cancel.is_set():
                    raise CancelledError("Evaluation stopped; the answers so far are kept.")
                try:
                    answer = done.get(timeout=0.5)
                    break
                except queue.Empty:
                    continue
            yield answer
    finally:
        stop.set()


def _sum_or_none(values: list[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else round(sum(values), 8)  # type: ignore[arg-type]


def summarise(items: Sequence[BenchItem], targets: Sequence[Target], answers: Sequence[Answer]) -> list[dict]:
    rows = []
    for t in targets:
        mine = [a for a in answers if a.model == t.name]
        total = len(items)
        correct = sum(a.correct for a in mine)
        lat = [a.latency_s for a in mine if a.latency_s is not None]
        ok = [a for a in mine if a.error is None]
        cost = _sum_or_none([a.cost_usd for a in ok])
        equivalent = _sum_or_none([a.equivalent_cost_usd for a in ok]) if equivalent_model(t.model, t.role) else None
        judge_costs = [a.judge_cost_usd for a in mine if a.judge_cost_usd is not None]
        tokens = sum(a.input_tokens + a.output_tokens for a in mine)
        answered = max(1, len(ok))
        lo, hi = wilson_interval(correct, total)
        rows.append({
            "model": t.model, "label": t.name, "role": t.role, "shots": len(t.shots) // 2,
            "accuracy": round(correct / total, 4) if total else 0.0, "ci95": [round(lo, 4), round(hi, 4)],
            "correct": correct, "total": total,
            "answered": len(mine), "errors": sum(a.error is not None for a in mine),
            "mean_latency_s": round(sum(lat) / len(lat), 3) if lat else None,
            "median_latency_s": round(statistics.median(lat), 3) if lat else None,
            "input_tokens": sum(a.input_tokens for a in mine), "output_tokens": sum(a.output_tokens for a in mine),
            "tokens_per_100": round(tokens / answered * 100),
            "cost_usd": cost, "cost_per_100_usd": None if cost is None else round(cost / answered * 100, 6),
            "equivalent_model": equivalent_model(t.model, t.role),
            "equivalent_cost_per_100_usd": None if equivalent is None else round(equivalent / answered * 100, 6),
            "judge_cost_usd": round(sum(judge_costs), 8) if judge_costs else None,
        })
    return rows


def build_results(name: str, items: Sequence[BenchItem], targets: Sequence[Target], answers: Sequence[Answer],
                  *, judge: Target | None = None, leaks: list[dict] | None = None,
                  settings: dict | None = None) -> dict:
    """The saved (and printed) form: scoreboard, pairwise comparisons, verdicts, per-question drill-down."""
    by_item: dict[int, dict[str, dict]] = {}
    for a in answers:
        by_item.setdefault(a.item, {})[a.model] = {k: v for k, v in asdict(a).items() if k not in ("item", "model")}
    results = {
        "benchmark": name, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "n_questions": len(items), "judge": judge.model if judge else None,
        "results": summarise(items, targets, answers),
        "items": [{"index": i.index, "question": i.question, "expected": i.expected, "scoring": i.scoring,
                   "answers": by_item.get(i.index, {})} for i in items],
        "leakage": leaks or [],
    }
    results |= task_reports(items, targets, answers)
    results["benchmark_sha256"] = benchmark_hash(items)
    results["settings"] = dict(settings or {})
    results["comparisons"] = comparisons(results)
    results["verdicts"] = verdict_lines(results)
    return results


def task_reports(items: Sequence[BenchItem], targets: Sequence[Target], answers: Sequence[Answer]) -> dict:
    """Per model: `labels` (per-label precision/recall/F1 + confusion matrix) over label items, `fields`
    (accuracy of each expected field) over json_schema items; only the keys the benchmark needs."""
    out: dict[str, dict] = {}
    label_items = {i.index: i for i in items if i.scoring == "label"}
    schema_items = {i.index for i in items if i.scoring == "json_schema"}
    all_labels = list(dict.fromkeys(lab for i in label_items.values() for lab in (*i.labels, i.expected)))
    for t in targets:
        mine = [a for a in answers if a.model == t.name]
        if label_items:
            pairs = [(label_items[a.item].expected, a.verdict) for a in mine if a.item in label_items]
            out.setdefault("labels", {})[t.name] = label_report([p[0] for p in pairs], [p[1] for p in pairs],
                                                               all_labels)
        if schema_items:
            tally: dict[str, list[bool]] = {}
            for a in mine:
                for name, right in (a.fields or {}).items() if a.item in schema_items else ():
                    tally.setdefault(name, []).append(right)
            out.setdefault("fields", {})[t.name] = {k: round(sum(v) / len(v), 4) for k, v in tally.items()}
    return out


def run_benchmark(name: str, items: Sequence[BenchItem], targets: Sequence[Target], *,
                  judge: Target | None = None, on_answer: Callable[[Answer, int, int], None] | None = None,
                  settings: dict | None = None, **opts: Any) -> dict:
    answers: list[Answer] = []
    total = len(items) * len(targets)
    for a in iter_answers(items, targets, judge=judge, **opts):
        answers.append(a)
        if on_answer:
            on_answer(a, len(answers), total)
    kept = {k: v for k, v in opts.items() if k in ("concurrency", "temperature", "max_tokens")}
    return build_results(name, items, targets, answers, judge=judge, settings={**kept, **(settings or {})})


def every_model_evaluated(results: dict) -> bool:
    return all(r["answered"] == r["total"] and r["errors"] == 0 for r in results["results"])
