"""The visitor's draft as the Dataset tab changes it: raw lines, undo, imports, bulk edits, exports.

drafts.py keeps the examples (draft.jsonl). Beside it this keeps `unparsed.json` (lines that are not
JSON yet, shown as `raw` rows until fixed) and a one-step undo snapshot taken before every bulk change
(load, clear, dedupe, system prompt, delete), so nothing destructive is final.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline import drafts, workspace
from pipeline.dataset.draft_view import DraftCache
from pipeline.dataset.editing import TABLE_ROWS, apply_table
from pipeline.dataset.jsonl import Unparsed
from pipeline.dataset.ops import split_by_groups
from pipeline.dataset.readers import ReadResult
from pipeline.dataset.writers import to_jsonl, write_csv, write_jsonl
from pipeline.errors import InputError

#: Reading problems already visible as rows (raw rows) and so not repeated in the import message.
_SHOWN_AS_ROWS = ("invalid_json", "invalid_utf8", "bad_messages_cell")


def _dir(visitor: str):
    return drafts.draft_path(visitor).parent


def load_unparsed(visitor: str) -> list[Unparsed]:
    path = _dir(visitor) / "unparsed.json"
    if not path.exists():
        return []
    return [Unparsed(**u) for u in json.loads(path.read_text(encoding="utf-8"))]


def save_unparsed(visitor: str, unparsed: Sequence[Unparsed]) -> None:
    path = _dir(visitor) / "unparsed.json"
    path.write_text(json.dumps([u.__dict__ for u in unparsed], ensure_ascii=False), encoding="utf-8")


def save_all(visitor: str, examples: Sequence[Any], unparsed: Sequence[Unparsed]) -> None:
    drafts.save_draft(visitor, list(examples))
    save_unparsed(visitor, unparsed)


def snapshot(visitor: str, label: str) -> None:
    """Keep the current draft so the next bulk change can be undone."""
    d = _dir(visitor)
    (d / "undo.jsonl").write_text(to_jsonl(drafts.load_draft(visitor)), encoding="utf-8")
    (d / "undo.json").write_text(json.dumps({"label": label, "unparsed": [
        u.__dict__ for u in load_unparsed(visitor)]}, ensure_ascii=False), encoding="utf-8")


def undo(visitor: str) -> str | None:
    """Restore the snapshot (swapping it with the current draft, so undo twice = redo); its label or None."""
    d = _dir(visitor)
    if not (d / "undo.jsonl").exists():
        return None
    lines = (d / "undo.jsonl").read_text(encoding="utf-8").split("\n")
    meta = json.loads((d / "undo.json").read_text(encoding="utf-8"))
    snapshot(visitor, f"undo of {meta['label']}")
    save_all(visitor, [json.loads(x) for x in lines if x.strip()], [Unparsed(**u) for u in meta["unparsed"]])
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


def save_table(visitor: str, rows: Sequence[Sequence[Any]], rendered: Sequence[int] | None,
               cache: DraftCache | None = None) -> None:
    """Save the edited table. `rendered` = (examples, raw rows) the table was drawn from: rows another
    tab appended to the draft since then are kept, not taken as deleted. None (an API caller without the
    session's state) means the table shows the draft as it is now. With the tab's cache, unchanged rows
    are neither parsed nor re-serialised."""
    workspace.visitor_dir(visitor or "")
    cache = cache if cache is not None else DraftCache()
    lines, raw = cache.lines(visitor), load_unparsed(visitor)
    n, n_raw = rendered if rendered else (min(len(lines), TABLE_ROWS), len(raw))
    examples, unparsed = apply_table(rows or [], cache.examples(lines[:n]), raw[:n_raw], cells_of=cache.cells)
    new = [cache.line_of(ex) for ex in examples] + lines[n:]
    save_unparsed(visitor, unparsed + raw[n_raw:])
    cache.saved(drafts.save_draft_lines(visitor, new), new)


Change = Callable[[list, list], tuple[list, list]]


def bulk_change(visitor: str, label: str, change: Change) -> tuple[list, list]:
    """change(examples, unparsed) -> (examples, unparsed), saved after an undo snapshot."""
    workspace.visitor_dir(visitor or "")
    snapshot(visitor, label)
    examples, unparsed = change(drafts.load_draft(visitor), load_unparsed(visitor))
    save_all(visitor, examples, unparsed)
    return examples, unparsed


def _for_export(visitor: str) -> tuple[list, Path, str]:
    examples = drafts.load_draft(visitor)
    if not examples:
        raise InputError("The table is empty: load or add examples first.")
    note = " Rows marked `raw` are not valid JSON yet and were left out: fix or delete them." \
        if load_unparsed(visitor) else ""
    return examples, workspace.visitor_dir(visitor, "exports"), note


def export_draft(visitor: str) -> tuple[list[Path], str]:
    examples, out, note = _for_export(visitor)
    files = [write_jsonl(examples, out / "dataset.jsonl"), write_csv(examples, out / "dataset.csv")]
    return files, f"Exported {len(examples)} examples as JSONL and CSV.{note}"


def split_draft(visitor: str, fraction: float, seed: int) -> tuple[list[Path], str]:
    """Write train.jsonl / validation.jsonl (the draft itself is unchanged) and record them in meta."""
    examples, out, note = _for_export(visitor)
    split = split_by_groups(examples, fraction=fraction, seed=seed)
    train, val = split.train, split.held_out
    files = [write_jsonl(train, out / "train.jsonl"), write_jsonl(val, out / "validation.jsonl")]
    # Recorded so the Fine-tune tab can offer the validation file.
    drafts.update_meta(visitor, split={"train": str(files[0]), "validation": str(files[1]),
                                       "validation_fraction": fraction, "seed": seed})
    return files, (f"Split {len(examples)} examples: {split.describe()} (seed {seed}); near-duplicate questions "
                   f"and examples with the same answer stay together.{note}")
