"""`python -m pipeline eval BENCH.jsonl --model M [--model M2 ...] [--judge MODEL] [--json]`.

Prints the scoreboard (or with --json one object: {"results": [{model, accuracy, correct, total,
mean_latency_s, cost_usd, ...}], "items": [...]}). Exit 0 when every model answered every question,
1 when some call failed, 2 for bad usage or an unreadable benchmark.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipeline.commands import add_endpoint_flags, emit_json, openai_client, progress
from pipeline.errors import InputError
from pipeline.evaluate import Target, every_model_evaluated, load_benchmark, run_benchmark
from pipeline.evaluate.runner import DEFAULT_CONCURRENCY, DEFAULT_MAX_TOKENS


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("eval", help="score models on a benchmark JSONL (messages + expected)")
    p.add_argument("bench", type=Path, help="benchmark JSONL: {messages, expected, scoring} per line")
    p.add_argument("--model", action="append", required=True, help="model id to evaluate (repeat for more)")
    p.add_argument("--judge", help="judge model for 'judge'-scored questions (same endpoint)")
    p.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="calls in flight at once")
    p.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--out", type=Path, help="also write the full results (with every answer) to this JSON file")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    add_endpoint_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        raise InputError("--concurrency must be 1 or more.")
    items = load_benchmark(args.bench)
    client = openai_client(args, max_retries=2)
    targets = [Target(m, client) for m in dict.fromkeys(args.model)]
    judge = Target(args.judge, client) if args.judge else None
    progress(f"Evaluating {len(targets)} model(s) on {len(items)} questions from {args.bench.name}...")

    def on_answer(answer: Any, done: int, total: int) -> None:
        mark = "error" if answer.error else ("ok" if answer.correct else "wrong")
        progress(f"[{done}/{total}] {answer.model} q{answer.item + 1}: {mark}")

    results = run_benchmark(args.bench.name, items, targets, judge=judge, on_answer=on_answer,
                            concurrency=args.concurrency, max_tokens=args.max_tokens,
                            temperature=args.temperature)
    if args.out:
        import json

        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    if args.json:
        emit_json(results)
    else:
        _print_table(results)
    for row in results["results"]:
        if row["errors"]:
            first = next(a["error"] for it in results["items"] for m, a in it["answers"].items()
                         if m == row["label"] and a["error"])
            progress(f"{row['label']}: {row['errors']} call(s) failed, e.g. {first}")
    return 0 if every_model_evaluated(results) else 1


def _print_table(results: dict) -> None:
    print(f"{'model':<48} {'accuracy':>8} {'correct':>9} {'latency':>8} {'cost/100':>10}")
    for r in results["results"]:
        cost = "unknown" if r["cost_per_100_usd"] is None else f"${r['cost_per_100_usd']:.4f}"
        lat = "-" if r["mean_latency_s"] is None else f"{r['mean_latency_s']:.2f}s"
        print(f"{r['label']:<48} {r['accuracy']:>8.0%} {r['correct']:>4}/{r['total']:<4} {lat:>8} {cost:>10}")
