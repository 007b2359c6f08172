"""Benchmarks made from a visitor's own dataset, kept in their workspace (the Evaluate tab's path).

Holding out moves the held-out examples out of the dataset draft (the Dataset tab's "Undo last bulk
change" brings them back), so the fine-tune never sees them. Made benchmarks can be reviewed and edited
before use: the expected answer and scoring of each line; clearing an expected answer drops the line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline import drafts, workspace
from pipeline.dataset import draft_ops, write_jsonl
from pipeline.errors import InputError
from pipeline.evaluate.bench import parse_benchmark
from pipeline.evaluate.make import MadeBenchmark, make_benchmark
from pipeline.evaluate.scoring import SCORINGS

PREFIX = "yours: "


def bench_dir(visitor: str) -> Path:
    return workspace.visitor_dir(visitor, "benchmarks")


def list_made(visitor: str | None) -> list[str]:
    """Choices for the benchmark list, newest first."""
    if not visitor:
        return []
    return [PREFIX + p.name for p in sorted(bench_dir(visitor).glob("*.jsonl"), reverse=True)]


def made_path(visitor: str, choice: str) -> Path:
    """The file behind a "yours: NAME" choice (a name from the list, never a path)."""
    name = choice.removeprefix(PREFIX)
    known = {p.name: p for p in bench_dir(visitor).glob("*.jsonl")}
    if name not in known:
        raise InputError("That benchmark is not among yours any more; pick one from the list.")
    return known[name]


def _new_path(visitor: str, kind: str) -> Path:
    return bench_dir(visitor) / f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{kind}.jsonl"


def hold_out_from_draft(visitor: str, n: int, scoring: str = "auto", seed: int = 0) -> tuple[str, MadeBenchmark]:
    """Move about n examples (whole groups) from the draft into a new benchmark; (choice, what was made)."""
    examples = drafts.load_draft(visitor)
    if not examples:
        raise InputError("Your dataset is empty: load or generate examples first (Dataset or Generate tab).")
    made = make_benchmark(examples, int(n), scoring=scoring, seed=int(seed))
    path = _new_path(visitor, "held-out")
    write_jsonl(made.items, path)
    draft_ops.snapshot(visitor, f"hold out {len(made.items)} examples as a benchmark")
    held = {json.dumps(ex, sort_keys=True) for ex in made.split.held_out}
    drafts.save_draft(visitor, [ex for ex in examples if json.dumps(ex, sort_keys=True) not in held])
    drafts.update_meta(visitor, held_out={"benchmark": path.name, "examples": len(made.items),
                                          "groups": made.split.groups_held_out, "groups_total": made.split.groups_total})
    return PREFIX + path.name, made


def save_written(visitor: str, items: list[dict]) -> str:
    path = _new_path(visitor, "teacher")
    write_jsonl(items, path)
    return PREFIX + path.name


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def save_review(visitor: str, choice: str, edited: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """Apply the review table (by its "#" column) to a made benchmark: expected and scoring per line; a
    line whose expected answer was cleared is dropped. Returns (kept, dropped)."""
    path = made_path(visitor, choice)
    rows = read_rows(path)
    out, dropped = [], 0
    for edit in edited:
        try:
            n = int(edit.get("#")) - 1
        except (TypeError, ValueError):
            continue
        if not 0 <= n < len(rows):
            continue
        expected = str(edit.get("expected") or "").strip()
        if not expected:
            dropped += 1
            continue
        scoring = str(edit.get("scoring") or rows[n]["scoring"]).strip()
        if scoring not in SCORINGS:
            raise InputError(f"Line {n + 1}: scoring must be one of {', '.join(SCORINGS)}, not {scoring!r}.")
        out.append({**rows[n], "expected": expected, "scoring": scoring})
    if not out:
        raise InputError("Every line would be dropped: keep at least one question with an expected answer.")
    parse_benchmark("".join(json.dumps(r) + "\n" for r in out), path.name)  # still a valid benchmark
    write_jsonl(out, path)
    return len(out), dropped
