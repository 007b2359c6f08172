"""Write examples as JSONL, CSV or Parquet; what these write, read_dataset reads back unchanged.

JSONL is `json.dumps(example, ensure_ascii=False)` per line, keys in their original order, so a
JSONL file written this way and read back is written out again byte for byte.
CSV has columns system, user, assistant for simple examples (one system/user/assistant turn, nothing
else) and the whole example as JSON in a `json` column for everything else (multi-turn, tool calls,
weights), so nothing is lost. Parquet keeps `messages` as a nested column.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline import atomic

CSV_COLUMNS = ["system", "user", "assistant", "json"]


def to_jsonl(examples: Iterable[Any]) -> str:
    return "".join(json.dumps(ex, ensure_ascii=False) + "\n" for ex in examples)


_atomic = atomic.write_with  # the one atomic writer (pipeline.atomic)


def write_jsonl(examples: Iterable[Any], path: str | Path) -> Path:
    """Written one example at a time (`examples` may be a stream)."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            for ex in examples:
                fh.write(json.dumps(ex, ensure_ascii=False) + "\n")

    return _atomic(path, write)


def simple_parts(ex: Any) -> tuple[str, str, str] | None:
    """(system, user, assistant) when the example is one plain turn with optional system, else None."""
    if not isinstance(ex, dict) or len(ex) != 1 or not isinstance(ex.get("messages"), list):
        return None
    msgs = ex["messages"]
    roles = []
    for m in msgs:
        if not isinstance(m, dict) or set(m) != {"role", "content"} or not isinstance(m["content"], str):
            return None
        roles.append(m["role"])
    if roles == ["user", "assistant"]:
        return "", msgs[0]["content"], msgs[1]["content"]
    if roles == ["system", "user", "assistant"]:
        return msgs[0]["content"], msgs[1]["content"], msgs[2]["content"]
    return None


def csv_row(ex: Any) -> list[str]:
    parts = simple_parts(ex)
    if parts is not None:
        return [*parts, ""]
    return ["", "", "", json.dumps(ex, ensure_ascii=False)]


def write_csv(examples: Iterable[Any], path: str | Path, *, delimiter: str = ",") -> Path:
    """Written one example at a time (`examples` may be a stream of a large draft)."""

    def write(tmp: str) -> None:
        # utf-8 without BOM: what OpenAI tools and pandas expect (Excel users can import it as UTF-8).
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, delimiter=delimiter)
            w.writerow(CSV_COLUMNS)
            w.writerows(csv_row(ex) for ex in examples)

    return _atomic(path, write)


def write_parquet(examples: Iterable[Any], path: str | Path) -> Path:
    """Nested `messages` (plus any other top-level keys) as columns; if the examples' shapes do not fit
    one Arrow schema (e.g. content a string here, a list there), each row is stored as JSON text in a
    `messages` column instead, which read_dataset also reads."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    examples = list(examples)  # Arrow builds the whole table in memory anyway; read twice on a fallback
    rows = [ex if isinstance(ex, dict) else {"messages": ex} for ex in examples]
    try:
        table = pa.Table.from_pylist(rows)
    except (pa.ArrowException, TypeError, ValueError):
        table = pa.table({"messages": [json.dumps(ex, ensure_ascii=False) for ex in examples]})
    return _atomic(path, lambda tmp: pq.write_table(table, tmp))
