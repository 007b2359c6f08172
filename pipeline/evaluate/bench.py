"""Benchmark files: JSONL, one item a line: {"messages": [...], "expected": "...", "scoring": ...}
(optionally "reference": the full answer the item was made from).

Task items carry what the model needs and what scoring checks: `tools` (OpenAI tools, sent with the
question; `expected` is {"name", "arguments"} or "no call") for tool_call, `schema` (the JSON schema;
`expected` the object) for json_schema, `labels` (all classes, for the confusion matrix) for label."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError, UnreadableFileError
from pipeline.evaluate.scoring import SCORINGS


@dataclass(frozen=True)
class BenchItem:
    index: int
    messages: list[dict]
    expected: str
    scoring: str
    #: The full reference answer an item was made from (bench make keeps it; the leakage check and a
    #: reviewer read it); "" for hand-written items.
    reference: str = ""
    tools: list | None = None
    schema: dict | None = None
    labels: tuple[str, ...] = ()

    @property
    def question(self) -> str:
        return next((m.get("content") or "" for m in reversed(self.messages) if m.get("role") == "user"), "")


def parse_benchmark(text: str, name: str = "benchmark") -> list[BenchItem]:
    items, problems = [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {lineno}: not JSON ({exc.msg})")
            continue
        msgs = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(msgs, list) or not any(isinstance(m, dict) and m.get("role") == "user" for m in msgs):
            problems.append(f"line {lineno}: needs 'messages' with at least one user message")
            continue
        scoring = row.get("scoring", "final_answer")
        if scoring not in SCORINGS:
            problems.append(f"line {lineno}: 'scoring' must be one of {', '.join(SCORINGS)}, not {scoring!r}")
            continue
        task = _task_fields(row, scoring)
        if isinstance(task, str):
            problems.append(f"line {lineno}: {task}")
            continue
        if not isinstance(row.get("expected"), str | int | float) or str(row["expected"]).strip() == "":
            problems.append(f"line {lineno}: needs a non-empty 'expected' answer")
            continue
        # A trailing assistant turn would be the answer itself: drop it so the model answers.
        while msgs and msgs[-1].get("role") == "assistant":
            msgs = msgs[:-1]
        reference = row.get("reference") if isinstance(row.get("reference"), str) else ""
        items.append(BenchItem(len(items), msgs, str(row["expected"]), scoring, reference, **task))
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise InputError(f"{name} has lines that are not benchmark items: {shown}. Each line needs "
                         '{"messages": [...], "expected": "...", "scoring": "final_answer|contains|judge"}.')
    if not items:
        raise InputError(f"{name} has no benchmark items.")
    return items


def _task_fields(row: dict, scoring: str) -> dict | str:
    """The item's tools/schema/labels (an object `expected` becomes its JSON text), or what is wrong."""
    out: dict = {}
    tools, schema, labels = row.get("tools"), row.get("schema"), row.get("labels")
    if tools is not None:
        if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
            return "'tools' must be a list of OpenAI tool objects"
        out["tools"] = tools
    if schema is not None:
        if not isinstance(schema, dict):
            return "'schema' must be a JSON schema object"
        out["schema"] = schema
    if labels is not None:
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            return "'labels' must be a list of strings"
        out["labels"] = tuple(labels)
    if scoring == "tool_call" and not tools:
        return "a tool_call item needs 'tools' (the definitions the model may call)"
    if scoring in ("tool_call", "json_schema") and isinstance(row.get("expected"), dict | list):
        row["expected"] = json.dumps(row["expected"], ensure_ascii=False, sort_keys=True)
    if scoring == "tool_call":
        from pipeline.evaluate.tasks import expected_call

        try:
            expected_call(row.get("expected", ""))
        except ValueError as exc:
            return str(exc)
    return out


def load_benchmark(path: str | Path) -> list[BenchItem]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UnreadableFileError(f"Cannot read the benchmark {path}: {exc.__class__.__name__}. "
                                  "Check the path; it must be a UTF-8 JSONL file.") from exc
    return parse_benchmark(text, path.name)


def benchmark_hash(items: Sequence[BenchItem]) -> str:
    """What identifies a benchmark across runs: its questions, expected answers and scoring (not its
    file name), so a renamed copy is the same benchmark and an edited one is not."""
    canon = [{"messages": i.messages, "expected": i.expected, "scoring": i.scoring,
              **({"tools": i.tools} if i.tools else {}), **({"schema": i.schema} if i.schema else {})}
             for i in items]
    return hashlib.sha256(json.dumps(canon, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]
