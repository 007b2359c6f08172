"""The visitor's draft as the Dataset tab changes it: raw lines, undo, imports, bulk edits, exports.

drafts.py keeps the examples (draft.jsonl). Beside it this keeps `unparsed.json` (lines that are not
JSON yet, shown as `raw` rows until fixed) and a one-step undo snapshot taken before every bulk change
(load, clear, dedupe, system prompt, delete), so nothing destructive is final.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline import drafts, workspace
from pipeline.dataset import paging
from pipeline.dataset.draft_view import DraftCache
from pipeline.dataset.jsonl import Unparsed
from pipeline.dataset.ops import split_by_groups
from pipeline.dataset.readers import ReadResult
from pipeline.dataset.validate import dedupe_key
from pipeline.dataset.writers import write_csv, write_jsonl, write_parquet
from pipeline.errors import InputError

#: Reading problems already visible as rows (raw rows) and so not repeated in the import message.
_SHOWN_AS_ROWS = ("invalid_json", "invalid_utf8", "bad_messages_cell")


def _dir(visitor: str):
    return drafts.draft_path(visitor).parent


def load_unparsed(visitor: str) -> list[Unparsed]:
    path = drafts.unparsed_path(visitor)
    if not path.exists():
        return []
    return [Unparsed(**u) for u in json.loads(path.read_text(encoding="utf-8"))]


def save_unparsed(visitor: str, unparsed: Sequence[Unparsed]) -> None:
    path = drafts.unparsed_path(visitor)
    path.write_text(json.dumps([u.__dict__ for u in unparsed], ensure_ascii=False), encoding="utf-8")


def save_all(visitor: str, examples: Sequence[Any], unparsed: Sequence[Unparsed]) -> None:
    drafts.save_draft(visitor, list(examples))
    save_unparsed(visitor, unparsed)


def snapshot(visitor: str, label: str) -> None:
    """Keep the current draft so the next bulk change can be undone (copied line by line, not parsed)."""
    d = _dir(visitor)
    drafts.copy_draft(visitor, d / "undo.jsonl")
    (d / "undo.json").write_text(json.dumps({"label": label, "unparsed": [
        u.__dict__ for u in load_unparsed(visitor)]}, ensure_ascii=False), encoding="utf-8")


def undo(visitor: str) -> str | None:
    """Restore the snapshot (swapping it with the current draft, so undo twice = redo); its label or None."""
    d = _dir(visitor)
    if not (d / "undo.jsonl").exists():
        return None
    meta = json.loads((d / "undo.json").read_text(encoding="utf-8"))
    restoring = d / "undo.restoring.jsonl"
    os.replace(d / "undo.jsonl", restoring)  # renamed, not read: the snapshot below takes its place
    snapshot(visitor, f"undo of {meta['label']}")
    drafts.replace_draft_with_file(visitor, restoring)
    save_unparsed(visitor, [Unparsed(**u) for u in meta["unparsed"]])
    return meta["label"]


def import_read(visitor: str, read: ReadResult, append: bool, label: str) -> str:
    """Put what was read into the draft (replacing it, or after it); returns a message for the user."""
    workspace.visitor_dir(visitor or "")  # a readable error when the session has no id
    if not read.readable:
        raise InputError(" ".join(p.message for p in read.errors) or f"{label} could not be read.")
    snapshot(visitor, f"loading {label}")
    old, old_raw = (drafts.load_draft(visitor), load_unparsed(visitor)) if append else ([], [])
    save_all(visitor, old + read.examples, old_raw + read.unparsed)
    blank = sum(p.code == "blank_line" for p in read.problems)
    notes = [p.message for p in read.problems if p.code not in (*_SHOWN_AS_ROWS, "blank_line")]
    parts = [f"{'Added' if append else 'Loaded'} {len(read.examples):,} example(s) from {label}."]
    if read.unparsed:
        parts.append(f"{len(read.unparsed)} unreadable line(s) kept as `raw` rows to fix.")
    if blank:
        parts.append(f"{blank} blank line(s) skipped.")
    parts += notes
    if not append:
        parts.append("(Undo restores the previous table.)")
    return " ".join(parts)


def save_table(visitor: str, rows: Sequence[Sequence[Any]], rendered: Any, cache: DraftCache | None = None) -> None:
    """Save the edited table. `rendered` says what the table was drawn from: a page's state
    (pipeline.dataset.paging.Page: the stored lines and raw rows it showed), or (examples, raw rows)
    for a table of the draft's first rows; rows another tab appended since are kept, not taken as
    deleted. None (an API caller without the session's state): the table's rows edit the lines their
    `#` names, and no row counts as deleted. With the tab's cache, unchanged rows are neither parsed nor re-serialised."""
    workspace.visitor_dir(visitor or "")
    cache = cache if cache is not None else DraftCache()
    lines, raw = cache.lines(visitor), load_unparsed(visitor)
    page = paging.Page.from_state(rendered)
    if page is None and rendered:
        n, n_raw = rendered
        page = paging.Page.of([*range(n), *(-(j + 1) for j in range(n_raw))], lines, raw)
    elif page is None:
        page = paging.Page.of(paging.keyed(rows or [], len(lines), len(raw)), lines, raw)
    new, unparsed = paging.apply_page(rows or [], page, lines, raw, cache.examples, cache.line_of, cache.cells)
    save_unparsed(visitor, unparsed)
    cache.saved(drafts.save_draft_lines(visitor, new), new)


def dedupe_draft(visitor: str) -> int:
    """Remove exact duplicates (the first of each stays), after an undo snapshot; how many were removed.
    Streamed: one example at a time, remembering a 16-byte digest of each kept one."""
    snapshot(visitor, "removing duplicates")
    seen: set[bytes] = set()
    kept: list[str] = []
    total = 0
    for line in drafts.iter_draft_lines(visitor):
        total += 1
        key = hashlib.blake2b(dedupe_key(json.loads(line)).encode("utf-8", "surrogatepass"), digest_size=16).digest()
        if key not in seen:
            seen.add(key)
            kept.append(line)
    drafts.save_draft_lines(visitor, kept)
    return total - len(kept)


Change = Callable[[list, list], tuple[list, list]]


def bulk_change(visitor: str, label: str, change: Change) -> tuple[list, list]:
    """change(examples, unparsed) -> (examples, unparsed), saved after an undo snapshot."""
    workspace.visitor_dir(visitor or "")
    snapshot(visitor, label)
    examples, unparsed = change(drafts.load_draft(visitor), load_unparsed(visitor))
    save_all(visitor, examples, unparsed)
    return examples, unparsed


def _for_export(visitor: str) -> tuple[Path, str]:
    if not drafts.draft_stamp(visitor) or not next(drafts.iter_draft_lines(visitor), None):
        raise InputError("The table is empty: load or add examples first.")
    note = " Rows marked `raw` are not valid JSON yet and were left out: fix or delete them." \
        if load_unparsed(visitor) else ""
    return workspace.visitor_dir(visitor, "exports"), note


def export_draft(visitor: str) -> tuple[list[Path], str]:
    """The draft as JSONL (its stored lines, copied), CSV (written one example at a time) and Parquet."""
    out, note = _for_export(visitor)
    jsonl = out / "dataset.jsonl"
    n = drafts.copy_draft(visitor, jsonl)
    # Read back from the copy just written: all three files hold the same examples even if a generation
    # appends meanwhile.
    files = [jsonl, write_csv(_examples_of(jsonl), out / "dataset.csv"),
             write_parquet(_examples_of(jsonl), out / "dataset.parquet")]
    return files, f"Exported {n:,} examples as JSONL, CSV and Parquet.{note}"


def _examples_of(jsonl: Path) -> Iterator[Any]:
    with jsonl.open(encoding="utf-8", newline="\n") as fh:
        yield from (json.loads(line) for line in fh if line.strip())


def split_draft(visitor: str, fraction: float, seed: int) -> tuple[list[Path], str]:
    """Write train.jsonl / validation.jsonl (the draft itself is unchanged) and record them in meta."""
    out, note = _for_export(visitor)
    examples = drafts.load_draft(visitor)
    split = split_by_groups(examples, fraction=fraction, seed=seed)
    train, val = split.train, split.held_out
    files = [write_jsonl(train, out / "train.jsonl"), write_jsonl(val, out / "validation.jsonl")]
    # Recorded so the Fine-tune tab can offer the validation file.
    drafts.update_meta(visitor, split={"train": str(files[0]), "validation": str(files[1]),
                                       "validation_fraction": fraction, "seed": seed})
    return files, (f"Split {len(examples)} examples: {split.describe()} (seed {seed}); near-duplicate questions "
                   f"and examples with the same answer stay together.{note}")
