"""A visitor's working dataset (the "draft"): the examples shown in the Dataset tab.

Kept as chat JSONL in the visitor's workspace folder and rewritten atomically on every edit, so a page
refresh or an app restart loses nothing. Other tabs add to it (Generate appends its results) and read
it (Fine-tune, Hub). `meta.json` beside it records where the data came from (generation runs: teacher,
template, parameters, cost), which the dataset card reports.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from pipeline import atomic, workspace

# Every read-modify-write of a draft file holds its lock (pipeline.atomic): a generation run may
# append while the visitor edits a cell.


def draft_path(visitor_id: str) -> Path:
    return workspace.visitor_dir(visitor_id, "draft") / "draft.jsonl"


def meta_path(visitor_id: str) -> Path:
    return workspace.visitor_dir(visitor_id, "draft") / "meta.json"


def unparsed_path(visitor_id: str) -> Path:
    """The draft's lines that are not JSON yet (the Dataset tab's `raw` rows; pipeline.dataset.draft_ops)."""
    return workspace.visitor_dir(visitor_id, "draft") / "unparsed.json"


def _dump(examples: list[dict]) -> str:
    return "".join(json.dumps(ex, ensure_ascii=False) + "\n" for ex in examples)


Stamp = tuple[int, int, int]


def draft_stamp(visitor_id: str) -> Stamp | None:
    """Changes whenever the draft is written (a new inode on every atomic rewrite, a new size on append)."""
    try:
        st = draft_path(visitor_id).stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def draft_lines(visitor_id: str) -> list[str]:
    """The draft's JSON lines as stored, one per example (what the Dataset tab caches its work by)."""
    return read_draft(visitor_id)[1]


def _stored(fh: IO[str], size: int | None = None) -> Iterator[str]:
    """The non-blank lines of an open draft, without their newline, up to `size` bytes when given.
    Opened with newline="\\n": split at "\\n" only (str.splitlines() also breaks at U+2028/U+2029,
    which json.dumps(ensure_ascii=False) leaves inside strings, and universal newlines at a "\\r")."""
    read = 0
    for line in fh:
        if size is not None:
            read += len(line.encode("utf-8"))
            if read > size:  # appended after the snapshot's size was taken (and maybe not complete)
                return
        if line.strip():
            yield line[:-1] if line.endswith("\n") else line


def _open(path: Path) -> IO[str]:
    return path.open(encoding="utf-8", newline="\n")


def read_draft(visitor_id: str) -> tuple[Stamp | None, list[str]]:
    """(stamp, lines) read together: no write can come between the two. Read line by line (a 50,000-
    example draft is ~40 MB: reading it whole and splitting held it twice)."""
    path = draft_path(visitor_id)
    with atomic.locked(path):
        if not path.exists():
            return None, []
        with _open(path) as fh:
            return draft_stamp(visitor_id), list(_stored(fh))


def iter_draft_lines(visitor_id: str) -> Iterator[str]:
    """The draft's stored lines one at a time, as the draft was when the iteration started: a rewrite
    meanwhile replaces the file (this keeps reading the old one) and what is appended meanwhile is
    not read. For work that needs one example at a time (export, copies), in bounded memory."""
    path = draft_path(visitor_id)
    with atomic.locked(path):
        if not path.exists():
            return
        fh = _open(path)
        size = os.fstat(fh.fileno()).st_size
    with fh:
        yield from _stored(fh, size)


def iter_draft(visitor_id: str) -> Iterator[Any]:
    """The draft's examples one at a time (see iter_draft_lines)."""
    return (json.loads(line) for line in iter_draft_lines(visitor_id))


def load_draft(visitor_id: str) -> list[dict]:
    """The visitor's examples (empty list when they have none yet)."""
    return [json.loads(line) for line in draft_lines(visitor_id)]


def save_draft(visitor_id: str, examples: Iterable[Any]) -> None:
    """Replace the draft with `examples` (atomically: a crash mid-write keeps the old file)."""
    save_draft_lines(visitor_id, (json.dumps(ex, ensure_ascii=False) for ex in examples))


def save_draft_lines(visitor_id: str, lines: Iterable[str]) -> Stamp | None:
    """Replace the draft with these JSON lines (one example each, as `draft_lines` gives them); returns
    the stamp of what was written. Written as they come (no second copy of a large draft in memory);
    `lines` must not be a lazy read of this same draft (its lock is held while they are written)."""
    path = draft_path(visitor_id)
    with atomic.locked(path):
        atomic.write_lines(path, (line + "\n" for line in lines))
        return draft_stamp(visitor_id)


