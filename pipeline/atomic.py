"""The one way to write a workspace file: through a temporary file and a rename, under its lock.

A reader never sees half a file (the rename is atomic), and two writers of the same file, whether
threads of the app or the app and a CLI process on the same workspace, take turns: `locked(path)`
holds a thread lock and an OS lock (flock on `<path>.lock`) for the whole read-modify-write.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

# One thread lock per file path (flock alone does not exclude threads sharing a process's open file).
_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


@contextlib.contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold `path`'s lock (threads and processes) for a read-modify-write of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locks[str(path.resolve())], open(f"{path}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_with(path: str | Path, write: Callable[[str], Any]) -> Path:
    """Let `write(tmp_path)` fill a temporary file next to `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_with(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_lines(path: str | Path, lines: Iterable[str]) -> Path:
    """Write `lines` (each ending with its own newline, as `file.writelines` takes them) as they come:
    a large file is never held in memory, and a crash mid-stream keeps the old file whole."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:  # JSONL: "\n" on every OS
            for line in lines:
                fh.write(line)
    return write_with(path, write)


def write_json(path: str | Path, data: Any, indent: int | None = 1) -> Path:
    return write_text(path, json.dumps(data, indent=indent, ensure_ascii=False))


def read_json(path: str | Path, default: Any = None) -> Any:
    """The file's JSON, or `default` when it is missing or damaged (a crash cannot leave half of one,
    but a hand edit can)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default
