"""`python -m pipeline bench make|write`: benchmarks from your own data.

    bench make DATASET.jsonl --holdout N --out BENCH.jsonl --rest REST.jsonl
               [--scoring auto|final_answer|contains|judge] [--seed S] [--json]
        Moves about N examples (whole groups of near-duplicate questions / same answers, so nothing
        leaks) into BENCH.jsonl and writes the remaining training examples to REST.jsonl. --json prints
        {benchmark, rest, held_out, groups_held_out, groups_total, scoring} (+ rest_examples,
        scoring_counts).
    bench write DATASET.jsonl --n N --out BENCH.jsonl [--teacher MODEL --base-url URL --api-key KEY] [--json]
        The teacher writes N new test questions about what the dataset teaches; near-duplicates of
        training questions are dropped. --json prints {benchmark, written, asked,
        dropped_near_duplicates, unparsable, scoring_counts, input_tokens, output_tokens}.

Exit 0 done, 1 the teacher wrote fewer questions than asked, 2 bad usage or an unreadable dataset.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.commands import add_endpoint_flags, emit_json, openai_client, progress
from pipeline.dataset import write_jsonl
from pipeline.errors import InputError
from pipeline.evaluate.make import MODES, make_benchmark
from pipeline.finetune.session import load_examples

DEFAULT_TEACHER = "gpt-4.1"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("bench", help="make a benchmark from your own data (hold out, or teacher-written)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="bench_command", required=True)
    make = sub.add_parser("make", help="hold out whole groups of the dataset as a benchmark")
    make.add_argument("dataset", type=Path)
    make.add_argument("--holdout", type=int, required=True, help="about how many examples to hold out")
    make.add_argument("--out", type=Path, required=True, help="benchmark JSONL to write")
    make.add_argument("--rest", type=Path, required=True, help="the remaining training examples (JSONL)")
    make.add_argument("--scoring", choices=MODES, default="auto")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    make.set_defaults(run=run_make)
    write = sub.add_parser("write", help="the teacher writes new test questions about the dataset")
    write.add_argument("dataset", type=Path)
    write.add_argument("--n", type=int, required=True, help="how many questions")
    write.add_argument("--out", type=Path, required=True, help="benchmark JSONL to write")
    write.add_argument("--teacher", help=f"teacher model (default: {DEFAULT_TEACHER}; on the local backend its model)")
    write.add_argument("--seed", type=int, default=0)
    write.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    add_endpoint_flags(write)
    write.set_defaults(run=run_write)


def _examples(path: Path) -> list:
    read = load_examples(path)
    if read.errors:
        progress(f"{path.name}: {len(read.errors)} line(s) could not be read and were left out.")
    return read.examples


def run_make(args: argparse.Namespace) -> int:
    examples = _examples(args.dataset)
    made = make_benchmark(examples, args.holdout, scoring=args.scoring, seed=args.seed)
    write_jsonl(made.items, args.out)
    write_jsonl(made.rest, args.rest)
    s = made.split
    out = {"benchmark": str(args.out), "rest": str(args.rest), "held_out": len(made.items),
           "groups_held_out": s.groups_held_out, "groups_total": s.groups_total, "scoring": made.scoring,
           "rest_examples": len(made.rest), "scoring_counts": made.scoring_counts}
    if args.json:
        emit_json(out)
    else:
        print(f"{args.out}: {len(made.items)} questions held out ({s.groups_held_out} of {s.groups_total} groups), "
              f"scoring {made.scoring}; {args.rest}: {len(made.rest)} examples to train on. "
              "Review the expected answers before use.")
    return 0


def run_write(args: argparse.Namespace) -> int:
    from pipeline.evaluate.write import write_benchmark

    if args.n < 1:
        raise InputError("--n must be 1 or more.")
    examples = _examples(args.dataset)
    client = openai_client(args, async_=True)
    model = args.teacher
    if not model:
        ids = [m.id for m in openai_client(args).models.list().data]
        model = DEFAULT_TEACHER if DEFAULT_TEACHER in ids or not ids else ids[0]
    progress(f"Asking {model} for {args.n} new test questions about {args.dataset.name}...")
    written = write_benchmark(examples, args.n, client, model, seed=args.seed, on_progress=progress)
    if written.items:
        write_jsonl(written.items, args.out)
    for note in written.notes:
        progress(note)
    out = {"benchmark": str(args.out) if written.items else None, "written": len(written.items),
           "asked": written.asked, "dropped_near_duplicates": written.dropped_near_duplicates,
           "unparsable": written.unparsable, "scoring_counts": dict(Counter(i["scoring"] for i in written.items)),
           "teacher": model, "input_tokens": written.input_tokens, "output_tokens": written.output_tokens}
    if args.json:
        emit_json(out)
    else:
        print(f"{args.out}: {len(written.items)} teacher-written questions ({written.dropped_near_duplicates} "
              "near-duplicates of training questions dropped). Review the expected answers before use.")
    return 0 if len(written.items) >= args.n else 1
