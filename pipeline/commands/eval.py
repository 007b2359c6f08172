"""`python -m pipeline eval BENCH.jsonl --model M [--model M2 ...] [--few-shot M --shots K --few-shot-from
TRAIN.jsonl] [--teacher T] [--judge MODEL] [--training-cost USD] [--json]`.

Prints the scoreboard: accuracy with its 95% Wilson interval, cost per 100 questions, median latency,
then in words whether the fine-tuned model (an `ft:` id) beats the others at 95% (exact McNemar).
With --json one object: {"results": [{label, model, role, accuracy, ci95: [lo, hi], correct, total,
cost_per_100_usd, equivalent_cost_per_100_usd, median_latency_s, ...}], "comparisons": [{a, b,
a_only, b_only, p_value}], "verdicts": [...], "break_even": {...} | null, "items": [...]}. A label is
the model id as given, or "MODEL + K-shot" for a few-shot contestant. Exit 0 when every model
answered every question, 1 when some call failed, 2 for bad usage or an unreadable benchmark.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipeline.commands import add_endpoint_flags, emit_json, endpoint_name, openai_client, progress
from pipeline.commands.batchflow import add_wait_flags
from pipeline.commands.scoreboard import print_table
from pipeline.errors import InputError
from pipeline.evaluate import Target, every_model_evaluated, load_benchmark, run_benchmark
from pipeline.evaluate.costs import break_even
from pipeline.evaluate.fewshot import few_shot_label, pick_shots
from pipeline.evaluate.runner import DEFAULT_CONCURRENCY, DEFAULT_MAX_TOKENS
from pipeline.models import is_fine_tuned


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("eval", help="score models on a benchmark JSONL (messages + expected)")
    p.add_argument("bench", type=Path, help="benchmark JSONL: {messages, expected, scoring} per line")
    p.add_argument("--model", action="append", default=[], help="model id to evaluate (repeat for more)")
    p.add_argument("--few-shot", action="append", default=[], metavar="MODEL",
                   help="also evaluate MODEL prompted with --shots examples from --few-shot-from (repeat for more)")
    p.add_argument("--shots", type=int, default=3, help="examples in a few-shot prompt (default 3)")
    p.add_argument("--few-shot-from", type=Path, metavar="TRAIN.jsonl", help="training data the shots come from")
    p.add_argument("--few-shot-seed", type=int, default=0, help="which shots (chosen once per run)")
    p.add_argument("--teacher", help="the teacher model, also evaluated (for the break-even and the verdicts)")
    p.add_argument("--training-cost", type=float, help="the fine-tune's training cost in USD (for the break-even)")
    p.add_argument("--judge", help="judge model for 'judge'-scored questions (same endpoint)")
    p.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="calls in flight at once")
    p.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--out", type=Path, help="also write the full results (with every answer) to this JSON file")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--batch", action="store_true",
                   help="send every question as one batch (Batch API: half price, results within 24 h); "
                        "prints the batch id, see `python -m pipeline batches`")
    add_wait_flags(p)
    add_endpoint_flags(p)
    p.set_defaults(run=run)


def _targets(args: argparse.Namespace, items: list, client: Any) -> list[Target]:
    targets = [Target(m, client, role="fine_tuned" if is_fine_tuned(m) else "base") for m in dict.fromkeys(args.model)]
    if args.few_shot:
        if not args.few_shot_from:
            raise InputError("--few-shot needs --few-shot-from TRAIN.jsonl (the examples to show).")
        from pipeline.finetune.session import load_examples

        shots = tuple(pick_shots(load_examples(args.few_shot_from).examples, items, args.shots, args.few_shot_seed))
        targets += [Target(m, client, label=few_shot_label(m, len(shots) // 2), role="few_shot", shots=shots)
                    for m in dict.fromkeys(args.few_shot)]
    if args.teacher:
        targets.append(Target(args.teacher, client, label=args.teacher if args.teacher not in args.model
                              else f"{args.teacher} (teacher)", role="teacher"))
    if not targets:
        raise InputError("Give at least one --model (or --few-shot / --teacher) to evaluate.")
    return targets


def run(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        raise InputError("--concurrency must be 1 or more.")
    items = load_benchmark(args.bench)
    client = openai_client(args, max_retries=2)
    targets = _targets(args, items, client)
    judge = Target(args.judge, client) if args.judge else None
    progress(f"Evaluating {len(targets)} contestant(s) on {len(items)} questions from {args.bench.name}...")

    def on_answer(answer: Any, done: int, total: int) -> None:
        mark = "error" if answer.error else ("ok" if answer.correct else "wrong")
        progress(f"[{done}/{total}] {answer.model} q{answer.item + 1}: {mark}")

    settings = {"shots": args.shots if args.few_shot else 0, "few_shot_seed": args.few_shot_seed,
                "few_shot_from": str(args.few_shot_from) if args.few_shot else None}
    if args.batch:
        return _run_batch(args, items, targets, judge, settings, client)
    results = run_benchmark(args.bench.name, items, targets, judge=judge, on_answer=on_answer,
                            concurrency=args.concurrency, max_tokens=args.max_tokens,
                            temperature=args.temperature, settings=settings)
    return report(args, results)


def _run_batch(args: argparse.Namespace, items: list, targets: list[Target], judge: Target | None,
               settings: dict, client: Any) -> int:
    from pipeline import batch
    from pipeline.commands.batchflow import submit_and_follow

    # The judge (same endpoint) grades judge-scored answers as a second batch once they are in.
    record = batch.build_evaluation(args.bench.name, items, targets, visitor=None, endpoint=endpoint_name(args),
                                    temperature=args.temperature, max_tokens=args.max_tokens, settings=settings,
                                    judge=judge.model if judge else None)
    collected = submit_and_follow(record, client, args)
    return 0 if collected is None else report(args, collected.results)


def report(args: argparse.Namespace, results: dict) -> int:
    """Print (or emit) a scoreboard, interactive or from a batch, and say which calls failed."""
    by_role = {r["role"]: r for r in results["results"]}
    results["break_even"] = (break_even(by_role["fine_tuned"], by_role["teacher"], args.training_cost)
                             if "fine_tuned" in by_role and "teacher" in by_role else None)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    if args.json:
        emit_json(results)
    else:
        print_table(results, args.training_cost is not None)
    for row in results["results"]:
        if row["errors"]:
            first = next(a["error"] for it in results["items"] for m, a in it["answers"].items()
                         if m == row["label"] and a["error"])
            progress(f"{row['label']}: {row['errors']} call(s) failed, e.g. {first}")
    return 0 if every_model_evaluated(results) else 1