def copy_draft(visitor_id: str, dest: str | Path) -> int:
    """Write the draft's stored lines to `dest` (atomically, streamed); returns how many. The draft is
    JSONL written by json.dumps(ensure_ascii=False), so this is also its JSONL export."""
    count = 0

    def counted() -> Iterator[str]:
        nonlocal count
        for line in iter_draft_lines(visitor_id):
            count += 1
            yield line

    atomic.write_lines(dest, (line + "\n" for line in counted()))
    return count


def replace_draft_with_file(visitor_id: str, source: str | Path) -> None:
    """Make the JSONL file `source` the draft (renamed into place: nothing is read or copied)."""
    path = draft_path(visitor_id)
    with atomic.locked(path):
        os.replace(source, path)


def append_to_draft(visitor_id: str, examples: list[dict]) -> int:
    """Add examples at the end of the draft; returns the new number of examples."""
    path = draft_path(visitor_id)
    with atomic.locked(path):
        with path.open("a", encoding="utf-8") as fh:
            fh.write(_dump(examples))
        # Counted as bytes, line by line: a generation appends a batch every second or so, and reading
        # a 50,000-example draft as text each time held ~40 MB twice.
        with path.open("rb") as fh:
            return sum(1 for line in fh if line.strip())


def load_meta(visitor_id: str) -> dict[str, Any]:
    path = meta_path(visitor_id)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def update_meta(visitor_id: str, **fields: Any) -> dict[str, Any]:
    """Merge fields into the draft's provenance record; list values are appended to, not replaced."""
    path = meta_path(visitor_id)
    with atomic.locked(path):
        meta = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        for key, value in fields.items():
            if isinstance(value, list) and isinstance(meta.get(key), list):
                meta[key] = meta[key] + value
            else:
                meta[key] = value
        atomic.write_text(path, json.dumps(meta, indent=2, ensure_ascii=False))
    return meta


def replace_draft(visitor_id: str, examples: list[dict], **meta: Any) -> Path | None:
    """Start a new draft (a demo, a loaded sample) while keeping the old one as a backup to undo to.
    The old draft's unreadable lines go with it into the backup: they are not lines of the new data.

    Returns the backup's path, or None when there was nothing to keep.
    """
    old, raw = draft_path(visitor_id), unparsed_path(visitor_id)
    backup = None
    if (old.exists() and old.stat().st_size) or raw.exists():
        backup = old.with_name(f"backup-{time.strftime('%Y%m%d-%H%M%S')}-{time.perf_counter_ns() % 10**6:06d}.jsonl")
        with atomic.locked(old):
            backup.write_bytes(old.read_bytes() if old.exists() else b"")
        old_meta = meta_path(visitor_id)
        if old_meta.exists():
            backup.with_suffix(".meta.json").write_bytes(old_meta.read_bytes())
        if raw.exists():
            os.replace(raw, backup.with_suffix(".unparsed.json"))
    save_draft(visitor_id, examples)
    with atomic.locked(meta_path(visitor_id)):
        atomic.write_text(meta_path(visitor_id), json.dumps(meta, indent=2, ensure_ascii=False))
    return backup


def restore_backup(visitor_id: str, backup: Path) -> int:
    """Put a backup made by replace_draft back as the draft; returns its number of examples."""
    folder = draft_path(visitor_id).parent
    if backup.parent.resolve() != folder.resolve() or not backup.exists():
        raise FileNotFoundError(f"No draft backup named {backup.name} in this workspace.")
    with _open(backup) as fh:
        examples = [json.loads(line) for line in _stored(fh)]
    save_draft(visitor_id, examples)
    meta = backup.with_suffix(".meta.json")
    with atomic.locked(meta_path(visitor_id)):
        atomic.write_text(meta_path(visitor_id), meta.read_text(encoding="utf-8") if meta.exists() else "{}")
    raw = backup.with_suffix(".unparsed.json")
    if raw.exists():
        unparsed_path(visitor_id).write_bytes(raw.read_bytes())
    else:
        unparsed_path(visitor_id).unlink(missing_ok=True)
    return len(examples)
