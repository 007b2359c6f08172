"""`python -m pipeline pull REPO_ID --out PATH`: one split of a Hub dataset as chat JSONL.

--json prints {"repo_id", "config", "split", "examples", "columns", "mapping", "rows", "skipped",
"truncated", "files", "out"}. The token comes from --token, else HF_TOKEN, else none (public data).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.commands import emit_json, progress
from pipeline.errors import InputError
from pipeline.hub.auth import resolve_token
from pipeline.hub.pull import load_from_hub


def parse_mapping(text: str | None) -> dict[str, str] | None:
    """`user=question,assistant=answer` -> {"user": "question", "assistant": "answer"}."""
    if not text:
        return None
    mapping = {}
    for part in text.split(","):
        role, sep, column = part.partition("=")
        if not sep or role.strip() not in {"messages", "system", "user", "assistant", "input"}:
            raise InputError(f"--map takes ROLE=COLUMN pairs (roles: messages, system, user, assistant, input); "
                             f"got '{part}'.")
        mapping[role.strip()] = column.strip()
    return mapping


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("pull", help="load one split of a Hub dataset into a chat JSONL file")
    parser.add_argument("repo_id", help="NAMESPACE/NAME of a dataset repo")
    parser.add_argument("--out", required=True, help="where to write the examples (chat JSONL)")
    parser.add_argument("--split", default="train", help="split to load (default train)")
    parser.add_argument("--config", help="config (subset) name, when the dataset has several")
    parser.add_argument("--map", dest="mapping", help="columns to turns, e.g. user=question,assistant=answer "
                        "(default: a messages column or a known pair)")
    parser.add_argument("--token", help="Hugging Face token, for private or gated data (default: $HF_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    token = resolve_token(args.token, required=False, allow_env=True)
    progress(f"Loading {args.repo_id} split {args.split}")
    result = load_from_hub(args.repo_id, config=args.config, split=args.split,
                           mapping=parse_mapping(args.mapping), token=token)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(ex, ensure_ascii=False) + "\n" for ex in result.examples), encoding="utf-8")
    summary = {**result.summary(), "out": str(out)}
    if args.json:
        emit_json(summary)
    else:
        extra = f", {result.skipped} rows skipped (no user or assistant turn)" if result.skipped else ""
        cut = " (truncated at the row limit)" if result.truncated else ""
        print(f"Wrote {len(result.examples)} examples to {out}{extra}{cut}")
    return 0 if result.examples else 1
